"""execute(): run a Plan's changes against PodApi with bounded parallelism, write-ahead."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import ParamSpec

from reconciler.errors import (
    ApiError,
    CapacityError,
    PodctlError,
    ResumeCapacityError,
    TransientApiError,
)
from reconciler.executor.protocols import Journal, PodApi
from reconciler.executor.readiness import NotReadyError, PollPolicy, Readiness
from reconciler.executor.request import (
    PUBLIC_KEY_ENV,
    create_request,
    default_placements,
    pod_env,
)
from reconciler.model import (
    ActualPod,
    ActualState,
    DesiredState,
    OnResumeFailure,
    PodRecord,
    PodSpec,
)
from reconciler.plans import (
    Action,
    ApplyResult,
    Change,
    ChangeResult,
    Outcome,
    Placement,
    Plan,
)

OnEvent = Callable[[str], None]
P = ParamSpec("P")


class ChangeFailed(PodctlError):
    """One change did not work; the message is what the summary shows."""


Fingerprint = Callable[[PodSpec], str]


def _planner_fingerprint(spec: PodSpec) -> str:
    from reconciler.planner import pod_fingerprint

    fingerprint: str = pod_fingerprint(spec)
    return fingerprint


@dataclass
class _Landed:
    pod: ActualPod
    placement: Placement


@dataclass
class _Context:
    plan: Plan
    desired: DesiredState
    api: PodApi
    journal: Journal
    secrets: Mapping[str, str]
    on_event: OnEvent
    timeout_s: float
    readiness: Readiness
    actual: ActualState | None
    public_key: str | None
    now: Callable[[], datetime]
    semaphore: asyncio.Semaphore
    fingerprint: Fingerprint
    journal_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def event(self, change: Change, text: str) -> None:
        self.on_event(f"{change.address}: {text}")

    async def write(self, fn: Callable[P, None], *args: P.args, **kwargs: P.kwargs) -> None:
        """One journal write at a time; durable when this returns."""
        async with self.journal_lock:
            fn(*args, **kwargs)


async def execute(
    plan: Plan,
    desired: DesiredState,
    api: PodApi,
    journal: Journal,
    *,
    parallelism: int = 10,
    timeout_s: float = 600.0,
    secrets: Mapping[str, str],
    on_event: OnEvent = lambda _text: None,
    actual: ActualState | None = None,
    public_key: str | None = None,
    poll: PollPolicy | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    fingerprint: Fingerprint | None = None,
) -> ApplyResult:
    """Run every actionable change of `plan`; dependants of a failed change are skipped.

    `actual` (the state the plan was made from) lets an update keep the pod's markers and lets
    the journal record adopted pods. Every mutation's outcome is journaled right after it, so
    an exception or interrupt at any point leaves every created pod in the lockfile.
    """
    ctx = _Context(
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
        fingerprint=fingerprint or _planner_fingerprint,
    )
    for change in plan.changes:
        if change.is_noop and change.pod_id is not None and change.pod in desired.pods:
            # an adopted pod that needs nothing is recorded as is (same fingerprint when equal)
            recorded_print = None if change.fields else ctx.fingerprint(desired.pods[change.pod])
            await ctx.write(journal.touched, change.pod, change.pod_id, recorded_print)
    actionable = plan.actionable
    loop = asyncio.get_running_loop()
    futures: list[asyncio.Future[Outcome]] = [loop.create_future() for _ in actionable]
    by_address: dict[str, list[asyncio.Future[Outcome]]] = {}
    for change, future in zip(actionable, futures, strict=True):
        by_address.setdefault(change.address, []).append(future)
    tasks = [
        asyncio.create_task(_run_one(ctx, change, future, by_address))
        for change, future in zip(actionable, futures, strict=True)
    ]
    try:
        results = await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await ctx.readiness.aclose()
    return ApplyResult(stack=plan.stack, results=tuple(results))


async def _run_one(
    ctx: _Context,
    change: Change,
    done: asyncio.Future[Outcome],
    by_address: Mapping[str, list[asyncio.Future[Outcome]]],
) -> ChangeResult:
    started = time.monotonic()
    result: ChangeResult | None = None
    try:
        for dependency in change.depends_on:
            for future in by_address.get(dependency, ()):
                outcome = await asyncio.shield(future)
                if outcome is not Outcome.DONE:
                    ctx.event(change, f"skipped: {dependency} did not succeed")
                    result = ChangeResult(
                        change.address,
                        change.action,
                        Outcome.SKIPPED,
                        message=f"skipped because {dependency} did not succeed",
                        pod_id=change.pod_id,
                    )
                    return result
        try:
            result = await _dispatch(ctx, change)
        except PodctlError as exc:  # API errors, not ready, a journal write refused...
            ctx.event(change, f"failed: {exc}")
            result = ChangeResult(
                change.address,
                change.action,
                Outcome.FAILED,
                message=str(exc),
                pod_id=change.pod_id,
            )
        return replace(result, duration_s=round(time.monotonic() - started, 3))
    finally:
        if not done.done():
            done.set_result(result.outcome if result is not None else Outcome.SKIPPED)


async def _dispatch(ctx: _Context, change: Change) -> ChangeResult:
    action = change.action
    if action is Action.TERMINATE:
        return await _terminate(ctx, change)
    if action is Action.STOP:
        return await _stop(ctx, change)
    spec = ctx.desired.pods.get(change.pod)
    if spec is None:
        raise ChangeFailed(f"pod {change.pod} is not in the spec")
    if action is Action.CREATE:
        return await _create_and_wait(ctx, change, spec)
    if action is Action.REPLACE:
        if change.pod_id is not None:
            await _terminate_pod(ctx, change, change.pod_id, "replace")
        return await _create_and_wait(ctx, change, spec)
    if action is Action.RESUME:
        return await _resume(ctx, change, spec)
    if action is Action.UPDATE:
        return await _update(ctx, change, spec)
    raise ChangeFailed(f"the executor cannot run a {action.value} change yet")


# --- terminate / stop ---------------------------------------------------------------------------


async def _terminate_pod(ctx: _Context, change: Change, pod_id: str, why: str) -> None:
    async with ctx.semaphore:
        ctx.event(change, f"terminating {pod_id} ({why})")
        gone_now = await ctx.api.terminate_pod(pod_id)
    await ctx.write(ctx.journal.terminated, change.pod, pod_id)
    ctx.event(change, f"terminated {pod_id}" if gone_now else f"{pod_id} was already gone")


async def _terminate(ctx: _Context, change: Change) -> ChangeResult:
    if change.pod_id is None:
        raise ChangeFailed("a terminate without a pod id (a bug in the plan)")
    await _terminate_pod(ctx, change, change.pod_id, change.reason)
    return ChangeResult(
        change.address, change.action, Outcome.DONE, message="terminated", pod_id=change.pod_id
    )


async def _stop(ctx: _Context, change: Change) -> ChangeResult:
    pod_id = change.pod_id
    if pod_id is None:
        raise ChangeFailed("a stop without a pod id (a bug in the plan)")
    async with ctx.semaphore:
        ctx.event(change, f"stopping {pod_id}")
        await ctx.api.stop_pod(pod_id)
    await ctx.write(ctx.journal.touched, change.pod, pod_id, None)
    ctx.event(change, f"stopped {pod_id}")
    return ChangeResult(change.address, change.action, Outcome.DONE, "stopped", pod_id=pod_id)


# --- create -------------------------------------------------------------------------------------


async def _create(ctx: _Context, change: Change, spec: PodSpec) -> _Landed:
    """Walk the fallback chain; the first placement with capacity lands."""
    placements = change.placements or default_placements(spec)
    tried: list[str] = []
    for placement in placements:
        uid = uuid.uuid4().hex
        where = f"{placement.gpu_type_id} ({placement.cloud.value})"
        await ctx.write(ctx.journal.intend, change.pod, uid)
        request = create_request(
            spec,
            placement,
            stack=ctx.plan.stack,
            uid=uid,
            secrets=ctx.secrets,
            public_key=ctx.public_key,
            now=ctx.now(),
        )
        async with ctx.semaphore:
            ctx.event(change, f"creating on {where}")
            try:
                pod = await ctx.api.create_pod(request)
            except CapacityError:
                pod = None
            except TransientApiError as exc:
                if exc.maybe_processed:
                    # the pod may exist: keep the intent, the next plan finds it by its uid
                    raise ChangeFailed(
                        f"the create on {where} got no answer ({exc.message}); the pod may "
                        "exist: the next plan finds it by its PODCTL_UID marker and adopts it "
                        "or terminates it"
                    ) from exc
                await ctx.write(ctx.journal.create_failed, uid)
                raise
            except ApiError:
                await ctx.write(ctx.journal.create_failed, uid)
                raise
        if pod is None:
            await ctx.write(ctx.journal.create_failed, uid)
            tried.append(where)
            ctx.event(change, f"no capacity on {where}; trying the next fallback")
            continue
        moment = ctx.now()
        record = PodRecord(
            pod_id=pod.pod_id,
            uid=uid,
            fingerprint=ctx.fingerprint(spec),
            gpu_type_id=placement.gpu_type_id,
            cloud=placement.cloud,
            created_at=moment,
            applied_at=moment,
        )
        await ctx.write(ctx.journal.created, change.pod, record)
        ctx.event(change, f"created {pod.pod_id} on {where}")
        return _Landed(pod, placement)
    raise ChangeFailed("no capacity on any fallback: " + ", ".join(tried))


async def _create_and_wait(ctx: _Context, change: Change, spec: PodSpec) -> ChangeResult:
    landed = await _create(ctx, change, spec)
    pod = landed.pod
    if change.then_stop:
        async with ctx.semaphore:
            await ctx.api.stop_pod(pod.pod_id)
        ctx.event(change, f"stopped {pod.pod_id} (state: stopped)")
    else:
        try:
            pod = await _wait_ready(ctx, change, spec, pod)
        except NotReadyError as exc:
            await _terminate_pod(ctx, change, pod.pod_id, "never became ready")
            raise ChangeFailed(
                f"{pod.pod_id} was not ready after {ctx.timeout_s:g}s: {exc}; podctl "
                "terminated the pod it created"
            ) from exc
    return ChangeResult(
        change.address,
        change.action,
        Outcome.DONE,
        message=f"landed on {landed.placement.gpu_type_id} ({landed.placement.cloud.value})",
        pod_id=pod.pod_id,
        gpu_type_id=landed.placement.gpu_type_id,
        cloud=landed.placement.cloud,
    )


async def _wait_ready(ctx: _Context, change: Change, spec: PodSpec, pod: ActualPod) -> ActualPod:
    needs_ssh = any(p.replace(" ", "") == "22/tcp" for p in spec.ports)
    ready = await ctx.readiness.wait(pod, needs_ssh=needs_ssh, timeout_s=ctx.timeout_s)
    where = f" (ssh {ready.ssh.host}:{ready.ssh.port})" if ready.ssh else ""
    ctx.event(change, f"ready{where}")
    return ready


# --- resume / update ----------------------------------------------------------------------------


async def _resume_once(ctx: _Context, change: Change, spec: PodSpec, pod_id: str) -> ActualPod:
    async with ctx.semaphore:
        ctx.event(change, f"resuming {pod_id}")
        if spec.spot_bid_per_gpu is not None:
            return await ctx.api.bid_resume_pod(pod_id, spec.spot_bid_per_gpu, spec.gpu_count)
        return await ctx.api.resume_pod(pod_id, spec.gpu_count)


async def _resume(ctx: _Context, change: Change, spec: PodSpec) -> ChangeResult:
    pod_id = change.pod_id
    if pod_id is None:
        raise ChangeFailed("a resume without a pod id (a bug in the plan)")
    deadline = time.monotonic() + ctx.timeout_s
    delay = ctx.readiness.policy.initial_s
    while True:
        try:
            pod = await _resume_once(ctx, change, spec, pod_id)
            break
        except ResumeCapacityError as exc:
            policy = spec.on_resume_failure
            if policy is OnResumeFailure.RECREATE:
                ctx.event(change, "its host has no free GPU: recreating (on_resume_failure)")
                await _terminate_pod(ctx, change, pod_id, "cannot resume: host GPU taken")
                return await _create_and_wait(ctx, change, spec)
            if policy is OnResumeFailure.WAIT and time.monotonic() + delay < deadline:
                ctx.event(change, f"its host has no free GPU; retrying in {delay:g}s")
                await ctx.readiness.sleep(delay)
                delay = min(delay * 2, ctx.readiness.policy.max_s)
                continue
            hint = (
                f"gave up after {ctx.timeout_s:g}s of waiting"
                if policy is OnResumeFailure.WAIT
                else "set on_resume_failure: wait (retry) or recreate (a new pod; "
                "data outside the volume is lost), or try again later"
            )
            raise ChangeFailed(
                f"cannot resume {pod_id}: the GPUs of its host machine are taken ({hint})"
            ) from exc
    pending = [f for f in change.fields if not f.forces_replace]
    if pending:
        pod = await _edit(ctx, change, spec, pod_id)
    pod = await _wait_ready(ctx, change, spec, pod)
    await ctx.write(ctx.journal.touched, change.pod, pod_id, ctx.fingerprint(spec))
    return ChangeResult(change.address, change.action, Outcome.DONE, "resumed", pod_id=pod_id)


def _markers_uid(ctx: _Context, pod_id: str) -> str:
    pod = ctx.actual.get(pod_id) if ctx.actual is not None else None
    if pod is not None and pod.markers is not None:
        return pod.markers.uid
    return uuid.uuid4().hex


async def _edit(ctx: _Context, change: Change, spec: PodSpec, pod_id: str) -> ActualPod:
    seen = ctx.actual.get(pod_id) if ctx.actual is not None else None
    public_key = ctx.public_key or (seen.env.get(PUBLIC_KEY_ENV) if seen else None)
    env = pod_env(
        spec,
        stack=ctx.plan.stack,
        uid=_markers_uid(ctx, pod_id),
        secrets=ctx.secrets,
        public_key=public_key,
    )
    async with ctx.semaphore:
        ctx.event(change, f"updating {pod_id} in place (the container is reset)")
        return await ctx.api.edit_pod(
            pod_id,
            image=spec.image,
            container_disk_gb=spec.container_disk_gb,
            volume_gb=spec.volume_gb,
            volume_mount=spec.volume_mount,
            env=env,
            ports=spec.ports,
            docker_args=spec.docker_args,
        )


async def _update(ctx: _Context, change: Change, spec: PodSpec) -> ChangeResult:
    pod_id = change.pod_id
    if pod_id is None:
        raise ChangeFailed("an update without a pod id (a bug in the plan)")
    pod = await _edit(ctx, change, spec, pod_id)
    await ctx.write(ctx.journal.touched, change.pod, pod_id, ctx.fingerprint(spec))
    await _wait_ready(ctx, change, spec, pod)
    return ChangeResult(change.address, change.action, Outcome.DONE, "updated", pod_id=pod_id)
