"""The sandbox's pod accounting: what each pod has cost so far, served as `/v2/billing/pods`.

RunPod bills per second (peers.md "Billing"): a running pod its $/h (GPU, or CPU for a CPU
pod) plus its container and volume disk at $0.10/GB/month; a stopped pod only its volume disk,
at $0.20/GB/month (runpod-rest-v2.md 5.7, peers.md's storage table); a terminated pod nothing
more, but its history stays billed. The ledger keeps one segment per stretch of constant
rates, opened and closed whenever the store saves a change, so it survives a terminate and a
sandbox restart. The route's parameters and answer follow the OpenAPI's `listPodBilling`.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

HOURS_PER_MONTH = 730  # RunPod's $/GB/month figures, as per hour
RUNNING_DISK_PER_GB_H = 0.10 / HOURS_PER_MONTH  # container and volume disk of a running pod
STOPPED_VOLUME_PER_GB_H = 0.20 / HOURS_PER_MONTH  # the volume disk of a stopped pod
BUCKETS = ("hour", "day", "week", "month", "year")  # BillingBucketSize
DEFAULT_WINDOW = timedelta(days=30)  # BillingStartTime: "Defaults to 30 days ago"


class Billable(Protocol):
    """What the ledger reads of a sandbox pod."""

    id: str
    desired_status: str
    gpu_type_id: str | None
    container_disk_gb: int
    volume_gb: int


@dataclass
class Segment:
    """A stretch of one pod's time at constant rates ($/h); `end` None while it goes on."""

    start: float
    end: float | None
    compute_h: float
    disk_h: float
    cpu: bool  # a CPU pod: its compute is cpuAmount, not gpuAmount

    def to_list(self) -> list[Any]:
        return [self.start, self.end, self.compute_h, self.disk_h, self.cpu]

    @classmethod
    def from_list(cls, item: list[Any]) -> Segment:
        start, end, compute, disk, cpu = item
        return cls(float(start), None if end is None else float(end), compute, disk, bool(cpu))


def rates(pod: Billable, cost_per_hr: float) -> tuple[float, float]:
    """(compute $/h, disk $/h) of `pod` as it is now."""
    if pod.desired_status == "RUNNING":
        disk_gb = pod.container_disk_gb + pod.volume_gb
        return cost_per_hr, disk_gb * RUNNING_DISK_PER_GB_H
    return 0.0, pod.volume_gb * STOPPED_VOLUME_PER_GB_H


class Ledger:
    """Billing segments per pod id, kept after the pod is gone."""

    def __init__(self) -> None:
        self.segments: dict[str, list[Segment]] = {}
        # billing shows usage this late (a fault; RunPod documents no figure, so 0 by default)
        self.lag_s = 0.0

    def load(self, data: Mapping[str, Any]) -> None:
        self.segments = {
            pod_id: [Segment.from_list(s) for s in items] for pod_id, items in data.items()
        }

    def dump(self) -> dict[str, list[list[Any]]]:
        return {pod_id: [s.to_list() for s in items] for pod_id, items in self.segments.items()}

    def clear(self) -> None:
        self.segments = {}
        self.lag_s = 0.0

    def sync(self, pods: Iterable[tuple[Billable, float]], now: float) -> None:
        """Close and open segments so each pod's open one has its rates now; end the gone."""
        seen: set[str] = set()
        for pod, cost_per_hr in pods:
            seen.add(pod.id)
            compute, disk = rates(pod, cost_per_hr)
            items = self.segments.setdefault(pod.id, [])
            open_ = items[-1] if items and items[-1].end is None else None
            if open_ is not None and (open_.compute_h, open_.disk_h) == (compute, disk):
                continue
            if open_ is not None:
                open_.end = now
            items.append(Segment(now, None, compute, disk, pod.gpu_type_id is None))
        for pod_id, items in self.segments.items():
            if pod_id not in seen and items and items[-1].end is None:
                items[-1].end = now

    def advance(self, pod_ids: Iterable[str], seconds: float) -> None:
        """As if each pod had been in its present state `seconds` longer (an admin hook:
        tests make a pod cost money without waiting hours)."""
        for pod_id in pod_ids:
            items = self.segments.get(pod_id) or []
            if items and items[-1].end is None:
                items[-1].start -= seconds

    def open_pods(self) -> list[str]:
        return [p for p, items in self.segments.items() if items and items[-1].end is None]

    def amounts(self, pod_id: str, start: float, end: float, now: float) -> dict[str, float]:
        """The pod's amounts (USD) over [start, end), as billed by `now` (minus the lag)."""
        gpu = cpu = disk = 0.0
        seen = now - self.lag_s
        for s in self.segments.get(pod_id, []):
            until = min(end, seen, s.end if s.end is not None else seen)
            hours = max(0.0, until - max(start, s.start))
            hours /= 3600
            if s.cpu:
                cpu += s.compute_h * hours
            else:
                gpu += s.compute_h * hours
            disk += s.disk_h * hours
        return _amounts(gpu, cpu, disk)

    def overlaps(self, pod_id: str, start: float, end: float, now: float) -> bool:
        seen = now - self.lag_s
        return any(
            s.start < min(end, seen) and min(seen, s.end if s.end is not None else seen) > start
            for s in self.segments.get(pod_id, [])
        )


