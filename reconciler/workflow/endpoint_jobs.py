"""Endpoint jobs in plan and apply: their ledgers, their plan changes, the job API wiring.

The composition of the endpoint job runner (executor.endpoint_jobs): the JobApi client of the
data plane (RunPod's `https://api.runpod.ai/v2`, `RUNPOD_ENDPOINT_BASE_URL`, or the sandbox's),
one append-only journal per job beside the state, and output files written without ever
replacing a file podctl did not write.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from reconciler.errors import PodctlError
from reconciler.jobs.endpoint_ledger import (
    Summary,
    fold,
    job_fingerprint,
    job_parts,
    line_prints,
    summarize,
)
from reconciler.model import DesiredState, EndpointJobSpec, Lockfile
from reconciler.plans import Action, Change, Plan
from reconciler.state import LocalState
from reconciler.workflow.endpoint_journal import journal_path, read_records

if TYPE_CHECKING:
    from reconciler.executor.endpoint_jobs import EndpointJobs, JobApiPort
    from reconciler.workflow.context import Connection
    from reconciler.workflow.inspect import JobStatusRow


def target_of(desired: DesiredState, job: EndpointJobSpec) -> str:
    from reconciler.planner.endpoint_jobs import request_target

    return request_target(desired, job)


def recorded_endpoint_id(recorded: Lockfile, name: str) -> str | None:
    """The id of the stack's endpoint NAME as the state records it (None: not created)."""
    record = recorded.endpoints.get(name)
    return record.endpoint_id if record is not None and record.endpoint_id else None


def prints_and_inputs(
    desired: DesiredState,
) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    inputs = {n: job_parts(j, target_of(desired, j)) for n, j in desired.endpoint_jobs.items()}
    return {n: job_fingerprint(p) for n, p in inputs.items()}, inputs


def summaries(desired: DesiredState, local: LocalState) -> dict[str, Summary]:
    out = {}
    for name, job in desired.endpoint_jobs.items():
        records = read_records(journal_path(local.folder, local.stem, name))
        out[name] = summarize(fold(records), line_prints(job, target_of(desired, job)))
    return out


def with_endpoint_jobs(
    plan: Plan, desired: DesiredState, recorded: Lockfile, local: LocalState, *, destroy: bool
) -> Plan:
    """The plan with the endpoint jobs' run-job changes (none for destroy or --target)."""
    if not desired.endpoint_jobs or destroy or plan.targets:
        return plan
    from reconciler.planner.endpoint_jobs import endpoint_job_changes

    prints, inputs = prints_and_inputs(desired)
    found = endpoint_job_changes(
        desired, recorded, prints, inputs, summaries(desired, local), plan.changes
    )
    sent = {c.address for c in found.changes}
    changes = []
    for c in plan.changes:  # a pod job that needs an endpoint job that runs waits for it
        spec = desired.jobs.get(c.job or "") if c.action is Action.RUN_JOB else None
        extra = [f"job.{n}" for n in spec.needs if f"job.{n}" in sent] if spec else []
        changes.append(replace(c, depends_on=(*c.depends_on, *extra)) if extra else c)
    return replace(
        plan,
        changes=job_ordered([*changes, *found.changes]),
        warnings=tuple(dict.fromkeys((*plan.warnings, *found.warnings))),
    )


def job_ordered(changes: list[Change]) -> tuple[Change, ...]:
    """The changes with each one after the jobs it depends on (the executor waits only for
    changes earlier in the plan); otherwise in their order."""
    addresses = {c.address for c in changes}
    out: list[Change] = []
    placed: set[str] = set()
    left = list(changes)

    def ready(c: Change) -> bool:
        return all(d in placed for d in c.depends_on if d.startswith("job.") and d in addresses)

    while left:
        # the first change whose jobs are placed (a cycle, refused by the spec loader: in order)
        index = next((i for i, c in enumerate(left) if ready(c)), 0)
        c = left.pop(index)
        out.append(c)
        if c.action is Action.RUN_JOB:
            placed.add(c.address)
    return tuple(out)


