"""Arm the on-pod watchdog (reconciler.jobs.watchdog) over SSH as soon as a pod is ready."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from reconciler.errors import PodctlError
from reconciler.executor.context import StepContext
from reconciler.jobs.watchdog import arm_script, parse_armed
from reconciler.model import ActualPod, LifetimeAction, PodRecord, PodSpec, PodStatus
from reconciler.plans import Change

ARM_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class WatchdogWiring:
    """What arming needs besides the pod: the API URL the pod calls, and the pod records."""

    api_url: str  # RunPod's GraphQL URL as the pod reaches it
    records: Callable[[], Mapping[str, PodRecord]]  # the lockfile's records, as written so far


async def arm_watchdog(
    ctx: StepContext, change: Change, spec: PodSpec, pod: ActualPod, *, unchanged: bool = False
) -> None:
    """Start the pod's watchdog unless it runs already; a failure is reported, never raised.

    The watchdog is a safety net under podctl's own enforcement of max_lifetime, so a pod
    without SSH, curl/wget/python3 or RunPod's key still converges: the event says why the
    net is missing.
    """
    from reconciler.planner.lifetime import deadline

    wiring = ctx.watchdog
    if wiring is None or spec.max_lifetime_s is None:
        return
    record = wiring.records().get(spec.name)
    when = deadline(spec, record) if record is not None and record.pod_id == pod.pod_id else None
    # `unchanged`: a pod this apply leaves as it is was told about when it became ready
    if when is None:
        if not unchanged:
            ctx.event(change, "watchdog not armed: the lockfile does not record its creation")
        return
    if pod.ssh is None or ctx.shells is None:
        if not unchanged:
            ctx.event(change, "watchdog not armed: the pod has no SSH (22/tcp in ports)")
        return
    stop = spec.lifetime_action is LifetimeAction.STOP or spec.protect
    try:
        script = arm_script(
            deadline_epoch=math.ceil(when.timestamp()),  # never before the deadline
            action="stop" if stop else "terminate",
            api_url=wiring.api_url,
        )
        shell = await ctx.shells.open(pod)
        _, out, _ = await shell.run("sh -s", stdin=script, timeout_s=ARM_TIMEOUT_S)
    except PodctlError as exc:
        ctx.event(change, f"watchdog not armed: {exc}")
        return
    armed = parse_armed(out)
    if armed.state == "error":
        ctx.event(change, f"watchdog cannot be armed: {armed.message}")
    elif armed.state == "started":
        stamp = when.isoformat(timespec="seconds")
        ctx.event(
            change,
            f"watchdog armed (pid {armed.pid}): it stops the pod at {stamp}"
            if stop
            else f"watchdog armed (pid {armed.pid}): it terminates the pod at {stamp}",
        )


async def arm_unchanged(ctx: StepContext, change: Change) -> None:
    """Arm the watchdog of a running pod the plan leaves as it is (a no-op change)."""
    spec = ctx.desired.pods.get(change.pod)
    pod = ctx.actual.get(change.pod_id) if ctx.actual is not None and change.pod_id else None
    if spec is None or pod is None or pod.desired_status is not PodStatus.RUNNING:
        return
    if not pod.runtime_ready:
        return
    await arm_watchdog(ctx, change, spec, pod, unchanged=True)
