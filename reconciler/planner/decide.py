"""The decision table: one desired pod x its actual pod -> one Change (plus plan notes)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from reconciler.model import (
    ActualPod,
    AfterJobs,
    DesiredState,
    JobRecord,
    JobStatus,
    Lockfile,
    PodRecord,
    PodSpec,
    PodState,
    PodStatus,
    created_marker,
)
from reconciler.planner.diff import field_changes, is_secret
from reconciler.planner.fields import actual_view, create_fields, format_duration
from reconciler.planner.fingerprint import pod_fingerprint, view_digest
from reconciler.planner.lifetime import (
    is_lifetime_end,
    lifetime_note,
    lifetime_state,
    unknown_age_warning,
    unwatched_note,
)
from reconciler.planner.match import Match
from reconciler.planner.placement import (
    Offers,
    placements,
    running_price,
    stopped_storage_cost,
)
from reconciler.planner.spend import budget_state, is_budget_end
from reconciler.planner.ttl import ttl_reached
from reconciler.plans import Action, Change, FieldChange, Observed

RUNNING_LIKE = frozenset({PodStatus.RUNNING, PodStatus.CREATED, PodStatus.RESTARTING})
STOPPED_LIKE = frozenset({PodStatus.EXITED, PodStatus.PAUSED})
CONTAINER_RESET = (
    "the container is reset: anything outside the volume ({mount}) is lost, running processes stop"
)
REPLACE_LOSES = "the pod is terminated and created again: its volume and container are lost"
REPLACE_NETWORK = (
    "the pod is terminated and created again: its network volume is kept, the rest is lost"
)
IDLE_STOPPED = (
    "stopped while idle (idle_timeout {idle}); it resumes when a job needs it, or once "
    "idle_timeout is removed"
)
_FINAL = {PodState.RUNNING: 0, PodState.STOPPED: 1, PodState.ABSENT: 2}
NO_OBSERVED = Observed(pod_id=None, status="", digest="")


@dataclass(frozen=True)
class Context:
    """What every decision needs besides the pod itself."""

    desired: DesiredState
    recorded: Lockfile
    offers: Offers
    secrets: Mapping[str, str]
    jobs_to_run: frozenset[str]  # the jobs this plan runs, by name
    now: datetime | None = None  # for max_lifetime; None: no deadline is checked
    budget_end: str = ""  # budget.max_usd_total reached (the reason); "" when not

    @property
    def secret_values(self) -> frozenset[str]:
        return frozenset(v for v in self.secrets.values() if v)

    def jobs_left(self, pod: str) -> list[str]:
        """The jobs of `pod` this plan runs (sorted); empty when it runs none."""
        return sorted(n for n in self.jobs_to_run if self.desired.jobs[n].pod == pod)


@dataclass
class Decision:
    """A change and what it adds to the plan."""

    change: Change
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    ends_stopped_gb: int | None = None  # volume GB billed while stopped once applied


def observed(
    pod: ActualPod | None,
    secret_values: frozenset[str] = frozenset(),
    secret_keys: frozenset[str] = frozenset(),
) -> Observed:
    """What the plan saw of a pod: id, status and a digest of its compared fields."""
    if pod is None:
        return NO_OBSERVED
    digest = view_digest(actual_view(pod), secret_values, secret_keys)
    return Observed(pod_id=pod.pod_id, status=pod.desired_status.value, digest=digest)


def _filled(ctx: Context, pod: str) -> frozenset[str]:
    """The env keys the lockfile says podctl once filled from from_env on this pod."""
    record = ctx.recorded.pods.get(pod)
    return frozenset(record.secret_env) if record is not None else frozenset()


def cost_now(pod: ActualPod | None) -> float:
    if pod is None or pod.desired_status not in RUNNING_LIKE:
        return 0.0
    return pod.cost_per_hr or 0.0


def converged_state(
    spec: PodSpec, left: Sequence[str], recorded: Mapping[str, JobRecord], jobs: Sequence[str]
) -> tuple[PodState, str]:
    """The state a pod converges to, and a reason when after_jobs decided it.

    `left`: its jobs this plan runs; `jobs`: all its jobs; `recorded`: the job ledger. A pod
    whose jobs all succeeded (none left) is stopped or gone per after_jobs; one with jobs to
    run is running. `podctl status` shows the same state.
    """
    if spec.state is not PodState.RUNNING or spec.after_jobs is AfterJobs.KEEP:
        return spec.state, ""
    if left:
        return PodState.RUNNING, f"jobs to run: {', '.join(left)}"
    done = bool(jobs) and all(
        (r := recorded.get(n)) is not None and r.status is JobStatus.SUCCEEDED for n in jobs
    )
    if done:
        if spec.after_jobs is AfterJobs.STOP:
            return PodState.STOPPED, "stopped after its jobs"
        return PodState.ABSENT, "terminated after its jobs"
    return spec.state, ""


def _effective_state(spec: PodSpec, ctx: Context) -> tuple[PodState, str]:
    jobs = [j.name for j in ctx.desired.jobs.values() if j.pod == spec.name]
    return converged_state(spec, ctx.jobs_left(spec.name), ctx.recorded.jobs, jobs)


def _change(
    spec: PodSpec, m: Match, ctx: Context, action: Action, reasons: list[str], **kw: Any
) -> Change:
    """A change of this pod; costs default to what it costs now (a no-op's before and after)."""
    pod = m.pod
    change = Change(
        address=spec.address,
        action=action,
        reason="; ".join(r for r in reasons if r),
        pod=spec.name,
        pod_id=pod.pod_id if pod is not None else None,
        observed=observed(pod, ctx.secret_values, _filled(ctx, spec.name)),
        cost_before=cost_now(pod),
        cost_after=cost_now(pod),
    )
    return replace(change, **kw)


def _names(fields: tuple[FieldChange, ...]) -> str:
    return ", ".join(f.path for f in fields)


def decide(spec: PodSpec, m: Match, ctx: Context) -> Decision:
    """One row of the decision table (desired state x actual status), max_lifetime applied."""
    state, why = _effective_state(spec, ctx)
    record = ctx.recorded.pods.get(spec.name)
    if record is not None and m.pod is not None and record.pod_id != m.pod.pod_id:
        record = None  # the record is of another pod: its creation time is not this one's
    if record is None and m.pod is not None and m.pod.markers is not None:
        created = created_marker(m.pod.env)  # adopted without its lockfile: the pod says
        if created is not None:
            record = PodRecord(m.pod.pod_id, m.pod.markers.uid, "", created_at=created)
    state, why = lifetime_state(spec, record, ctx.now, state, why)
    if ctx.budget_end:
        ends, reason = budget_state(spec, ctx.budget_end, ctx.desired.budget.action)
        if _FINAL[ends] >= _FINAL[state]:
            state, why = ends, reason
    idle = spec.idle_timeout_s is not None and not ctx.jobs_left(spec.name)
    if (
        state is PodState.RUNNING
        and idle
        and m.pod is not None
        and m.pod.desired_status in STOPPED_LIKE
    ):
        # the watchdog (or anyone) stopped it while idle: no job wants it, so it stays stopped
        state, why = (
            PodState.STOPPED,
            IDLE_STOPPED.format(idle=format_duration(spec.idle_timeout_s)),
        )
    if state is PodState.STOPPED and m.pod is not None and m.pod.desired_status in STOPPED_LIKE:
        ttl = ttl_reached(spec, m.pod, record, ctx.now)
        if ttl:  # a pod left stopped bills its volume: past stopped_ttl it is ended
            state, why = PodState.ABSENT, f"{why}; {ttl}" if why else ttl
    decision = _decide(spec, m, ctx, state, why)
    if decision.change.is_noop and why.startswith(IDLE_STOPPED.split("{", 1)[0]):
        decision.notes.append(f"{spec.address}: {why}")
    if decision.change.is_noop and is_lifetime_end(why) and not is_budget_end(why):
        decision.notes.append(lifetime_note(spec, why, gone=m.pod is None))
    if m.pod is not None or decision.change.action is Action.CREATE:
        note = unwatched_note(spec)
        if note and state is PodState.RUNNING:
            decision.notes.append(note)
    unknown_age = record is None or record.created_at is None
    if spec.max_lifetime_s is not None and m.pod is not None and unknown_age:
        decision.warnings.append(unknown_age_warning(spec, m.pod.pod_id))
    return decision


def _decide(spec: PodSpec, m: Match, ctx: Context, state: PodState, why: str) -> Decision:
    pod = m.pod
    adopted = "adopted by markers" if m.adopted else ""
    if pod is None:
        return _decide_gone(spec, m, ctx, state, why)
    status = pod.desired_status
    if status not in RUNNING_LIKE and status not in STOPPED_LIKE:
        msg = f"{spec.address}: RunPod reports status {status.value} for pod {pod.pod_id}"
        return Decision(
            _change(spec, m, ctx, Action.NOOP, [adopted, f"status {status.value}: no action"]),
            warnings=[f"{msg}; podctl takes no action until it is known"],
        )
    if state is PodState.ABSENT:
        return Decision(
            _change(
                spec, m, ctx, Action.TERMINATE, [adopted, why or "state is absent"], cost_after=0.0
            )
        )
    record = ctx.recorded.pods.get(spec.name)
    drift = (
        record is not None
        and record.pod_id == pod.pod_id
        and record.fingerprint == pod_fingerprint(spec)
    )
    fields = field_changes(spec, pod, ctx.secrets, drift=drift, filled=_filled(ctx, spec.name))
    replace_fields = tuple(f for f in fields if f.forces_replace)
    what = _what(spec, fields)
    running = status in RUNNING_LIKE
    if state is PodState.STOPPED:
        pending = [f"changes wait until the pod runs again: {_names(fields)}"] if fields else []
        if running:
            change = _change(
                spec,
                m,
                ctx,
                Action.STOP,
                [adopted, why or "state is stopped"],
                cost_after=stopped_storage_cost(_gb(pod, spec)),  # a stopped pod bills its volume
            )
            return Decision(_with_warnings(change, pending), ends_stopped_gb=_gb(pod, spec))
        # the changes that wait stay on the no-op: the plan counts them as pending
        change = _change(
            spec,
            m,
            ctx,
            Action.NOOP,
            [adopted, why or "stopped, as desired", "changes wait until it runs" if fields else ""],
            fields=fields,
        )
        return Decision(
            change,
            warnings=[f"{spec.address}: {w}" for w in pending],
            ends_stopped_gb=_gb(pod, spec),
        )
    if replace_fields:
        chain = placements(spec, ctx.offers)
        return Decision(
            _change(
                spec,
                m,
                ctx,
                Action.REPLACE,
                [adopted, why, f"{what} ({_names(replace_fields)} forces replacement)"],
                fields=fields,
                placements=chain,
                cost_after=chain[0].price_per_hr if chain else None,
                warnings=(REPLACE_NETWORK if spec.network_volume else REPLACE_LOSES,),
            )
        )
    reset = CONTAINER_RESET.format(mount=pod.volume_mount or spec.volume_mount)
    if not running:
        reasons = [adopted, why, "stopped; state is running"]
        if fields:
            reasons.append(f"then updated in place ({what})")
        return Decision(
            _change(
                spec,
                m,
                ctx,
                Action.RESUME,
                reasons,
                fields=fields,
                cost_after=running_price(spec, pod, ctx.offers),
                warnings=(reset,) if fields else (),
            )
        )
    if fields:
        return Decision(
            _change(
                spec, m, ctx, Action.UPDATE, [adopted, why, what], fields=fields, warnings=(reset,)
            )
        )
    return Decision(_change(spec, m, ctx, Action.NOOP, [adopted, why or "up to date"]))


def _what(spec: PodSpec, fields: tuple[FieldChange, ...]) -> str:
    """Why fields differ: the spec moved, the pod moved (drift), or a from_env value differs."""
    groups = (
        ("spec changed", tuple(f for f in fields if not f.drift and not is_secret(spec, f.path))),
        ("changed outside podctl", tuple(f for f in fields if f.drift)),
        ("from_env value differs", tuple(f for f in fields if is_secret(spec, f.path))),
    )
    return "; ".join(f"{label}: {_names(group)}" for label, group in groups if group)


def _gb(pod: ActualPod, spec: PodSpec) -> int:
    return pod.volume_gb if pod.volume_gb is not None else spec.volume_gb


def _with_warnings(change: Change, warnings: list[str]) -> Change:
    return replace(change, warnings=(*change.warnings, *warnings))


def _decide_gone(spec: PodSpec, m: Match, ctx: Context, state: PodState, why: str) -> Decision:
    """Rows with no actual pod: create, or a no-op saying why not."""
    if state is PodState.RUNNING:
        reason = why or ("deleted outside podctl" if m.deleted_outside else "new")
        if why and m.deleted_outside:
            reason = f"deleted outside podctl; {why}"
        chain = placements(spec, ctx.offers)
        return Decision(
            _change(
                spec,
                m,
                ctx,
                Action.CREATE,
                [reason],
                fields=create_fields(spec),
                placements=chain,
                cost_after=chain[0].price_per_hr if chain else None,
            )
        )
    if state is PodState.STOPPED:
        if why:
            return Decision(_change(spec, m, ctx, Action.NOOP, [why]))
        reason = "not created: state is stopped"
        return Decision(
            _change(spec, m, ctx, Action.NOOP, [reason]), notes=[f"{spec.address}: {reason}"]
        )
    return Decision(_change(spec, m, ctx, Action.NOOP, [why or "absent, as desired"]))
