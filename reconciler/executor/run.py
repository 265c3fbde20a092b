"""execute(): run a Plan's changes against PodBackend with bounded parallelism, write-ahead."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from reconciler import events as ev
from reconciler.errors import PodctlError
from reconciler.executor.context import (
    ChangeFailed,
    Fingerprint,
    OnEvent,
    OnJobLine,
    StepContext,
)
from reconciler.executor.dispatch import run_change
from reconciler.executor.failure import apply_on_failure, left_running
from reconciler.executor.ports import Journal, PodBackend, Shells
from reconciler.executor.readiness import PollPolicy, Readiness
from reconciler.executor.watchdog import WatchdogWiring, arm_unchanged
from reconciler.model import ActualState, Address, DesiredState, JobRecord
from reconciler.planner import pod_fingerprint
from reconciler.plans import Action, ApplyResult, Change, ChangeResult, Outcome, Plan

if TYPE_CHECKING:
    from reconciler.executor.endpoint_jobs import EndpointJobs

STOPPED_STATUSES = frozenset({"EXITED", "PAUSED"})


async def execute(
    plan: Plan,
    desired: DesiredState,
    api: PodBackend,
    journal: Journal,
    *,
    parallelism: int = 10,
    timeout_s: float = 600.0,
    secrets: Mapping[str, str],
    on_event: OnEvent = lambda _event: None,
    actual: ActualState | None = None,
    public_key: str | None = None,
    poll: PollPolicy | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    fingerprint: Fingerprint | None = None,
    shells: Shells | None = None,
    recorded_jobs: Mapping[str, JobRecord] | None = None,
    job_inputs: Mapping[str, Mapping[str, str]] | None = None,
    on_job_line: OnJobLine | None = None,
    should_start: Callable[[], bool] | None = None,
    watchdog: WatchdogWiring | None = None,
    heartbeat_s: float | None = None,
    endpoint_jobs: EndpointJobs | None = None,
) -> ApplyResult:
    """Run every actionable change of `plan`; dependants of a failed change are skipped.

    `actual` (the state the plan was made from) lets an update keep the pod's markers and lets
    the journal record adopted pods. Every mutation's outcome is journaled right after it, so
    an exception or interrupt at any point leaves every created pod in the lockfile.

    A change waits for the changes it depends on that come EARLIER in the plan (a pod may
    appear twice: created first, terminated after its jobs). run-job changes go through
    `shells` (SSH); `recorded_jobs` is the job ledger the plan was made against.

    `should_start` (e.g. "no stop signal yet") is asked before each change starts: when it
    says no, the change is skipped, while those already started run to their end.

    Every change emits a `ChangeFinished` event when it ends and, with `heartbeat_s`, a
    `StillRunning` event every `heartbeat_s` seconds while it runs.
    """
    ctx = StepContext(
        plan=plan,
        desired=desired,
        api=api,
        journal=journal,
        secrets=secrets,
        on_event=on_event,
        timeout_s=timeout_s,
        readiness=Readiness(api, poll or PollPolicy()),
        actual=actual,
        public_key=public_key,
        now=now,
        semaphore=asyncio.Semaphore(max(1, parallelism)),
        fingerprint=fingerprint or pod_fingerprint,
        shells=shells,
        recorded_jobs=recorded_jobs or {},
        job_inputs=job_inputs or {},
        on_job_line=on_job_line,
        watchdog=watchdog,
        endpoint_jobs=endpoint_jobs,
    )

    def record_noops() -> None:
        for change in plan.changes:
            if change.is_noop and change.pod_id is not None and change.pod in desired.pods:
                # an adopted pod that needs nothing is recorded as is (same fingerprint if equal)
                spec = desired.pods[change.pod]
                journal.touched(
                    change.pod, change.pod_id, None if change.fields else ctx.fingerprint(spec)
                )
                seen = change.observed.status if change.observed is not None else ""
                if seen in STOPPED_STATUSES:  # for stopped_ttl: first seen stopped
                    journal.stopped(change.pod, change.pod_id, now(), keep_earlier=True)

    await journal.commit(record_noops)  # one write for all of them, however many
    actionable = plan.actionable
    loop = asyncio.get_running_loop()
    futures: list[asyncio.Future[Outcome]] = [loop.create_future() for _ in actionable]
    earlier: dict[str, list[asyncio.Future[Outcome]]] = {}
    tasks = []
    for change, future in zip(actionable, futures, strict=True):
        waits = {d: list(earlier.get(d, ())) for d in change.depends_on}
        tasks.append(
            asyncio.create_task(_run_one(ctx, change, future, waits, should_start, heartbeat_s))
        )
        earlier.setdefault(change.address, []).append(future)
    arming = [
        asyncio.create_task(arm_unchanged(ctx, c))
        for c in plan.changes
        if watchdog is not None and c.is_noop and c.address == str(Address.pod(c.pod))
    ]
    try:
        results = list(await asyncio.gather(*tasks))
        await asyncio.gather(*arming)
        results += await apply_on_failure(ctx, results)
    finally:
        for task in (*tasks, *arming):
            task.cancel()
        # let each cancelled change unwind (and its error be retrieved) before its SSH
        # connection closes under it: a run stopped by a lost state store ends quietly
        await asyncio.gather(*tasks, *arming, return_exceptions=True)
        await ctx.readiness.aclose()
        if shells is not None:
            await shells.aclose()
    return ApplyResult(
        stack=plan.stack,
        results=tuple(results),
        left_running=left_running(ctx, actionable, results),
    )


async def _heartbeat(ctx: StepContext, change: Change, started: float, every_s: float) -> None:
    """`StillRunning` every `every_s` seconds until cancelled (the change ended)."""
    while True:
        await asyncio.sleep(every_s)
        ctx.emit(ev.StillRunning(change.address, round(time.monotonic() - started, 1)))


def _finished(ctx: StepContext, result: ChangeResult) -> ChangeResult:
    ctx.emit(
        ev.ChangeFinished(
            result.address,
            result.action.value,
            result.outcome.value,
            result.duration_s,
            result.message,
            result.pod_id,
            result.exit_code,
        )
    )
    return result


async def _run_one(
    ctx: StepContext,
    change: Change,
    done: asyncio.Future[Outcome],
    waits: Mapping[str, list[asyncio.Future[Outcome]]],
    should_start: Callable[[], bool] | None = None,
    heartbeat_s: float | None = None,
) -> ChangeResult:
    started = time.monotonic()
    result: ChangeResult | None = None
    try:
        pending = [d for d in change.depends_on if any(not f.done() for f in waits.get(d, ()))]
        if pending:
            ctx.emit(ev.Waiting(change.address, tuple(pending)))
        for dependency in change.depends_on:
            for future in waits.get(dependency, ()):
                outcome = await asyncio.shield(future)
                if outcome is not Outcome.DONE:
                    result = ChangeResult(
                        change.address,
                        change.action,
                        Outcome.SKIPPED,
                        message=f"skipped because {dependency} did not succeed",
                        pod_id=change.pod_id,
                    )
                    return _finished(ctx, result)
        if should_start is not None and not should_start():
            result = ChangeResult(
                change.address,
                change.action,
                Outcome.SKIPPED,
                message="not started: podctl is stopping",
                pod_id=change.pod_id,
            )
            return _finished(ctx, result)
        started = time.monotonic()  # its duration counts from its start, not its wait
        beat = (
            asyncio.create_task(_heartbeat(ctx, change, started, heartbeat_s))
            if heartbeat_s
            else None
        )
        try:
            result = await run_change(ctx, change)
            if change.action is Action.RUN_JOB and result.exit_code is None:
                result = replace(result, exit_code=0)
        except PodctlError as exc:  # API errors, not ready, a journal write refused...
            result = ChangeResult(
                change.address,
                change.action,
                Outcome.FAILED,
                message=str(exc),
                pod_id=change.pod_id,
                exit_code=exc.job_exit if isinstance(exc, ChangeFailed) else None,
            )
        finally:
            if beat is not None:
                beat.cancel()
        if change.action is not Action.RUN_JOB or result.outcome is not Outcome.DONE:
            # a job that ran gives its run's own duration (a reattach too), as its ledger
            result = replace(result, duration_s=round(time.monotonic() - started, 3))
        return _finished(ctx, result)
    finally:
        if not done.done():
            done.set_result(result.outcome if result is not None else Outcome.SKIPPED)
