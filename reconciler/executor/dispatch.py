"""run_change: which handler runs each Action (one table, no chain of ifs)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from reconciler.executor import steps, teardown
from reconciler.executor.context import ChangeFailed, StepContext
from reconciler.executor.jobs import run_job
from reconciler.model import PodSpec
from reconciler.plans import Action, Change, ChangeResult

Handler = Callable[[StepContext, Change], Awaitable[ChangeResult]]
PodHandler = Callable[[StepContext, Change, PodSpec], Awaitable[ChangeResult]]


def _with_spec(handler: PodHandler) -> Handler:
    """A handler that needs the change's desired pod: a change whose pod left the spec fails."""

    async def run(ctx: StepContext, change: Change) -> ChangeResult:
        spec = ctx.desired.pods.get(change.pod)
        if spec is None:
            raise ChangeFailed(f"pod {change.pod} is not in the spec")
        return await handler(ctx, change, spec)

    return run


async def _job(ctx: StepContext, change: Change) -> ChangeResult:
    """A job runs on its pod over SSH, or is sent to its serverless endpoint."""
    if ctx.endpoint_jobs is not None and (change.job or "") in ctx.desired.endpoint_jobs:
        return await ctx.endpoint_jobs.run(ctx, change)
    return await run_job(ctx, change)


HANDLERS: Mapping[Action, Handler] = {
    Action.RUN_JOB: _job,
    Action.TERMINATE: teardown.terminate,
    Action.STOP: teardown.stop,
    Action.CREATE: _with_spec(steps.create),
    Action.REPLACE: _with_spec(steps.replace),
    Action.RESUME: _with_spec(steps.resume),
    Action.UPDATE: _with_spec(steps.update),
}


async def run_change(ctx: StepContext, change: Change) -> ChangeResult:
    """Do one actionable change; raise a PodctlError (the summary shows it) when it fails."""
    handler = HANDLERS.get(change.action)
    if handler is None:
        raise ChangeFailed(f"the executor cannot run a {change.action.value} change")
    return await handler(ctx, change)
