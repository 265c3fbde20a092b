"""Arm the on-pod watchdog (reconciler.jobs.watchdog) over SSH as soon as a pod is ready.

An arming is recorded in the lockfile (its settings, and the container's start as the API
reports it), so an apply or reconcile round that finds a pod as it was armed opens no SSH: it
checks again only when the container restarted since (a later start, or another RunPod
lastStatusChange: a resume, a reset, a preemption) or the settings changed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from reconciler.errors import PodctlError
from reconciler.executor.context import StepContext
from reconciler.jobs.watchdog import arm_script, parse_armed, watchdog_config
from reconciler.model import (
    ActualPod,
    LifetimeAction,
    PodRecord,
    PodSpec,
    PodStatus,
    WatchdogArming,
)
from reconciler.plans import Change

ARM_TIMEOUT_S = 30.0
# RunPod reports uptime in whole seconds, read a moment before podctl's clock: the container's
# start so derived moves by a second or two for one container; a restart moves it further
START_SLACK = timedelta(seconds=3)
EXACT = timedelta(milliseconds=1)  # startedAt read back from the lockfile's ISO text


@dataclass(frozen=True)
class WatchdogWiring:
    """What arming needs besides the pod: the API URL the pod calls, and the pod records."""

    api_url: str  # RunPod's GraphQL URL as the pod reaches it
    records: Callable[[], Mapping[str, PodRecord]]  # the lockfile's records, as written so far


def watched(spec: PodSpec) -> bool:
    """Whether the pod has something for the watchdog to hold: max_lifetime or idle_timeout."""
    return spec.max_lifetime_s is not None or spec.idle_timeout_s is not None


def container_started(pod: ActualPod, now: datetime) -> datetime | None:
    """The container's start as the API reports it: REST v2's startedAt, else now - uptime
    (GraphQL); None when unknown (a pod that does not run reports no uptime)."""
    if pod.uptime_s is None:
        return None
    if pod.started_at is not None:
        return pod.started_at
    return now - timedelta(seconds=pod.uptime_s)


def still_armed(arming: WatchdogArming | None, config: str, pod: ActualPod, now: datetime) -> bool:
    """Whether the recorded arming still holds: same settings, same container."""
    started = container_started(pod, now)
    if arming is None or started is None or arming.config != config:
        return False
    if pod.last_status_change and pod.last_status_change != arming.status_change:
        return False
    if pod.started_at is not None:
        # REST v2's startedAt is RunPod's own timestamp: one container keeps it exactly, a
        # restart (even within seconds) moves it; an arming recorded over GraphQL (now -
        # uptime) rarely matches it, and is checked over SSH once
        return abs(started - arming.container_started) < EXACT
    return started <= arming.container_started + START_SLACK


async def arm_watchdog(
    ctx: StepContext, change: Change, spec: PodSpec, pod: ActualPod, *, unchanged: bool = False
) -> None:
    """Start the pod's watchdog unless it runs already; a failure is reported, never raised.

    The watchdog is a safety net under podctl's own enforcement of max_lifetime (and the only
    enforcement of idle_timeout), so a pod without SSH, curl/wget/python3 or RunPod's key
    still converges: the event says why the net is missing.
    """
    from reconciler.planner.lifetime import deadline

    wiring = ctx.watchdog
    if wiring is None or not watched(spec):
        return
    record = wiring.records().get(spec.name)
    mine = record is not None and record.pod_id == pod.pod_id
    when = deadline(spec, record) if mine else None
    # `unchanged`: a pod this apply leaves as it is was told about when it became ready
    if when is None and spec.idle_timeout_s is None:
        if not unchanged:
            ctx.event(change, "watchdog not armed: the lockfile does not record its creation")
        return
    if pod.ssh is None or ctx.shells is None:
        if not unchanged:
            ctx.event(change, "watchdog not armed: the pod has no SSH (22/tcp in ports)")
        return
    stop = spec.lifetime_action is LifetimeAction.STOP or spec.protect
    idle_stop = spec.idle_action is LifetimeAction.STOP or spec.protect
    # rounded up: the watchdog never fires before the pod's time
    deadline_epoch = math.ceil(when.timestamp()) if when is not None else 0
    action = "stop" if stop else "terminate"
    idle_s, idle_action = spec.idle_timeout_s or 0, "stop" if idle_stop else "terminate"
    mount = pod.volume_mount or spec.volume_mount
    now = ctx.now()
    try:
        config = watchdog_config(
            deadline_epoch=deadline_epoch,
            action=action,
            api_url=wiring.api_url,
            idle_timeout_s=idle_s,
            idle_action=idle_action,
            mount=mount,
        )
        if mine and record is not None and still_armed(record.watchdog, config, pod, now):
            return  # armed in this container with these settings: no SSH needed
        script = arm_script(
            deadline_epoch=deadline_epoch,
            action=action,
            api_url=wiring.api_url,
            idle_timeout_s=idle_s,
            idle_action=idle_action,
            mount=mount,
        )
        shell = await ctx.shells.open(pod)
        _, out, _ = await shell.run("sh -s", stdin=script, timeout_s=ARM_TIMEOUT_S)
    except PodctlError as exc:
        ctx.event(change, f"watchdog not armed: {exc}")
        return
    armed = parse_armed(out)
    if armed.state == "error":
        ctx.event(change, f"watchdog cannot be armed: {armed.message}")
        return
    started = container_started(pod, now)
    if mine and started is not None:
        arming = WatchdogArming(config, started, pod.last_status_change)
        await ctx.write(ctx.journal.armed, spec.name, pod.pod_id, arming)
    if armed.state == "started":
        ctx.event(change, f"watchdog armed (pid {armed.pid}): {_what(spec, when, stop, idle_stop)}")


def _what(spec: PodSpec, when: datetime | None, stop: bool, idle_stop: bool) -> str:
    parts = []
    if when is not None:
        stamp = when.isoformat(timespec="seconds")
        parts.append(f"it {'stops' if stop else 'terminates'} the pod at {stamp}")
    if spec.idle_timeout_s is not None:
        from reconciler.planner.fields import format_duration

        verb = "stops" if idle_stop else "terminates"
        parts.append(
            f"it {verb} the pod once idle for {format_duration(spec.idle_timeout_s)} "
            "(no podctl job, GPUs below 5 %)"
        )
    return "; ".join(parts)


async def arm_unchanged(ctx: StepContext, change: Change) -> None:
    """Arm the watchdog of a running pod the plan leaves as it is (a no-op change)."""
    spec = ctx.desired.pods.get(change.pod)
    pod = ctx.actual.get(change.pod_id) if ctx.actual is not None and change.pod_id else None
    if spec is None or pod is None or pod.desired_status is not PodStatus.RUNNING:
        return
    if not pod.runtime_ready:
        return
    await arm_watchdog(ctx, change, spec, pod, unchanged=True)
