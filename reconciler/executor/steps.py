"""Pod changes that make or change a pod: create (fallback chain), replace, resume, update."""

from __future__ import annotations

import time
import uuid

from reconciler import events as ev
from reconciler.errors import (
    ApiError,
    ApiResponseError,
    CapacityError,
    ResumeCapacityError,
    TransientApiError,
)
from reconciler.executor.context import ChangeFailed, Landed, StepContext
from reconciler.executor.readiness import NotReadyError
from reconciler.executor.request import PUBLIC_KEY_ENV, create_request, default_placements, pod_env
from reconciler.executor.teardown import terminate_pod
from reconciler.executor.watchdog import arm_watchdog
from reconciler.model import MARKER_CREATED, ActualPod, OnResumeFailure, PodRecord, PodSpec
from reconciler.planner.fields import edit_input
from reconciler.plans import Change, ChangeResult, Outcome, Placement

# --- create -------------------------------------------------------------------------------------


AMBIGUOUS_CREATE_TRIES = 2  # a create whose answer is lost is looked up, then sent once more


async def _find_by_uid(ctx: StepContext, uid: str) -> ActualPod | None:
    """After a create's answer was lost: the pod it made, if one listing shows its uid."""
    try:
        actual = await ctx.api.list_pods()
    except ApiError:
        return None
    return actual.find_by_uid(uid)


async def _create_once(
    ctx: StepContext, change: Change, spec: PodSpec, placement: Placement, last_try: bool
) -> ActualPod | None:
    """One create on one placement; None on no capacity or a create that surely did not happen
    (to be tried again). The intent is written first and settled after."""
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
        ctx.emit(ev.PodCreating(change.address, placement.gpu_type_id, placement.cloud.value))
        try:
            pod = await ctx.api.create_pod(request)
        except CapacityError:
            await ctx.write(ctx.journal.create_failed, uid)
            ctx.emit(ev.NoCapacity(change.address, placement.gpu_type_id, placement.cloud.value))
            return None
        except (TransientApiError, ApiResponseError) as exc:
            if isinstance(exc, TransientApiError) and not exc.maybe_processed:
                await ctx.write(ctx.journal.create_failed, uid)
                raise
            # the pod may exist: one listing tells, by the uid marker this create carried
            found = await _find_by_uid(ctx, uid)
            if found is not None:
                ctx.event(change, f"the create's answer was lost; found {found.pod_id} by its uid")
                pod = found
            elif not last_try:
                await ctx.write(ctx.journal.create_failed, uid)
                ctx.event(change, f"the create got no answer ({exc}) and made no pod; again")
                raise _TryAgain() from exc
            else:
                raise ChangeFailed(
                    f"the create on {where} got no answer ({exc}); the pod may exist: the next "
                    "plan finds it by its PODCTL_UID marker and adopts it or terminates it"
                ) from exc
        except ApiError:
            await ctx.write(ctx.journal.create_failed, uid)
            raise
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
    ctx.emit(
        ev.PodCreated(change.address, pod.pod_id, placement.gpu_type_id, placement.cloud.value)
    )
    return pod


class _TryAgain(Exception):
    """The create surely made no pod although its answer was lost: send it once more."""


async def _create(ctx: StepContext, change: Change, spec: PodSpec) -> Landed:
    """Walk the fallback chain; the first placement with capacity lands."""
    placements = change.placements or default_placements(spec)
    tried: list[str] = []
    for placement in placements:
        for attempt in range(AMBIGUOUS_CREATE_TRIES):
            try:
                pod = await _create_once(
                    ctx, change, spec, placement, attempt == AMBIGUOUS_CREATE_TRIES - 1
                )
            except _TryAgain:
                continue
            if pod is not None:
                return Landed(pod, placement)
            break
        tried.append(f"{placement.gpu_type_id} ({placement.cloud.value})")
    raise ChangeFailed("no capacity on any fallback: " + ", ".join(tried))


async def create(ctx: StepContext, change: Change, spec: PodSpec) -> ChangeResult:
    """Create the pod on the first placement with capacity, then wait until it is ready."""
    return await _create_and_wait(ctx, change, spec)


async def replace(ctx: StepContext, change: Change, spec: PodSpec) -> ChangeResult:
    """Terminate the pod RunPod cannot change in place, then create it anew."""
    if change.pod_id is not None:
        await terminate_pod(ctx, change, change.pod_id, "replace")
    return await _create_and_wait(ctx, change, spec)


