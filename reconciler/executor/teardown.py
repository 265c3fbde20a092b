"""Pod changes that end or pause a pod: terminate and stop."""

from __future__ import annotations

from reconciler import events as ev
from reconciler.executor.context import ChangeFailed, StepContext
from reconciler.plans import Action, Change, ChangeResult, Outcome


async def terminate_pod(ctx: StepContext, change: Change, pod_id: str, why: str) -> None:
    from reconciler.planner.lifetime import is_lifetime_end

    lifetime_end = change.action is Action.TERMINATE and is_lifetime_end(change.reason)
    if lifetime_end:
        # recorded first (an adopted pod has no record yet): the next plan does not recreate it
        await ctx.write(ctx.journal.touched, change.pod, pod_id, None)
    async with ctx.semaphore:
        ctx.emit(ev.PodTerminating(change.address, pod_id, why))
        gone_now = await ctx.api.terminate_pod(pod_id)
    if not lifetime_end:
        # a pod ended by its max_lifetime keeps its record: the next plan does not recreate it
        await ctx.write(ctx.journal.terminated, change.pod, pod_id)
    ctx.emit(ev.PodTerminated(change.address, pod_id, already_gone=not gone_now))


async def terminate(ctx: StepContext, change: Change) -> ChangeResult:
    pod_id = ctx.pod_id_of(change)
    if pod_id is None:
        raise ChangeFailed("a terminate without a pod id (a bug in the plan)")
    await terminate_pod(ctx, change, pod_id, change.reason)
    ctx.ready.pop(change.pod, None)
    return ChangeResult(
        change.address, change.action, Outcome.DONE, message="terminated", pod_id=pod_id
    )


async def stop(ctx: StepContext, change: Change) -> ChangeResult:
    pod_id = ctx.pod_id_of(change)
    if pod_id is None:
        raise ChangeFailed("a stop without a pod id (a bug in the plan)")
    async with ctx.semaphore:
        ctx.emit(ev.PodStopping(change.address, pod_id))
        await ctx.api.stop_pod(pod_id)
    await ctx.write(ctx.journal.touched, change.pod, pod_id, None)
    await ctx.write(ctx.journal.stopped, change.pod, pod_id, ctx.now())
    ctx.ready.pop(change.pod, None)
    ctx.emit(ev.PodStopped(change.address, pod_id))
    return ChangeResult(change.address, change.action, Outcome.DONE, "stopped", pod_id=pod_id)
