"""max_lifetime: a pod's deadline (its recorded creation + max_lifetime) and what it decides.

RunPod never acts on `terminateAfter`, so podctl enforces the lifetime itself. The deadline is
absolute: the creation time the lockfile recorded for the pod plus the spec's max_lifetime. A
resume or an edit does not move it; changing max_lifetime does. Past it, the pod's desired
state becomes stopped or absent (lifetime_action) and stays so: a pod podctl terminated for
its lifetime keeps its record, so the next plan does not create it again.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta

from reconciler.jobs import job_order
from reconciler.model import DesiredState, LifetimeAction, Lockfile, PodRecord, PodSpec, PodState
from reconciler.planner.fields import format_duration

# a reached max_lifetime, or a reached budget.max_usd_total (planner.spend): ends podctl keeps
_REASON = re.compile(
    r"(?:^|; )(?:max_lifetime [0-9dhms]+ reached at |budget\.max_usd_total \$[0-9.]+ reached)"
)
_FINALITY = {PodState.RUNNING: 0, PodState.STOPPED: 1, PodState.ABSENT: 2}


def deadline(spec: PodSpec, record: PodRecord | None) -> datetime | None:
    """When the recorded pod of `spec` reaches its max_lifetime; None when it has none known."""
    if spec.max_lifetime_s is None or record is None or record.created_at is None:
        return None
    return record.created_at + timedelta(seconds=spec.max_lifetime_s)


def reached(spec: PodSpec, record: PodRecord | None, now: datetime | None) -> str:
    """`max_lifetime 2h reached at <time>` when the deadline has passed, else ""."""
    when = deadline(spec, record)
    if when is None or now is None or now < when:
        return ""
    stamp = when.isoformat(timespec="seconds")
    return f"max_lifetime {format_duration(spec.max_lifetime_s)} reached at {stamp}"


def is_lifetime_end(reason: str) -> bool:
    """Whether a change's reason is a reached max_lifetime, or budget.max_usd_total: the
    executor keeps the record of a pod so ended, so the next plan does not create it again."""
    return _REASON.search(reason) is not None


def lifetime_state(
    spec: PodSpec, record: PodRecord | None, now: datetime | None, state: PodState, why: str
) -> tuple[PodState, str]:
    """The state after the lifetime rule: the more final of `state` and the lifetime's.

    `record` must be the record of the pod the plan matched (or of a pod that is gone).
    `protect: true` pods are stopped instead of terminated: protect forbids terminating them.
    """
    reason = reached(spec, record, now)
    if not reason:
        return state, why
    ends = PodState.STOPPED if spec.lifetime_action is LifetimeAction.STOP else PodState.ABSENT
    if ends is PodState.ABSENT and spec.protect:
        ends, reason = PodState.STOPPED, f"{reason} (protect: true, so stopped)"
    if _FINALITY[state] > _FINALITY[ends]:
        return state, why
    return ends, reason


def expired_pods(
    specs: Iterable[PodSpec], recorded: Lockfile, now: datetime | None
) -> frozenset[str]:
    """Names of the pods whose max_lifetime has passed (their jobs do not run)."""
    return frozenset(s.name for s in specs if reached(s, recorded.pods.get(s.name), now))


def without_expired(
    desired: DesiredState, reasons: Mapping[str, str], recorded: Lockfile, now: datetime | None
) -> dict[str, str]:
    """The jobs to run minus those on an expired pod, and those needing a job so dropped."""
    expired = expired_pods(desired.pods.values(), recorded, now)
    if not expired:
        return dict(reasons)
    dropped: set[str] = set()
    for name in job_order(desired.jobs):
        job = desired.jobs[name]
        if name in reasons and (job.pod in expired or any(n in dropped for n in job.needs)):
            dropped.add(name)
    return {n: r for n, r in reasons.items() if n not in dropped}


def next_deadline(specs: Iterable[PodSpec], recorded: Lockfile, now: datetime) -> datetime | None:
    """The nearest deadline still ahead of `now`, so a reconcile loop wakes up for it."""
    ahead = [
        d for s in specs if (d := deadline(s, recorded.pods.get(s.name))) is not None and d > now
    ]
    return min(ahead, default=None)


def lifetime_note(spec: PodSpec, reason: str, *, gone: bool) -> str:
    """Why a plan leaves a pod stopped or gone although its state is running."""
    if gone:
        again = (
            f"raise max_lifetime past its age, or drop its record with `podctl state rm "
            f"{spec.address}`, to create a new pod"
        )
        return f"{spec.address}: {reason}: ended; {again}"
    return f"{spec.address}: {reason}: stopped; raise max_lifetime past its age to resume it"


def unknown_age_warning(spec: PodSpec, pod_id: str) -> str:
    return (
        f"{spec.address}: max_lifetime is not enforced on pod {pod_id}: the lockfile does not "
        "record when it was created (adopted or imported); it is enforced on the next pod "
        "podctl creates"
    )


def unwatched_note(spec: PodSpec) -> str:
    """Why a pod's max_lifetime holds only while podctl runs: no 22/tcp, so no watchdog."""
    if spec.max_lifetime_s is None or spec.has_ssh:
        return ""
    return (
        f"{spec.address}: max_lifetime {format_duration(spec.max_lifetime_s)} is enforced only "
        "while podctl reconcile runs (or at the next plan/apply): without 22/tcp in ports, "
        "podctl cannot arm the watchdog that ends the pod with podctl gone"
    )