def _amounts(gpu: float, cpu: float, disk: float) -> dict[str, float]:
    return {
        "totalAmount": round(gpu + cpu + disk, 6),
        "gpuAmount": round(gpu, 6),
        "cpuAmount": round(cpu, 6),
        "diskAmount": round(disk, 6),
    }


# -- the window (BillingStartTime, BillingEndTime, BillingBucketSize, BillingLastN) ------------


class QueryError(ValueError):
    """A query the route refuses: (status, detail, errors)."""

    def __init__(self, status: int, detail: str, errors: list[str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = errors


def floor_to(when: datetime, bucket: str) -> datetime:
    """The start of the `bucket` that `when` falls in (UTC; weeks start on Monday)."""
    when = when.astimezone(UTC)
    if bucket == "hour":
        return when.replace(minute=0, second=0, microsecond=0)
    day = when.replace(hour=0, minute=0, second=0, microsecond=0)
    if bucket == "day":
        return day
    if bucket == "week":
        return day - timedelta(days=day.weekday())
    if bucket == "month":
        return day.replace(day=1)
    return day.replace(month=1, day=1)


def next_bucket(start: datetime, bucket: str) -> datetime:
    if bucket == "hour":
        return start + timedelta(hours=1)
    if bucket == "day":
        return start + timedelta(days=1)
    if bucket == "week":
        return start + timedelta(weeks=1)
    if bucket == "month":
        days = calendar.monthrange(start.year, start.month)[1]
        return start + timedelta(days=days)
    return start.replace(year=start.year + 1)


def _time(value: str, name: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise QueryError(
            422,
            "Request validation failed.",
            [f"$.{name}: '{value}' is not a valid 'date-time'"],
        ) from None
    if parsed.tzinfo is None:
        raise QueryError(
            422, "Request validation failed.", [f"$.{name}: '{value}' is not a valid 'date-time'"]
        )
    return parsed.astimezone(UTC)


def _one(query: Mapping[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[-1] if values else None


def window(query: Mapping[str, list[str]], now: float) -> tuple[datetime, datetime, str]:
    """(start, end, bucketSize) of a query, snapped to bucket boundaries as the OpenAPI says."""
    bucket = _one(query, "bucketSize") or "day"
    errors = []
    if bucket not in BUCKETS:
        errors.append("$.bucketSize: value must be one of " + ", ".join(f"'{b}'" for b in BUCKETS))
    last_text = _one(query, "lastN")
    if last_text is not None and not (last_text.isdigit() and int(last_text) >= 1):
        errors.append(f"$.lastN: must be an integer >= 1, got '{last_text}'")
    if errors:
        raise QueryError(422, "Request validation failed.", errors)
    start_text, end_text = _one(query, "startTime"), _one(query, "endTime")
    if last_text is not None and (start_text is not None or end_text is not None):
        raise QueryError(400, "lastN is mutually exclusive with startTime and endTime")
    at = datetime.fromtimestamp(now, UTC)
    if last_text is not None:
        end = next_bucket(floor_to(at, bucket), bucket)
        start = floor_to(at, bucket)
        for _ in range(int(last_text) - 1):
            start = floor_to(start - timedelta(seconds=1), bucket)
        return start, end, bucket
    start = floor_to(_time(start_text, "startTime") if start_text else at - DEFAULT_WINDOW, bucket)
    end_at = _time(end_text, "endTime") if end_text else at
    end = floor_to(end_at, bucket)
    if end != end_at:
        end = next_bucket(end, bucket)
    if end <= start:
        raise QueryError(400, "endTime must be after startTime")
    return start, end, bucket


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


MAX_RECORDS = 10_000  # the sandbox bounds an answer; RunPod documents no limit


def pod_billing(ledger: Ledger, query: Mapping[str, list[str]], now: float) -> dict[str, Any]:
    """The body of `GET /v2/billing/pods`: a record per pod per bucket it was billed in."""
    start, end, bucket = window(query, now)
    pod_filter = _one(query, "podId")
    pods = [pod_filter] if pod_filter else sorted(ledger.segments)
    records: list[dict[str, Any]] = []
    cursor = start
    while cursor < end:
        after = next_bucket(cursor, bucket)
        lo, hi = cursor.timestamp(), after.timestamp()
        for pod_id in pods:
            if not ledger.overlaps(pod_id, lo, hi, now):
                continue
            records.append(
                {
                    "startTime": _iso(cursor),
                    "endTime": _iso(after),
                    "podId": pod_id,
                    **ledger.amounts(pod_id, lo, hi, now),
                }
            )
            if len(records) > MAX_RECORDS:
                raise QueryError(400, "the window holds too many records: narrow it")
        cursor = after
    totals = _amounts(
        sum(r["gpuAmount"] for r in records),
        sum(r["cpuAmount"] for r in records),
        sum(r["diskAmount"] for r in records),
    )
    return {
        "records": records,
        "metadata": {
            "query": {
                "startTime": _iso(start),
                "endTime": _iso(end),
                "bucketSize": bucket,
                "podId": pod_filter,
            },
            "recordCount": len(records),
            "uniquePodCount": len({r["podId"] for r in records}),
            "totals": totals,
        },
    }
