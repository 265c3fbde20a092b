"""plan(): every pod name of the stack through matching and the decision table, then checks."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime

from reconciler.model import (
    ActualPod,
    ActualState,
    Address,
    CloudType,
    DesiredState,
    GpuOffer,
    Lockfile,
    PodState,
    PodStatus,
)
from reconciler.planner.budget import budget_findings
from reconciler.planner.decide import Context, Decision, cost_now, decide, observed
from reconciler.planner.endpoints import endpoint_target, plan_endpoints
from reconciler.planner.fingerprint import spec_digest
from reconciler.planner.forget import FORGOTTEN, forgotten
from reconciler.planner.jobs import (
    ALWAYS,
    job_changes,
    job_prints,
    new_disk_reasons,
    own_reasons,
    with_dependants,
)
from reconciler.planner.lifetime import without_expired
from reconciler.planner.match import marked_pods, match_pod, stack_pod_names
from reconciler.planner.placement import placement_findings, stopped_storage_cost
from reconciler.planner.spend import Spend, spend_findings, total_reached
from reconciler.plans import Action, Change, Plan

ORPHAN = (
    "orphan: another pod with this stack's markers for {address} (a create whose answer was lost)"
)


def _terminate(name: str, pod: ActualPod, reason: str, address: str, ctx: Context) -> Change:
    return Change(
        address=address,
        action=Action.TERMINATE,
        reason=reason,
        pod=name,
        pod_id=pod.pod_id,
        observed=observed(pod, ctx.secret_values),
        cost_before=cost_now(pod),
        cost_after=0.0,
    )


TERMINATE_STOPPED_LOSES = "the pod is stopped, not gone: terminating it deletes its volume"


def _terminate_decision(
    name: str, pod: ActualPod, reason: str, address: str, ctx: Context
) -> Decision:
    """Terminate a pod of the stack, unless RunPod reports a status podctl does not know."""
    change = _terminate(name, pod, reason, address, ctx)
    if pod.desired_status is PodStatus.EXITED:  # all it keeps is its volume: that goes too
        change = replace(change, warnings=(*change.warnings, TERMINATE_STOPPED_LOSES))
    if pod.desired_status is not PodStatus.UNKNOWN:
        return Decision(change)
    held = replace(change, action=Action.NOOP, reason=f"{reason}; status UNKNOWN: no action")
    return Decision(
        replace(held, cost_after=held.cost_before),
        warnings=[
            f"{address}: RunPod reports status UNKNOWN for pod {pod.pod_id}; podctl does not "
            f"terminate it until it is known ({reason})"
        ],
    )


def _extra_address(name: str, pod: ActualPod) -> str:
    """Address of a further pod under one name: `pod.NAME[POD_ID]`."""
    return str(Address.pod(name, pod.pod_id))


def _pod_decisions(
    name: str,
    desired: DesiredState,
    actual: ActualState,
    ctx: Context,
    destroy: bool,
    marked: dict[str, tuple[ActualPod, ...]],
) -> list[Decision]:
    """The change for one pod name, then a terminate per further pod under that name."""
    m = match_pod(name, actual, ctx.recorded, marked)
    spec = desired.pods.get(name)
    gone = "destroy" if destroy else "removed from the spec"
    out: list[Decision] = []
    if (destroy or spec is None) and m.pod is not None:
        out.append(_terminate_decision(name, m.pod, gone, str(Address.pod(name)), ctx))
    elif destroy and spec is not None:
        out.append(Decision(_absent_noop(name)))
    elif spec is not None:
        out.append(decide(spec, m, ctx))
    extra = gone if destroy or spec is None else ORPHAN.format(address=Address.pod(name))
    out += [_terminate_decision(name, o, extra, _extra_address(name, o), ctx) for o in m.orphans]
    return out


def _absent_noop(name: str) -> Change:
    return Change(
        address=str(Address.pod(name)),
        action=Action.NOOP,
        reason="absent, as destroy asks",
        pod=name,
        observed=observed(None),
        cost_before=0.0,
        cost_after=0.0,
    )


def _protect_errors(changes: list[Change], desired: DesiredState, destroy: bool) -> list[str]:
    errors = []
    for c in changes:
        spec = desired.pods.get(c.pod)
        if spec is None or not spec.protect or c.action not in (Action.TERMINATE, Action.REPLACE):
            continue
        if c.address != spec.address:
            continue  # an orphan: cleaning it up is not what protect guards
        how = (
            "run `podctl destroy --force` to destroy it anyway"
            if destroy
            else f"set protect: false on pods.{c.pod} first if that is intended"
        )
        errors.append(
            f"{c.address} is protected (protect: true) and this plan would {c.action.value} it "
            f"({c.reason}); {how}"
        )
    return errors


def plan(
    desired: DesiredState,
    actual: ActualState,
    recorded: Lockfile,
    *,
    offers: Mapping[CloudType, Mapping[str, GpuOffer]],
    secrets: Mapping[str, str],
    targets: frozenset[str] = frozenset(),
    destroy: bool = False,
    force: bool = False,
    ignore_budget: bool = False,
    job_uploads: Mapping[str, str] | None = None,
    now: datetime | None = None,
    spend: Spend | None = None,
) -> Plan:
    """Desired + actual + recorded -> the changes that converge the stack, no-ops included.

    `job_uploads` maps a job to the digest of its local upload files (the workflow reads
    them; the planner does no I/O). Jobs run when `planner.jobs` says so, and a pod with a
    job to run is kept (or brought back) running until its jobs are done. `now` checks each
    pod's max_lifetime: a pod past it is stopped or terminated, and its jobs do not run.
    `spend` is what the stack's pods cost so far (budget.max_usd_total; None: not read).
    """
    prints = job_prints(desired, secrets, job_uploads or {})
    reasons = {} if destroy else with_dependants(desired, own_reasons(desired, recorded, prints))
    reasons = without_expired(desired, reasons, recorded, now)
    unrun = _jobs_of_absent_pods(desired, reasons)
    reasons = {n: r for n, r in reasons.items() if n not in unrun}
    budget_end = "" if destroy or ignore_budget else total_reached(desired.budget, spend)
    if budget_end:
        reasons = {}  # no job runs: it would keep (or bring back) its pod
    ctx = Context(desired, recorded, offers, secrets, frozenset(reasons), now, budget_end)
    marked = marked_pods(desired.stack, actual)
    names = sorted(set(desired.pods) | stack_pod_names(recorded, marked))
    errors: list[str] = []
    endpoints = plan_endpoints(
        desired, actual, recorded, secrets=secrets, destroy=destroy, force=force
    )
    targeted = {c.address for c in endpoints.changes} & targets  # --target endpoint.NAME
    unknown = sorted(t for t in targets - targeted if _target_pod(t) not in names)
    errors += [
        f"target {t} names no endpoint of stack {desired.stack}; use endpoint.NAME with an "
        "endpoint of the spec"
        if t.startswith("endpoint.")
        else f"target {t} names no pod of stack {desired.stack}; use pod.NAME with a pod of "
        "the spec"
        for t in unknown
    ]
    decisions = [d for n in names for d in _pod_decisions(n, desired, actual, ctx, destroy, marked)]
    if targets:
        decisions = [d for d in decisions if d.change.pod in _pods(targets)]
    changes = [d.change for d in decisions]
    if not destroy:
        reasons = {} if budget_end else new_disk_reasons(desired, recorded, reasons, changes)
        if targets:
            reasons = {n: r for n, r in reasons.items() if desired.jobs[n].pod in _pods(targets)}
        changes += job_changes(desired, reasons, prints, changes)
    warnings: list[str] = []
    for d in decisions:
        warnings += d.warnings
    warnings += [
        f"{c.address} has `rerun: always`: every apply (and every reconcile round) runs it again"
        for c in changes
        if c.action is Action.RUN_JOB and c.reason == ALWAYS
    ]
    if not force:
        errors += _protect_errors(changes, desired, destroy)
    notes = [n for d in decisions for n in d.notes] + list(unrun.values())
    for c in changes:
        spec = desired.pods.get(c.pod)
        if spec is None or c.action not in (Action.CREATE, Action.REPLACE, Action.RESUME):
            continue
        pod = actual.get(c.pod_id) if c.action is Action.RESUME and c.pod_id else None
        on = (pod.gpu_type_id, pod.cloud) if pod and pod.gpu_type_id and pod.cloud else None
        found = placement_findings(spec, offers, on)
        errors += found.errors
        warnings += [f"{c.address}: {w}" for w in found.warnings]
        notes += found.notes
    # endpoints first, so endpoint jobs may need them; with --target, the targeted ones only
    chosen = [c for c in endpoints.changes if not targets or endpoint_target(c) in targeted]
    changes = [*chosen, *changes]
    shown = {c.address for c in chosen}
    errors += [e for e in endpoints.errors if e.split(" ", 1)[0] in shown]
    warnings += [w for w in endpoints.warnings if w.split(":", 1)[0] in shown]
    before, after = _per_pod(changes, first=True), _per_pod(changes, first=False)
    if not destroy:
        over, warned = budget_findings(
            desired.budget,
            sum(before.values()),
            sum(after.values()),
            after,
            ignore=ignore_budget,
        )
        errors += over
        warnings += warned
        spent_notes, spent_warnings = spend_findings(desired.budget, spend, ignore=ignore_budget)
        notes += spent_notes
        warnings += spent_warnings
    return Plan(
        stack=desired.stack,
        changes=tuple(changes),
        warnings=tuple(dict.fromkeys(warnings)),
        errors=tuple(dict.fromkeys(errors)),
        lineage=recorded.lineage,
        serial=recorded.serial,
        spec_digest=spec_digest(desired, secrets)
        + (f"+{endpoints.digest[:32]}" if endpoints.digest else ""),
        spec_files=tuple(desired.files),
        targets=tuple(sorted(targets)),
        total_cost_before=round(sum(before.values()), 4),
        total_cost_after=round(sum(after.values()), 4),
        stopped_storage_cost_after=round(
            sum(stopped_storage_cost(d.ends_stopped_gb) for d in decisions)
            + sum(stopped_storage_cost(gb) for gb in _stopped_after_jobs(changes, desired)),
            6,
        ),
        notes=tuple(dict.fromkeys(notes))
        + tuple(
            FORGOTTEN.format(address=Address.pod(n))
            for n in forgotten(desired, actual, recorded, destroy=destroy, targets=targets)
        ),
    )


def _stopped_after_jobs(changes: list[Change], desired: DesiredState) -> list[int]:
    """Volume GB of the pods `after_jobs: stop` stops in this plan: billed once it ran, so the
    first plan already counts what the plans after it show."""
    return [
        desired.pods[c.pod].volume_gb
        for c in changes
        if c.action is Action.STOP
        and c.depends_on
        and c.pod in desired.pods
        and all(_is_job(d) for d in c.depends_on)
    ]


def _jobs_of_absent_pods(desired: DesiredState, reasons: Mapping[str, str]) -> dict[str, str]:
    """Jobs that would run on a pod declared `state: absent` (it is torn down instead), and the
    jobs that need them: job -> the note that says why it does not run."""
    from reconciler.jobs import job_order

    out: dict[str, str] = {}
    for name in job_order(desired.jobs):
        job = desired.jobs[name]
        pod = desired.pods.get(job.pod)
        if name not in reasons:
            continue
        if pod is not None and pod.state is PodState.ABSENT:
            out[name] = f"{Address.job(name)}: not run: {Address.pod(job.pod)} is `state: absent`"
        elif blocked := [n for n in job.needs if n in out]:
            needed = Address.job(blocked[0])
            out[name] = f"{Address.job(name)}: not run: it needs {needed}, which does not run"
    return out


def _is_job(address: str) -> bool:
    parsed = Address.parse(address)
    return parsed is not None and parsed.kind == "job"


def _target_pod(target: str) -> str | None:
    """The pod name a `--target pod.NAME` names; None for anything else."""
    return Address.name_in(target, "pod")


def _pods(targets: frozenset[str]) -> frozenset[str]:
    return frozenset(name for t in targets if (name := _target_pod(t)) is not None)


def _per_pod(changes: list[Change], *, first: bool) -> dict[str, float]:
    """$/h per pod address: before from its first change, after from its last (after_jobs)."""
    costs: dict[str, float] = {}
    for c in changes:
        if c.action is Action.RUN_JOB:
            continue
        cost = (c.cost_before if first else c.running_cost_after) or 0.0
        if first:
            costs.setdefault(c.address, cost)
        else:
            costs[c.address] = cost
    return costs
