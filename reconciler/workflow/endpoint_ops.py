"""`podctl logs JOB`, `podctl cancel JOB` and `podctl purge-queue endpoint.NAME` for endpoint
jobs: read from the job's ledger journal, act through the job API."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

from reconciler.errors import PodctlError, UsageError
from reconciler.jobs.endpoint_ledger import SENT, TERMINAL, fold, line_prints
from reconciler.model import DesiredState, EndpointJobSpec
from reconciler.workflow.context import Connection, load_desired, local_state, open_state
from reconciler.workflow.endpoint_jobs import data_plane, recorded_endpoint_id, target_of
from reconciler.workflow.endpoint_journal import journal_path, read_records

MAX_SHOWN = 2000  # characters of one output or error in a log line


def _job(desired: DesiredState, job: str) -> EndpointJobSpec:
    name = job.removeprefix("job.")
    spec = desired.endpoint_jobs.get(name)
    if spec is None:
        known = ", ".join(desired.endpoint_jobs) or "(none)"
        raise UsageError(
            f"No endpoint job {name!r} in stack {desired.stack}; its endpoint jobs: {known}."
        )
    return spec


def _short(value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= MAX_SHOWN else text[:MAX_SHOWN] + f"... ({len(text)} chars)"


def endpoint_job_logs(
    connection: Connection,
    desired: DesiredState,
    job: EndpointJobSpec,
    on_line: Callable[[str], None],
    *,
    tail: int | None = None,
) -> None:
    """Every request's story from the ledger: submitted ids, RunPod states, stream chunks,
    outputs' arrival and errors, one line each (`line N` for a batch)."""
    local = local_state(connection, desired)
    records = read_records(journal_path(local.folder, local.stem, job.name))
    if not records:
        raise PodctlError(f"Job {job.name} has not run yet: `podctl apply` runs it.")
    numbers = {p: n for n, p in enumerate(line_prints(job, target_of(desired, job)), start=1)}
    lines: list[str] = []
    for rec in records:
        kind = rec.get("e")
        print_ = rec.get("p")
        who = f"line {numbers[print_]}: " if job.batch and print_ in numbers else ""
        if kind == "begin":
            lines.append(f"apply started ({rec.get('lines')} request(s))")
        elif kind == "submitting":
            lines.append(f"{who}sending /run (try {rec.get('a')})")
        elif kind == "submitted":
            lines.append(f"{who}submitted as {rec.get('id')}")
        elif kind == "unknown":
            lines.append(f"{who}unknown: {rec.get('why')} (not sent again)")
        elif kind == "state" and rec.get("s") != "COMPLETED":  # the `done` line says it
            lines.append(f"{who}{rec.get('s')}")
        elif kind == "stream":
            lines.append(f"{who}[stream] {_short(rec.get('c'))}")
        elif kind == "retrying":
            lines.append(f"{who}retrying {rec.get('id')} (/retry)")
        elif kind == "done":
            lines.append(f"{who}COMPLETED: output {_short(rec.get('o'))}")
        elif kind == "failed":
            lines.append(f"{who}{rec.get('s')}: {_short(rec.get('err') or 'no error text')}")
        elif kind == "lost":
            lines.append(f"{who}lost: {rec.get('why')}")
        elif kind == "output":
            lines.append(f"wrote {rec.get('path')}")
    for text in lines[-tail:] if tail else lines:
        on_line(text)


def _endpoint_id(connection: Connection, desired: DesiredState, job: EndpointJobSpec) -> str:
    if job.endpoint_id:
        return job.endpoint_id
    found = recorded_endpoint_id(open_state(connection, desired).read(), job.endpoint or "")
    if found is None:
        raise PodctlError(f"{job.target} has no recorded id: `podctl apply` creates it.")
    return found


def cancel_job(connection: Connection, paths: tuple[Path, ...], job: str) -> list[str]:
    """/cancel every request of the job the ledger knows as sent and not ended; their ids."""
    desired = load_desired(paths)
    spec = _job(desired, job)
    local = local_state(connection, desired)
    folded = fold(read_records(journal_path(local.folder, local.stem, spec.name)))
    prints = line_prints(spec, target_of(desired, spec))
    ids = [
        line.job_id
        for p in prints
        if (line := folded.lines.get(p)) is not None
        and line.state == SENT
        and line.job_id
        and line.runpod_state not in TERMINAL
    ]
    if not ids:
        return []
    endpoint_id = _endpoint_id(connection, desired, spec)

    async def run() -> list[str]:
        from reconciler.errors import JobApiError, JobGone

        done: list[str] = []
        api = data_plane(connection)
        try:
            for job_id in ids:
                try:
                    await api.cancel(endpoint_id, job_id)
                except JobGone:
                    continue
                except JobApiError as exc:
                    raise PodctlError(f"cancelling {job_id} failed: {exc}") from None
                done.append(job_id)
        finally:
            await api.aclose()
        return done

    return asyncio.run(run())


def purge_queue(connection: Connection, paths: tuple[Path, ...], address: str) -> int:
    """/purge-queue of the stack's endpoint `endpoint.NAME` (or `endpoint_id.ID`): queued
    requests are removed, running ones go on. The number removed."""
    kind, _, name = address.partition(".")
    if kind not in ("endpoint", "endpoint_id") or not name:
        raise UsageError(
            f"{address!r}: write endpoint.NAME (an endpoint of the stack) or endpoint_id.ID."
        )
    if kind == "endpoint_id":
        endpoint_id = name
    else:
        desired = load_desired(paths)
        found = recorded_endpoint_id(open_state(connection, desired).read(), name)
        if found is None:
            raise PodctlError(f"endpoint.{name} has no recorded id: `podctl apply` creates it.")
        endpoint_id = found

    async def run() -> int:
        api = data_plane(connection)
        try:
            answer = await api.purge_queue(endpoint_id)
        finally:
            await api.aclose()
        removed = answer.get("removed")
        return removed if isinstance(removed, int) else 0

    return asyncio.run(run())
