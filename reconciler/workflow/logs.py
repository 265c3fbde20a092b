"""`podctl logs JOB [-f]`: the job's log from its pod over SSH, else the last local copy."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from reconciler.errors import PodctlError, UsageError
from reconciler.lockfile import LockfileStore
from reconciler.model import PodStatus
from reconciler.workflow.context import (
    Connection,
    connect,
    key_path,
    load_desired,
    lockfile_path,
)
from reconciler.workflow.joblogs import logs_dir


def job_logs(
    connection: Connection,
    paths: tuple[Path, ...],
    job: str,
    *,
    follow: bool,
    on_line: Callable[[str], None],
    on_note: Callable[[str], None],
) -> None:
    """Print the job's log line by line; with `follow`, until the run ends."""
    desired = load_desired(paths)
    name = job.removeprefix("job.")
    spec = desired.jobs.get(name)
    if spec is None:
        known = ", ".join(desired.jobs) or "(none)"
        raise UsageError(f"No job {name!r} in stack {desired.stack}; its jobs: {known}.")
    path = lockfile_path(connection, desired)
    recorded = LockfileStore(path).read()
    record = recorded.jobs.get(name)
    local = logs_dir(path) / f"{name}.log"
    if record is None:
        raise PodctlError(f"Job {name} has not run yet: `podctl apply` runs it.")
    pinned = tuple(recorded.host_keys.get(record.pod_id, ()))
    mount = desired.pods[spec.pod].volume_mount if spec.pod in desired.pods else "/workspace"

    async def from_pod() -> bool:
        from reconciler.jobs.remote import run_dir
        from reconciler.ssh import connect as ssh_connect
        from reconciler.ssh import ensure_stack_key

        async with connect(connection) as client:
            actual = await client.list_pods()
        pod = actual.get(record.pod_id)
        if pod is None or pod.desired_status is not PodStatus.RUNNING or pod.ssh is None:
            return False
        key = ensure_stack_key(key_path(connection, desired, path))
        try:
            conn = await ssh_connect(pod.ssh, key, pinned=pinned)
        except PodctlError as exc:
            on_note(f"podctl: cannot reach pod {pod.pod_id} over SSH ({exc})")
            return False
        async with conn:
            where = run_dir(mount, name, record.fingerprint)
            if follow:
                await conn.follow_log(where, on_line)
            else:
                code, out, err = await conn.run(f"cat {where}/log")
                if code != 0:
                    on_note(f"podctl: no log on the pod ({err.strip()})")
                    return False
                for line in out.splitlines():
                    on_line(line)
        return True

    if asyncio.run(from_pod()):
        return
    if not local.exists():
        raise PodctlError(
            f"The pod of job {name} ({record.pod_id}) is not running and no local copy of its "
            f"log exists ({local})."
        )
    on_note(f"podctl: pod {record.pod_id} is not running; showing the log saved at the last apply")
    for line in local.read_text(encoding="utf-8", errors="replace").splitlines():
        on_line(line)