def endpoint_job_rows(
    connection: Connection, desired: DesiredState, recorded: Lockfile
) -> list[JobStatusRow]:
    """`podctl status` rows of the endpoint jobs: the state's record, the ledger's counts."""
    from reconciler.jobs.endpoint_ledger import DONE, LOST, SENT, UNKNOWN
    from reconciler.workflow.context import local_state
    from reconciler.workflow.inspect import JobStatusRow

    if not desired.endpoint_jobs:
        return []
    local = local_state(connection, desired)
    found = summaries(desired, local)
    prints, _ = prints_and_inputs(desired)
    rows = []
    for name, job in desired.endpoint_jobs.items():
        record = recorded.jobs.get(name)
        summary = found[name]
        status = "pending" if record is None else record.status.value
        if record is not None and record.fingerprint != prints[name]:
            status = "pending"
        counts = [f"{summary.count(DONE)}/{summary.total} done"]
        counts += [
            f"{summary.count(state)} {word}"
            for state, word in ((SENT, "on RunPod"), (UNKNOWN, "unknown"), (LOST, "lost"))
            if summary.count(state)
        ]
        note = ", ".join(counts) + (f"; {record.message}" if record and record.message else "")
        duration = None
        if record is not None and record.started_at and record.finished_at:
            duration = round((record.finished_at - record.started_at).total_seconds(), 1)
        target = f"endpoint.{job.endpoint}" if job.endpoint else f"endpoint_id.{job.endpoint_id}"
        rows.append(JobStatusRow(name, target, status, None, duration, note))
    return rows


def data_plane(connection: Connection) -> JobApiPort:
    """The job API client the composition root wires (reconciler.cli.wiring.PORTS)."""
    ports = connection.ports
    if ports is None or ports.job_api is None:
        raise PodctlError(
            "the serverless job API is not wired for this command (a bug in the caller)"
        )
    return ports.job_api(connection)


def write_output(path_text: str, podctl_sha: str | None, data: bytes) -> str:
    """Write `data` to `path_text` atomically; the sha256 written.

    Never through a symlink, and never over a file podctl did not write (its content must be
    what podctl last wrote there, by sha256): such a file is left as it is (OSError).
    """
    path = Path(path_text)
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        info = None
    if info is not None:
        if stat.S_ISLNK(info.st_mode) or not stat.S_ISREG(info.st_mode):
            raise OSError(f"{path} is a symlink or not a file: podctl leaves it as it is")
        with open(path, "rb") as fh:
            there = hashlib.sha256(fh.read()).hexdigest()
        if there != podctl_sha:
            raise OSError(
                f"{path} exists and podctl did not write it (or it was changed since): "
                "move it away, or point output elsewhere"
            )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return hashlib.sha256(data).hexdigest()


def poll_first_s(connection: Connection) -> float:
    """The first poll delay: 0.5 s ($PODCTL_POLL_INTERVAL, for tests, goes below it)."""
    text = connection.env.get("PODCTL_POLL_INTERVAL", "")
    try:
        value = float(text) if text else 0.5
    except ValueError:
        value = 0.5
    return min(max(value, 0.001), 0.5)


def endpoint_wiring(
    connection: Connection,
    desired: DesiredState,
    recorded: Callable[[], Lockfile],
    local: LocalState,
    *,
    cancel_on_interrupt: bool = False,
    ask_cancel: Callable[[int], bool] | None = None,
) -> tuple[EndpointJobs, JobApiPort] | None:
    """The runner's wiring, or None when the stack has no endpoint job."""
    if not desired.endpoint_jobs:
        return None
    from reconciler.executor.endpoint_jobs import EndpointJobs
    from reconciler.workflow.endpoint_journal import EndpointJournal

    api = data_plane(connection)

    def endpoint_id(job: EndpointJobSpec) -> str | None:
        if job.endpoint_id:
            return job.endpoint_id
        return recorded_endpoint_id(recorded(), job.endpoint or "")

    def ledger(name: str) -> EndpointJournal:
        return EndpointJournal(journal_path(local.folder, local.stem, name))

    wiring = EndpointJobs(
        api=api,
        ledger=ledger,
        endpoint_id=endpoint_id,
        write_output=write_output,
        poll_first_s=poll_first_s(connection),
        cancel_on_interrupt=cancel_on_interrupt,
        ask_cancel=ask_cancel,
    )
    return wiring, api


__all__ = ["PodctlError", "endpoint_wiring", "with_endpoint_jobs"]
