"""Which jobs run and why: fingerprints against the job ledger, `needs`, new disks, after_jobs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from reconciler.jobs import changed_inputs, job_fingerprint, job_inputs, job_order
from reconciler.model import Address, AfterJobs, DesiredState, JobStatus, Lockfile, PodState, Rerun
from reconciler.planner.placement import stopped_storage_cost
from reconciler.plans import Action, Change

ALWAYS = "rerun: always"
NEW_POD_ACTIONS = frozenset({Action.CREATE, Action.REPLACE})
POD_READY_ACTIONS = frozenset({Action.CREATE, Action.REPLACE, Action.RESUME, Action.UPDATE})


@dataclass(frozen=True)
class JobPrint:
    """A job's fingerprint and its per-input hashes."""

    fingerprint: str
    inputs: Mapping[str, str]


def job_prints(
    desired: DesiredState, secrets: Mapping[str, str], uploads: Mapping[str, str]
) -> dict[str, JobPrint]:
    """Every job's fingerprint; `uploads` maps a job to the digest of its local upload files."""
    out: dict[str, JobPrint] = {}
    for name, job in desired.jobs.items():
        inputs = job_inputs(
            job, desired.pods.get(job.pod), secrets=secrets, upload_digest=uploads.get(name, "")
        )
        out[name] = JobPrint(job_fingerprint(inputs), inputs)
    return out


def own_reasons(
    desired: DesiredState, recorded: Lockfile, prints: Mapping[str, JobPrint]
) -> dict[str, str]:
    """Jobs that run for a reason of their own (new, changed, failed, unfinished, always)."""
    reasons: dict[str, str] = {}
    for name, job in desired.jobs.items():
        record = recorded.jobs.get(name)
        now = prints[name]
        if record is None:
            reasons[name] = "new"
        elif record.status is JobStatus.RUNNING:
            reasons[name] = "unfinished: podctl stopped while it ran; reattach or collect it"
        elif job.rerun is Rerun.ALWAYS:
            reasons[name] = ALWAYS
        elif job.rerun is Rerun.NEVER and record.status is JobStatus.SUCCEEDED:
            continue
        elif record.fingerprint != now.fingerprint:
            names = changed_inputs(record.inputs, now.inputs)
            reasons[name] = "changed: " + ", ".join(names) if names else "changed"
        elif record.status is JobStatus.FAILED and record.exit_code == 0:
            reasons[name] = "its results are not downloaded yet (it is not run again)"
        elif record.status is JobStatus.FAILED:
            code = "" if record.exit_code is None else f" (exit {record.exit_code})"
            reasons[name] = f"failed before{code}"
    return reasons


def with_dependants(desired: DesiredState, reasons: dict[str, str]) -> dict[str, str]:
    """A job that needs a job that runs, runs after it."""
    out = dict(reasons)
    for name in job_order(desired.jobs):
        if name in out:
            continue
        ran = [n for n in desired.jobs[name].needs if n in out]
        if ran:
            out[name] = f"needs {Address.job(ran[0])}, which runs"
    return out


def new_disk_reasons(
    desired: DesiredState, recorded: Lockfile, reasons: Mapping[str, str], pods: Sequence[Change]
) -> dict[str, str]:
    """Jobs whose pod is created anew in this plan: its disk is new, their results are gone."""
    fresh = {
        c.pod: c.action
        for c in pods
        if c.action in NEW_POD_ACTIONS and not c.then_stop and c.pod in desired.pods
    }
    out = dict(reasons)
    for name, job in desired.jobs.items():
        if name in out or job.pod not in fresh:
            continue
        record = recorded.jobs.get(name)
        if record is None:
            continue
        if job.rerun is Rerun.NEVER and record.status is JobStatus.SUCCEEDED:
            continue
        word = "replaced" if fresh[job.pod] is Action.REPLACE else "created again"
        out[name] = f"its pod is {word}: a new disk"
    return with_dependants(desired, out)


def job_changes(
    desired: DesiredState,
    reasons: Mapping[str, str],
    prints: Mapping[str, JobPrint],
    pods: Sequence[Change],
) -> list[Change]:
    """run-job changes in `needs` order, then the after_jobs stop/terminate they lead to."""
    by_pod = {c.pod: c for c in pods}  # the last change of each pod (the first is enough here)
    changes: list[Change] = []
    for name in job_order(desired.jobs):
        if name not in reasons:
            continue
        job = desired.jobs[name]
        pod_change = by_pod.get(job.pod)
        depends = [str(Address.job(n)) for n in job.needs if n in reasons]
        pod_id = None
        if pod_change is not None:
            if pod_change.action in POD_READY_ACTIONS:
                depends.insert(0, pod_change.address)
            if pod_change.action not in NEW_POD_ACTIONS:
                pod_id = pod_change.pod_id
        changes.append(
            Change(
                address=job.address,
                action=Action.RUN_JOB,
                reason=reasons[name],
                pod=job.pod,
                pod_id=pod_id,
                depends_on=tuple(depends),
                job=name,
                fingerprint=prints[name].fingerprint,
            )
        )
    changes += _after_jobs(desired, changes, by_pod)
    return changes


def _after_jobs(
    desired: DesiredState, runs: Sequence[Change], by_pod: Mapping[str, Change]
) -> list[Change]:
    """A pod with `after_jobs: stop|terminate` is stopped or terminated once its jobs succeed."""
    out: list[Change] = []
    for pod_name, spec in desired.pods.items():
        if spec.after_jobs is AfterJobs.KEEP or spec.state is not PodState.RUNNING:
            continue
        mine = [c.address for c in runs if c.pod == pod_name]
        if not mine:
            continue
        pod_change = by_pod.get(pod_name)
        is_new = pod_change is not None and pod_change.action in NEW_POD_ACTIONS
        stop = spec.after_jobs is AfterJobs.STOP
        out.append(
            Change(
                address=spec.address,
                action=Action.STOP if stop else Action.TERMINATE,
                reason=f"{'stopped' if stop else 'terminated'} after its jobs succeed",
                pod=pod_name,
                pod_id=None if is_new or pod_change is None else pod_change.pod_id,
                depends_on=tuple(mine),
                observed=None if pod_change is None else pod_change.observed,
                # it ends the pod as its jobs leave it: at the pod's $/h once its change ran
                cost_before=(pod_change.cost_after or 0.0) if pod_change is not None else 0.0,
                cost_after=stopped_storage_cost(spec.volume_gb) if stop else 0.0,
            )
        )
    return out
