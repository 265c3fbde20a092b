"""`GET /v2/billing/pods` for podctl: the query for a window, and the answer as USD per pod.

Pure. RunPod's records are per pod per time bucket (`totalAmount` = GPU or CPU + disk), with
`startTime` snapped down to its bucket (OpenAPI `listPodBilling`, runpod-rest-v2.md 11).
Month buckets keep the answer small: a record per pod per month of the window.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

from reconciler.errors import ApiResponseError

LAST_MONTHS = "12"  # the window when no start is known: the last 12 month buckets


def billing_query(since: datetime | None, pod_id: str | None = None) -> dict[str, str]:
    """Month buckets from `since` (snapped down by RunPod), else the last 12 months."""
    query = {"bucketSize": "month"}
    if since is None:
        query["lastN"] = LAST_MONTHS
    else:
        query["startTime"] = since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if pod_id is not None:
        query["podId"] = pod_id
    return query


def parse_pod_billing(payload: object) -> dict[str, float]:
    """Pod id -> USD billed over the window (its records' totalAmount summed)."""
    records = payload.get("records") if isinstance(payload, dict) else None
    if not isinstance(records, list):
        raise ApiResponseError(
            "RunPod ListPodBilling: the answer has no records list", operation="ListPodBilling"
        )
    out: dict[str, float] = {}
    for record in records:
        pod_id = record.get("podId") if isinstance(record, dict) else None
        amount = record.get("totalAmount") if isinstance(record, dict) else None
        if (
            not isinstance(pod_id, str)
            or isinstance(amount, bool)
            or not isinstance(amount, int | float)
            or not math.isfinite(amount)
            or amount < 0
        ):
            raise ApiResponseError(
                "RunPod ListPodBilling: a record without a podId and a totalAmount >= 0",
                operation="ListPodBilling",
            )
        out[pod_id] = out.get(pod_id, 0.0) + float(amount)
    return out
