"""`podctl logs JOB|pod.NAME [-f] [--tail N]`: a job's log (its pod over SSH, else the local
copy), or a pod's own container log (RunPod REST v2)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path

from reconciler.errors import PodctlError, UsageError
from reconciler.jobs.loglines import LineSplitter, last_lines, tail_window
from reconciler.model import Address, PodStatus
from reconciler.workflow.context import (
    Connection,
    api_of,
    connect,
    key_path,
    load_desired,
    local_state,
    open_state,
)

LOCAL_CHUNK = 1 << 20  # bytes of the local copy read at a time
POD_LOG_TAIL = 100  # lines of a pod's log shown without --tail (RunPod's own default)
NO_GRAPHQL_LOGS = (
    "RunPod's GraphQL API has no pod logs: run `podctl --api rest logs {address}` (or set "
    "PODCTL_API=rest) to read them over its REST API v2. `podctl logs JOB` shows a job's log "
    "over SSH on either API."
)


def pod_logs(
    connection: Connection,
    paths: tuple[Path, ...],
    pod: str,
    *,
    follow: bool,
    on_line: Callable[[str], None],
    tail: int | None = None,
) -> None:
    """Print the container log of the stack's pod `pod.NAME` (`GET /v2/pods/{id}/logs`).

    The pod is the one the lockfile records, else the one its markers name. Without `follow`
    it prints what RunPod replays (the last `tail` lines) and returns once the stream is quiet.
    """
    address = Address.pod(Address.strip(pod, "pod"))
    if api_of(connection) != "rest":
        raise UsageError(NO_GRAPHQL_LOGS.format(address=address))
    desired = load_desired(paths)
    name = address.label
    if name not in desired.pods:
        known = ", ".join(desired.pods) or "(none)"
        raise UsageError(f"No pod {name!r} in stack {desired.stack}; its pods: {known}.")
    record = open_state(connection, desired).read().pods.get(name)

    async def run() -> None:
        async with connect(connection) as client:
            pod_id = record.pod_id if record is not None else None
            if pod_id is None:
                found = (await client.list_pods()).find_by_markers(desired.stack, name)
                if not found:
                    raise PodctlError(
                        f"{address} has no pod on RunPod (none recorded, none with its "
                        "markers): `podctl apply` creates it."
                    )
                pod_id = found[-1].pod_id
            elif await client.get_pod(pod_id) is None:
                raise PodctlError(
                    f"{address}: RunPod no longer knows its recorded pod {pod_id}; "
                    "`podctl plan` shows what to do."
                )
            await client.pod_logs(
                pod_id, on_line, follow=follow, tail=POD_LOG_TAIL if tail is None else tail
            )

    asyncio.run(run())


def job_logs(
    connection: Connection,
    paths: tuple[Path, ...],
    job: str,
    *,
    follow: bool,
    on_line: Callable[[str], None],
    on_note: Callable[[str], None],
    tail: int | None = None,
) -> None:
    """Print the job's log line by line (only its last `tail` lines, with `tail`); with
    `follow`, until the run ends."""
    desired = load_desired(paths)
    name = Address.strip(job, "job")
    if name in desired.endpoint_jobs:
        from reconciler.workflow.endpoint_ops import endpoint_job_logs

        endpoint_job_logs(connection, desired, desired.endpoint_jobs[name], on_line, tail=tail)
        return
    spec = desired.jobs.get(name)
    if spec is None:
        known = ", ".join(desired.jobs) or "(none)"
        raise UsageError(f"No job {name!r} in stack {desired.stack}; its jobs: {known}.")
    recorded = open_state(connection, desired).read()
    record = recorded.jobs.get(name)
    folder = local_state(connection, desired)
    local = folder.job_logs / f"{name}.log"
    if record is None:
        raise PodctlError(f"Job {name} has not run yet: `podctl apply` runs it.")
    pinned = tuple(recorded.host_keys.get(record.pod_id, ()))
    mount = desired.pods[spec.pod].volume_mount if spec.pod in desired.pods else "/workspace"
    printed = 0

    def line(text: str) -> None:
        nonlocal printed
        printed += 1
        on_line(text)

    async def from_pod() -> str | None:
        """None once the log is printed from the pod, else why it could not be."""
        from reconciler.jobs.remote import run_dir
        from reconciler.ssh import connect as ssh_connect
        from reconciler.ssh import ensure_stack_key

        async with connect(connection) as client:
            actual = await client.list_pods()
        pod = actual.get(record.pod_id)
        if pod is None or pod.desired_status is not PodStatus.RUNNING:
            return f"pod {record.pod_id} is not running"
        if pod.ssh is None:
            return f"pod {record.pod_id} has no SSH port mapped (yet)"
        key = ensure_stack_key(key_path(connection, desired, folder))
        where = run_dir(mount, name, record.fingerprint)
        try:
            conn = await ssh_connect(pod.ssh, key, pinned=pinned)
            async with conn:
                offset = 0
                if tail is not None:
                    seen, data = await conn.log_tail(where, tail_window(tail))
                    if seen.state == "absent":
                        return f"pod {record.pod_id} has no run of job {name} (its folder is gone)"
                    for text in last_lines(data, tail, clipped=seen.log_bytes > len(data)):
                        line(text)
                    if not follow:
                        return None
                    offset = seen.log_bytes
                seen = await conn.follow_log(where, line, offset=offset, follow=follow)
                if seen.state == "absent":
                    return f"pod {record.pod_id} has no run of job {name} (its folder is gone)"
        except PodctlError as exc:
            if printed:
                raise PodctlError(
                    f"reading the log of job {name} from pod {record.pod_id} failed midway: {exc}"
                ) from exc
            return f"SSH to pod {record.pod_id} failed ({exc})"
        return None

    why = asyncio.run(from_pod())
    if why is None:
        return
    if not local.exists():
        raise PodctlError(
            f"{why[0].upper()}{why[1:]}, and no local copy of its log exists ({local})."
        )
    on_note(f"podctl: {why}; showing the log saved at the last apply")
    read_local(local, on_line, tail=tail)


def read_local(path: Path, on_line: Callable[[str], None], *, tail: int | None) -> None:
    """The local copy's lines, read in chunks; with `tail`, only its end is read."""
    with path.open("rb") as f:
        if tail is not None:
            size = os.fstat(f.fileno()).st_size
            window = tail_window(tail)
            start = max(0, size - window)
            f.seek(start)
            for text in last_lines(f.read(window), tail, clipped=start > 0):
                on_line(text)
            return
        lines = LineSplitter(on_line)
        while chunk := f.read(LOCAL_CHUNK):
            lines.feed(chunk)
        lines.close()
