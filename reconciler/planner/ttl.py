"""stopped_ttl: a pod left stopped that long (its volume bills) is terminated by the next plan."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from reconciler.model import ActualPod, PodRecord, PodSpec
from reconciler.planner.fields import format_duration

# RunPod's lastStatusChange: "Exited by User: Tue Dec 01 2026 21:00:00 GMT+0000 (...)"
_STAMP = re.compile(r": \w{3} (\w{3} \d{1,2} \d{4} \d{2}:\d{2}:\d{2}) GMT([+-]\d{4})")


def _status_time(text: str) -> datetime | None:
    """When RunPod's free-text lastStatusChange says the status changed; None if unreadable."""
    match = _STAMP.search(text)
    if match is None:
        return None
    try:
        return datetime.strptime(f"{match.group(1)} {match.group(2)}", "%b %d %Y %H:%M:%S %z")
    except ValueError:
        return None


def stopped_since(pod: ActualPod, record: PodRecord | None) -> datetime | None:
    """Since when the stopped `pod` is stopped: the later of what the lockfile and RunPod say.

    The lockfile's `stopped_at` is when podctl stopped the pod or first saw it stopped; RunPod's
    lastStatusChange (GraphQL only) also covers a stop outside podctl. The later one wins, so a
    pod resumed and stopped again is never ended early.
    """
    known = [t for t in (_status_time(pod.last_status_change),) if t is not None]
    if record is not None and record.pod_id == pod.pod_id and record.stopped_at is not None:
        known.append(record.stopped_at)
    return max((t.astimezone(UTC) for t in known), default=None)


def ttl_reached(
    spec: PodSpec, pod: ActualPod, record: PodRecord | None, now: datetime | None
) -> str:
    """`stopped_ttl 7d reached: stopped since <time>` when it has passed, else ""."""
    if spec.stopped_ttl_s is None or now is None:
        return ""
    since = stopped_since(pod, record)
    if since is None or now < since + timedelta(seconds=spec.stopped_ttl_s):
        return ""
    stamp = since.isoformat(timespec="seconds")
    return f"stopped_ttl {format_duration(spec.stopped_ttl_s)} reached: stopped since {stamp}"
