"""Which endpoint jobs run and why: fingerprints against the ledger, unknown lines, needs.

Pure. The workflow folds each job's journal into a `Summary` (counts of its current lines by
state); this decides. A request whose /run answer was lost (unknown), or whose result expired
before podctl collected it (lost), may have run: it is sent again only with `rerun: always`,
and the plan says so; otherwise the plan warns and nothing is sent for it.

An endpoint job waits for the jobs it needs that run in the same plan, but does not run again
because they did: its requests depend on its own inputs only (a changed input file runs the
lines that changed).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from reconciler.jobs.endpoint_ledger import (
    DONE,
    FAILED,
    LOST,
    PENDING,
    SENT,
    UNKNOWN,
    Summary,
    numbers,
)
from reconciler.model import DesiredState, EndpointJobSpec, JobStatus, Lockfile, Rerun
from reconciler.plans import Action, Change

ALWAYS = "rerun: always"
# what the worker runs: a change here may change the outputs, so the requests run again
# (scaling, workers, timeouts and placement do not change what a request returns)
_WORKER_FIELDS = ("image", "template", "env", "docker_args", "registry")


def request_target(desired: DesiredState, job: EndpointJobSpec) -> str:
    """What a job's requests are hashed against: the external endpoint's id, or the stack
    endpoint's name and what its workers run (image, env...: from_env by name only)."""
    if job.endpoint_id:
        return job.endpoint_id
    name = job.endpoint or ""
    spec = desired.endpoints.get(name)
    if spec is None:
        return f"endpoint.{name}"
    from reconciler.planner.endpoints import _shape

    shape = _shape(spec)
    worker = json.dumps({k: shape.get(k) for k in _WORKER_FIELDS}, sort_keys=True)
    return f"endpoint.{name}@{hashlib.sha256(worker.encode()).hexdigest()[:16]}"


@dataclass(frozen=True)
class EndpointJobPlan:
    changes: tuple[Change, ...]
    warnings: tuple[str, ...]


def _maybe_ran(summary: Summary) -> str:
    parts = []
    if summary.unknown_lines:
        parts.append(
            f"line(s) {numbers(summary.unknown_lines)} unknown (their /run answer was lost)"
        )
    if summary.lost_lines:
        parts.append(f"line(s) {numbers(summary.lost_lines)} lost (their result expired)")
    return " and ".join(parts)


def _changed(before: Mapping[str, str], after: Mapping[str, str]) -> list[str]:
    return [k for k in sorted(set(before) | set(after)) if before.get(k) != after.get(k)]


def _order(desired: DesiredState) -> list[str]:
    """Endpoint job names, each after the endpoint jobs it needs (spec order otherwise)."""
    jobs = desired.endpoint_jobs
    done: dict[str, None] = {}

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in done or name not in jobs or name in path:
            return
        for need in jobs[name].needs:
            visit(need, (*path, name))
        done[name] = None

    for name in jobs:
        visit(name, ())
    return list(done)


def endpoint_job_changes(
    desired: DesiredState,
    recorded: Lockfile,
    prints: Mapping[str, str],
    inputs: Mapping[str, Mapping[str, str]],
    summaries: Mapping[str, Summary],
    earlier: Sequence[Change],
) -> EndpointJobPlan:
    """run-job changes for the endpoint jobs, after the changes they depend on."""
    running = {c.address for c in earlier if c.action is Action.RUN_JOB}
    running |= {c.address for c in earlier if c.address.startswith("endpoint.") and not c.is_noop}
    changes: list[Change] = []
    warnings: list[str] = []
    for name in _order(desired):
        job = desired.endpoint_jobs[name]
        record = recorded.jobs.get(name)
        summary = summaries.get(name) or Summary(len(job.inputs), {PENDING: len(job.inputs)})
        maybe = _maybe_ran(summary)
        reason = ""
        if record is None:
            reason = "new"
            if summary.count(DONE) and summary.count(DONE) == summary.total:
                reason = "new to the state, but every request is done in its ledger: collected"
        elif record.status is JobStatus.RUNNING:
            sent = summary.count(SENT)
            reason = "unfinished: podctl stopped while it ran"
            if sent:
                reason += f"; reattaches to {sent} request(s) by id, not sending them again"
        elif job.rerun is Rerun.ALWAYS:
            reason = ALWAYS
            if maybe:
                reason += f"; {maybe} are sent again: they may run twice"
        elif job.rerun is Rerun.NEVER and record.status is JobStatus.SUCCEEDED:
            continue
        elif record.fingerprint != prints[name]:
            names = _changed(record.inputs, inputs.get(name, {}))
            reason = "changed: " + ", ".join(names) if names else "changed"
            if job.batch and summary.count(DONE):
                reason += f" ({summary.count(DONE)} line(s) already done are kept)"
        elif record.status is JobStatus.FAILED:
            again = summary.count(FAILED) + summary.count(PENDING) + summary.count(SENT)
            if again:
                reason = f"failed before: {again} request(s) sent again"
        if maybe and job.rerun is not Rerun.ALWAYS and record is not None:
            warnings.append(
                f"job.{name}: {maybe}: they may have run, so podctl does not send them "
                "again; `rerun: always` sends them again (they may run twice)"
            )
        if not reason:
            continue
        needs = [f"job.{n}" for n in job.needs if f"job.{n}" in running]
        if job.endpoint and f"endpoint.{job.endpoint}" in running:
            needs.insert(0, f"endpoint.{job.endpoint}")
        target = f"endpoint.{job.endpoint}" if job.endpoint else f"endpoint_id.{job.endpoint_id}"
        change = Change(
            address=job.address,
            action=Action.RUN_JOB,
            reason=reason,
            pod=target,
            depends_on=tuple(needs),
            job=name,
            fingerprint=prints[name],
        )
        changes.append(change)
        running.add(job.address)
    return EndpointJobPlan(tuple(changes), tuple(warnings))


__all__ = ["LOST", "UNKNOWN", "EndpointJobPlan", "endpoint_job_changes"]
