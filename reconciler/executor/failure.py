"""After the changes: a pod whose job failed is kept, stopped or terminated (on_failure)."""

from __future__ import annotations

from reconciler import events as ev
from reconciler.errors import PodctlError
from reconciler.executor.context import StepContext
from reconciler.model import Address, AfterJobs, PodStatus
from reconciler.plans import Action, Billing, Change, ChangeResult, Outcome

RUNNING = frozenset({PodStatus.RUNNING, PodStatus.CREATED, PodStatus.RESTARTING})


def _failed_jobs(ctx: StepContext, results: list[ChangeResult]) -> dict[str, list[str]]:
    """Pod name -> the jobs of it that failed in this apply."""
    failed: dict[str, list[str]] = {}
    for r in results:
        if r.action is Action.RUN_JOB and r.outcome is Outcome.FAILED:
            job = ctx.desired.jobs.get(Address.strip(r.address, "job"))
            if job is not None:
                failed.setdefault(job.pod, []).append(job.address)
    return failed


def _ended(results: list[ChangeResult]) -> set[str]:
    """Addresses of the pods this apply stopped or terminated."""
    ends = (Action.STOP, Action.TERMINATE)
    return {r.address for r in results if r.action in ends and r.outcome is Outcome.DONE}


async def apply_on_failure(ctx: StepContext, results: list[ChangeResult]) -> list[ChangeResult]:
    """Stop or terminate each running pod with a failed job, as its on_failure says."""
    out: list[ChangeResult] = []
    ended = _ended(results)
    for name, jobs in sorted(_failed_jobs(ctx, results).items()):
        spec = ctx.desired.pods.get(name)
        if spec is None or spec.address in ended:
            continue
        pod = ctx.ready.get(name)
        if pod is None and ctx.actual is not None:
            ids = [c.pod_id for c in ctx.plan.changes if c.address == spec.address and c.pod_id]
            seen = ctx.actual.get(ids[0]) if ids else None
            pod = seen if seen is not None and seen.desired_status in RUNNING else None
        if pod is None:
            continue
        how = spec.failure_action
        if how is AfterJobs.KEEP:
            continue
        action = Action.STOP if how is AfterJobs.STOP else Action.TERMINATE
        if action is Action.TERMINATE and spec.protect:
            action = Action.STOP  # protect forbids terminating it
        why = f"{', '.join(jobs)} failed (on_failure: {how.value})"
        address = spec.address
        try:
            if action is Action.STOP:
                ctx.emit(ev.PodStopping(address, pod.pod_id))
                await ctx.api.stop_pod(pod.pod_id)
                await ctx.write(ctx.journal.touched, name, pod.pod_id, None)
                await ctx.write(ctx.journal.stopped, name, pod.pod_id, ctx.now())
            else:
                ctx.emit(ev.PodTerminating(address, pod.pod_id, why))
                await ctx.api.terminate_pod(pod.pod_id)
                await ctx.write(ctx.journal.terminated, name, pod.pod_id)
        except PodctlError as exc:
            ctx.emit(ev.Note(address, f"on_failure {how.value} failed: {exc}"))
            out.append(
                ChangeResult(address, action, Outcome.FAILED, f"{why}: {exc}", pod_id=pod.pod_id)
            )
            continue
        ctx.ready.pop(name, None)
        verb = "stopped" if action is Action.STOP else "terminated"
        out.append(ChangeResult(address, action, Outcome.DONE, f"{verb}: {why}", pod.pod_id))
    return out


def left_running(
    ctx: StepContext, changes: tuple[Change, ...], results: list[ChangeResult]
) -> tuple[Billing, ...]:
    """The stack's pods running once the apply ends: listed or made running, not ended since.

    `changes` are the plan's actionable changes, in the order of `results` (then any more
    results, such as on_failure's).
    """
    ended: set[str] = set()
    for index, r in enumerate(results):
        change = changes[index] if index < len(changes) else None
        if r.outcome is not Outcome.DONE:
            continue
        if r.action in (Action.STOP, Action.TERMINATE) and r.pod_id:
            ended.add(r.pod_id)
        if r.action is Action.REPLACE and change is not None and change.pod_id:
            ended.add(change.pod_id)  # the pod it replaced
    running: dict[str, Billing] = {}
    if ctx.actual is not None:
        for pod in ctx.actual.of_stack(ctx.plan.stack):
            if pod.desired_status in RUNNING:
                name = pod.markers.pod if pod.markers is not None else pod.name
                running[pod.pod_id] = Billing(str(Address.pod(name)), pod.pod_id, pod.cost_per_hr)
    for name, pod in ctx.ready.items():
        running[pod.pod_id] = Billing(str(Address.pod(name)), pod.pod_id, pod.cost_per_hr)
    return tuple(b for i, b in sorted(running.items()) if i not in ended)
