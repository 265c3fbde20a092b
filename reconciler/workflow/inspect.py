"""The read-only use cases: `status` (pods desired vs actual, the job ledger) and `gpus`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from reconciler.errors import PodctlError, UsageError
from reconciler.model import (
    ActualPod,
    ActualState,
    Address,
    CloudType,
    DesiredState,
    GpuOffer,
    JobStatus,
    Lockfile,
    PodStatus,
)
from reconciler.workflow import aio
from reconciler.workflow.context import (
    Connection,
    check_stack,
    connect,
    key_path,
    load_desired,
    local_state,
    open_state,
)

if TYPE_CHECKING:
    from reconciler.planner.spend import Spend
    from reconciler.workflow.billing import BudgetStatus


@dataclass(frozen=True)
class PodStatusRow:
    """One line of `podctl status`."""

    pod: str
    desired: str  # running / stopped / absent, or "(not in spec)"
    actual: str  # RUNNING, EXITED... or "none"
    pod_id: str | None
    gpu: str | None
    cost_per_hr: float | None
    uptime_s: int | None
    ssh: str | None
    deadline: str | None = None  # max_lifetime's, ISO UTC
    time_left_s: int | None = None  # until the deadline (0: past it)
    watchdog: str = "-"  # armed / NOT armed / unknown (why) / - (none wanted or not running)

    def as_dict(self) -> dict[str, object]:
        return {
            "pod": self.pod,
            "desired": self.desired,
            "actual": self.actual,
            "pod_id": self.pod_id,
            "gpu": self.gpu,
            "cost_per_hr": self.cost_per_hr,
            "uptime_s": self.uptime_s,
            "ssh": self.ssh,
            "deadline": self.deadline,
            "time_left_s": self.time_left_s,
            "watchdog": self.watchdog,
        }


def _row(name: str, desired: str, pod: ActualPod | None) -> PodStatusRow:
    if pod is None:
        return PodStatusRow(name, desired, "none", None, None, None, None, None)
    running = pod.desired_status is PodStatus.RUNNING
    gpu = pod.gpu_display_name or pod.gpu_type_id
    return PodStatusRow(
        pod=name,
        desired=desired,
        actual=pod.desired_status.value,
        pod_id=pod.pod_id,
        gpu=f"{pod.gpu_count}x {gpu}"
        if gpu
        else (f"{pod.vcpu_count:g} vCPU {pod.cpu_flavor}" if pod.cpu_flavor else None),
        cost_per_hr=pod.cost_per_hr if running else 0.0,
        uptime_s=pod.uptime_s if running else None,
        ssh=f"{pod.ssh.host}:{pod.ssh.port}" if pod.ssh else None,
    )


def status_rows(
    desired_pods: Mapping[str, str], stack: str, actual: ActualState, recorded: Lockfile
) -> tuple[PodStatusRow, ...]:
    """Each desired pod (matched by recorded id, else markers), then the stack's other pods."""
    rows: list[PodStatusRow] = []
    used: set[str] = set()
    for name, state in desired_pods.items():
        record = recorded.pods.get(name)
        pod = actual.get(record.pod_id) if record is not None else None
        if pod is None:
            found = actual.find_by_markers(stack, name)
            pod = found[0] if found else None
        if pod is not None:
            used.add(pod.pod_id)
        rows.append(_row(name, state, pod))
    for pod in actual.of_stack(stack):
        if pod.pod_id not in used and pod.desired_status is not PodStatus.TERMINATED:
            name = pod.markers.pod if pod.markers else pod.name
            rows.append(_row(name, "(not in spec)", pod))
    return tuple(rows)


@dataclass(frozen=True)
class JobStatusRow:
    """One job line of `podctl status`: the ledger, and whether the spec wants it run."""

    job: str
    pod: str
    status: str  # pending / blocked (a job it needs failed) / running / succeeded / failed
    exit_code: int | None
    duration_s: float | None
    note: str  # why it is pending, or why it failed

    def as_dict(self) -> dict[str, object]:
        return {
            "job": self.job,
            "pod": self.pod,
            "status": self.status,
            "exit_code": self.exit_code,
            "duration_s": self.duration_s,
            "note": self.note,
        }


def job_rows(
    desired: DesiredState, recorded: Lockfile, env: Mapping[str, str]
) -> tuple[JobStatusRow, ...]:
    """Each job of the spec with its last recorded run; `pending` when a plan would run it."""
    from reconciler.jobs import job_order
    from reconciler.planner.jobs import job_prints, own_reasons
    from reconciler.workflow.context import secret_uses
    from reconciler.workflow.uploads import upload_digests

    reasons: dict[str, str] = {}
    if all(env.get(name) for name in secret_uses(desired)):  # else fingerprints are unknown
        try:
            uploads = upload_digests(desired)
        except PodctlError:
            uploads = {}
        secrets = {name: env[name] for name in secret_uses(desired)}
        reasons = own_reasons(desired, recorded, job_prints(desired, secrets, uploads))
    rows: list[JobStatusRow] = []
    blocked: dict[str, str] = {}  # job -> the failed job upstream that blocks it
    for name in job_order(desired.jobs):
        job = desired.jobs[name]
        record = recorded.jobs.get(name)
        duration = None
        if record is not None and record.started_at and record.finished_at:
            duration = round((record.finished_at - record.started_at).total_seconds(), 1)
        status = record.status.value if record is not None else "pending"
        note = record.message if record is not None else ""
        if name in reasons and (record is None or record.status is JobStatus.SUCCEEDED):
            status, note = "pending", reasons[name]
        elif status == "succeeded" and not note and job.download:  # recorded before podctl said
            note = "results in " + ", ".join(t.target for t in job.download)
        upstream = [blocked.get(n, n) for n in job.needs if n in blocked or _failed(rows, n)]
        if upstream and status == "pending":  # it cannot run until that one succeeds
            blocked[name] = upstream[0]
            status, note = "blocked", f"blocked by {Address.job(upstream[0])} (failed)"
        rows.append(
            JobStatusRow(
                job=name,
                pod=job.pod,
                status=status,
                exit_code=record.exit_code if record is not None else None,
                duration_s=duration,
                note=note,
            )
        )
    return tuple(rows)