async def _create_and_wait(ctx: StepContext, change: Change, spec: PodSpec) -> ChangeResult:
    landed = await _create(ctx, change, spec)
    pod = landed.pod
    ctx.created.add(spec.name)
    if change.then_stop:
        async with ctx.semaphore:
            await ctx.api.stop_pod(pod.pod_id)
        await ctx.write(ctx.journal.stopped, change.pod, pod.pod_id, ctx.now())
        ctx.emit(ev.PodStopped(change.address, pod.pod_id, why="state: stopped"))
    else:
        try:
            pod = await _wait_ready(ctx, change, spec, pod)
        except NotReadyError as exc:
            await terminate_pod(ctx, change, pod.pod_id, "never became ready")
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


async def _wait_ready(ctx: StepContext, change: Change, spec: PodSpec, pod: ActualPod) -> ActualPod:
    needs_ssh = any(p.replace(" ", "") == "22/tcp" for p in spec.ports)
    ready = await ctx.readiness.wait(pod, needs_ssh=needs_ssh, timeout_s=ctx.timeout_s)
    ctx.ready[spec.name] = ready
    ssh = f"{ready.ssh.host}:{ready.ssh.port}" if ready.ssh else None
    ctx.emit(ev.PodReady(change.address, ready.pod_id, ssh))
    await arm_watchdog(ctx, change, spec, ready)
    return ready


# --- resume / update ----------------------------------------------------------------------------


async def _resume_once(ctx: StepContext, change: Change, spec: PodSpec, pod_id: str) -> ActualPod:
    async with ctx.semaphore:
        ctx.emit(ev.PodResuming(change.address, pod_id))
        if spec.spot_bid_per_gpu is not None:
            return await ctx.api.bid_resume_pod(pod_id, spec.spot_bid_per_gpu, spec.gpu_count)
        return await ctx.api.resume_pod(pod_id, spec.gpu_count)


async def resume(ctx: StepContext, change: Change, spec: PodSpec) -> ChangeResult:
    """Resume a stopped pod (on_resume_failure when its host has no free GPU), then edit."""
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
                await terminate_pod(ctx, change, pod_id, "cannot resume: host GPU taken")
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
    await ctx.write(ctx.journal.stopped, change.pod, pod_id, None)
    pending = [f for f in change.fields if not f.forces_replace]
    if pending:
        pod = await _edit(ctx, change, spec, pod_id)
    pod = await _wait_ready(ctx, change, spec, pod)
    await ctx.write(ctx.journal.touched, change.pod, pod_id, ctx.fingerprint(spec))
    return ChangeResult(change.address, change.action, Outcome.DONE, "resumed", pod_id=pod_id)


def _markers_uid(ctx: StepContext, pod_id: str) -> str:
    pod = ctx.actual.get(pod_id) if ctx.actual is not None else None
    if pod is not None and pod.markers is not None:
        return pod.markers.uid
    return uuid.uuid4().hex


async def _edit(ctx: StepContext, change: Change, spec: PodSpec, pod_id: str) -> ActualPod:
    seen = ctx.actual.get(pod_id) if ctx.actual is not None else None
    public_key = ctx.public_key or (seen.env.get(PUBLIC_KEY_ENV) if seen else None)
    env = pod_env(
        spec,
        stack=ctx.plan.stack,
        uid=_markers_uid(ctx, pod_id),
        secrets=ctx.secrets,
        public_key=public_key,
        created=seen.env.get(MARKER_CREATED) if seen else None,
    )
    async with ctx.semaphore:
        ctx.emit(ev.PodUpdating(change.address, pod_id))
        return await ctx.api.edit_pod(pod_id, edit_input(spec, env))


async def update(ctx: StepContext, change: Change, spec: PodSpec) -> ChangeResult:
    """Edit the pod in place (the container resets), then wait until it is ready."""
    pod_id = change.pod_id
    if pod_id is None:
        raise ChangeFailed("an update without a pod id (a bug in the plan)")
    pod = await _edit(ctx, change, spec, pod_id)
    await ctx.write(ctx.journal.touched, change.pod, pod_id, ctx.fingerprint(spec))
    await _wait_ready(ctx, change, spec, pod)
    return ChangeResult(change.address, change.action, Outcome.DONE, "updated", pod_id=pod_id)