def _failed(rows: list[JobStatusRow], job: str) -> bool:
    return any(r.job == job and r.status == "failed" for r in rows)


def status(
    connection: Connection, paths: tuple[Path, ...]
) -> tuple[str, tuple[PodStatusRow, ...], tuple[JobStatusRow, ...], BudgetStatus | None]:
    """`podctl status`: one list_pods (and one billing read with budget.max_usd_total), no lock
    taken (it changes nothing)."""
    from reconciler.workflow.billing import budget_status, read_spend

    desired = load_desired(paths)
    store = open_state(connection, desired)
    recorded = store.read()
    check_stack(recorded, desired, store.where)

    async def run() -> tuple[ActualState, Spend | None]:
        async with connect(connection) as client:
            listed = await client.list_pods()
            return listed, await read_spend(connection, client, desired, listed, recorded)

    actual, spend = aio.run(run())
    jobs = job_rows(desired, recorded, connection.env)
    from reconciler.workflow.endpoint_jobs import endpoint_job_rows

    jobs = (*jobs, *endpoint_job_rows(connection, desired, recorded))
    states = {name: _desired_state(desired, recorded, name, jobs) for name in desired.pods}
    budget_states = _budget_states(desired, spend)
    states |= budget_states
    if budget_states:  # no job runs while the budget is spent
        jobs = tuple(
            replace(j, note=f"{j.note}; not run while budget.max_usd_total is reached")
            if j.status == "pending"
            else j
            for j in jobs
        )
    rows = status_rows(states, desired.stack, actual, recorded)
    try:
        key: Path | None = key_path(connection, desired, local_state(connection, desired))
    except UsageError:  # a shared state and no team key on this runner: status still works
        key = None
    rows = _with_lifetimes(rows, desired, actual, recorded, key)
    return desired.stack, rows, jobs, budget_status(desired, spend)


def _budget_states(desired: DesiredState, spend: Spend | None) -> dict[str, str]:
    """`stopped (budget)` / `absent (budget)` for each pod once max_usd_total is reached."""
    from reconciler.model import PodState
    from reconciler.planner.spend import budget_state, total_reached

    reached = total_reached(desired.budget, spend)
    if not reached:
        return {}
    out = {}
    for name, spec in desired.pods.items():
        if spec.state is not PodState.ABSENT:
            state, _ = budget_state(spec, reached, desired.budget.action)
            out[name] = f"{state.value} (budget)"
    return out


def _with_lifetimes(
    rows: tuple[PodStatusRow, ...],
    desired: DesiredState,
    actual: ActualState,
    recorded: Lockfile,
    key: Path | None,
) -> tuple[PodStatusRow, ...]:
    """Each row with its max_lifetime deadline, the time left, and its watchdog (over SSH)."""
    from reconciler.planner.lifetime import deadline
    from reconciler.workflow.watchcheck import watchdog_states

    now = datetime.now(UTC)
    out: list[PodStatusRow] = []
    ask: dict[str, ActualPod] = {}
    for row in rows:
        spec = desired.pods.get(row.pod)
        record = recorded.pods.get(row.pod)
        if spec is None or row.pod_id is None or record is None or record.pod_id != row.pod_id:
            out.append(row)
            continue
        when = deadline(spec, record)
        left = None if when is None else max(0, int((when - now).total_seconds()))
        watched = spec.max_lifetime_s is not None or spec.idle_timeout_s is not None
        watchdog = "-"
        if watched and row.actual == PodStatus.RUNNING.value:
            watchdog = "no SSH (22/tcp)" if not spec.has_ssh else "?"
        out.append(
            replace(
                row,
                deadline=when.isoformat(timespec="seconds") if when else None,
                time_left_s=left,
                watchdog=watchdog,
            )
        )
    pods = {r.pod: r for r in out if r.watchdog == "?"}
    for name in pods:
        pod = actual.get(pods[name].pod_id or "")
        if pod is not None and pod.ssh is not None:
            ask[name] = pod
    found = aio.run(watchdog_states(ask, key, recorded)) if ask and key is not None else {}
    unknown = "unknown (no SSH endpoint yet)" if key is not None else "unknown (no SSH key given)"
    return tuple(
        replace(r, watchdog=found.get(r.pod, unknown)) if r.watchdog == "?" else r for r in out
    )


def _desired_state(
    desired: DesiredState, recorded: Lockfile, name: str, jobs: tuple[JobStatusRow, ...]
) -> str:
    """The spec's state, or what after_jobs makes of it (the planner's own rule)."""
    from reconciler.planner.decide import converged_state

    spec = desired.pods[name]
    mine = [j.job for j in jobs if j.pod == name]
    left = [j.job for j in jobs if j.pod == name and j.status in ("pending", "blocked")]
    state, why = converged_state(spec, left, recorded.jobs, mine)
    return f"{state.value} (after jobs)" if why and state is not spec.state else state.value


def gpus(connection: Connection) -> dict[CloudType, dict[str, GpuOffer]]:
    """`podctl gpus`: every GPU type's per-GPU price and stock on both clouds (one request)."""

    async def run() -> dict[CloudType, dict[str, GpuOffer]]:
        async with connect(connection) as client:
            return await client.gpu_offers()

    return aio.run(run())
