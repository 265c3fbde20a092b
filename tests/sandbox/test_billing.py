"""The sandbox's `/v2/billing/pods` over real HTTP, and its ledger's billing rules
(OpenAPI `listPodBilling`; runpod-rest-v2.md 5.7 and 11; peers.md "Billing")."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from reconciler.sandbox import layout
from reconciler.sandbox.billing import (
    STOPPED_VOLUME_PER_GB_H,
    Ledger,
    floor_to,
    pod_billing,
)
from tests.sandbox.conftest import Sandbox
from tests.sandbox.test_rest import _h, create, rest

DISK_H = 0.10 / 730  # $/GB/h of container and volume disk while running


def _bill(sb: Sandbox, query: str = "") -> dict[str, Any]:
    resp = rest(sb, "GET", "/v2/billing/pods" + query)
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def _total(body: dict[str, Any], pod_id: str) -> float:
    return float(sum(r["totalAmount"] for r in body["records"] if r["podId"] == pod_id))


def test_a_pod_bills_running_then_stopped_then_nothing_and_its_history_stays(
    sb: Sandbox,
) -> None:
    pod = create(sb, disk=10, mounts={"persistent": {"size": 20, "path": "/w"}})
    pod_id = pod["id"]
    sb.faults({"bill_hours": {pod_id: 2}})  # two hours running: GPU $0.32/h and 30 GB of disk
    body = _bill(sb)
    running = 2 * (0.32 + 30 * DISK_H)
    assert _total(body, pod_id) == pytest.approx(running, abs=1e-3)
    (record,) = body["records"]
    assert record["gpuAmount"] == pytest.approx(0.64, abs=1e-3) and record["cpuAmount"] == 0
    assert record["diskAmount"] == pytest.approx(2 * 30 * DISK_H, abs=1e-4)
    assert record["totalAmount"] == pytest.approx(
        record["gpuAmount"] + record["diskAmount"], abs=3e-6
    )
    assert body["metadata"]["uniquePodCount"] == 1 and body["metadata"]["recordCount"] == 1
    assert body["metadata"]["query"]["bucketSize"] == "day"
    # stopped: only the volume, at $0.20/GB/month
    assert rest(sb, "POST", f"/v2/pods/{pod_id}/action", {"action": "stop"}).status_code == 200
    sb.faults({"bill_hours": {pod_id: 10}})
    stopped = 10 * 20 * STOPPED_VOLUME_PER_GB_H
    assert _total(_bill(sb), pod_id) == pytest.approx(running + stopped, abs=1e-3)
    # terminated: nothing more, but what it cost is still billed
    assert rest(sb, "DELETE", f"/v2/pods/{pod_id}").status_code == 204
    sb.faults({"bill_hours": {"*": 10}})
    after = _bill(sb, f"?podId={pod_id}&bucketSize=month")
    assert _total(after, pod_id) == pytest.approx(running + stopped, abs=1e-3)
    assert after["metadata"]["query"]["podId"] == pod_id
    assert after["metadata"]["totals"]["totalAmount"] == pytest.approx(running + stopped, abs=1e-3)


def test_the_window_is_snapped_to_buckets_and_filters_by_pod(sb: Sandbox) -> None:
    a, b = create(sb)["id"], create(sb)["id"]
    body = _bill(sb, "?startTime=2026-01-01T10:30:00Z&bucketSize=month")
    assert body["metadata"]["query"]["startTime"] == "2026-01-01T00:00:00Z"
    assert {r["podId"] for r in body["records"]} == {a, b}
    only = _bill(sb, f"?podId={a}&lastN=2&bucketSize=hour")
    assert {r["podId"] for r in only["records"]} == {a}
    start = datetime.fromisoformat(only["metadata"]["query"]["startTime"].replace("Z", "+00:00"))
    end = datetime.fromisoformat(only["metadata"]["query"]["endTime"].replace("Z", "+00:00"))
    assert (end - start).total_seconds() == 2 * 3600


@pytest.mark.parametrize(
    ("query", "status", "text"),
    [
        ("?lastN=3&startTime=2026-01-01T00:00:00Z", 400, "mutually exclusive"),
        ("?bucketSize=minute", 422, "$.bucketSize: value must be one of 'hour', 'day'"),
        ("?lastN=0", 422, "$.lastN: must be an integer >= 1"),
        ("?startTime=yesterday", 422, "$.startTime: 'yesterday' is not a valid 'date-time'"),
    ],
)
def test_bad_queries_are_refused_as_problems(
    sb: Sandbox, query: str, status: int, text: str
) -> None:
    resp = rest(sb, "GET", "/v2/billing/pods" + query)
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert text in resp.text


def test_billing_needs_the_account_key(sb: Sandbox) -> None:
    assert rest(sb, "GET", "/v2/billing/pods", headers=_h(sb, "wrong")).status_code == 401
    pod_id = create(sb)["id"]
    state = json.loads((sb.data_dir / layout.STATE_FILE).read_text())
    pod_key = next(p["api_key"] for p in state["pods"] if p["id"] == pod_id)
    # a pod's own RUNPOD_API_KEY reads its pod, not the account's bills
    assert rest(sb, "GET", "/v2/billing/pods", headers=_h(sb, pod_key)).status_code == 403
    assert rest(sb, "POST", "/v2/billing/pods", {}).status_code == 405


def test_the_ledger_splits_a_stretch_over_its_buckets() -> None:
    class Pod:
        id: str = "p1"
        desired_status: str = "RUNNING"
        gpu_type_id: str | None = "G"
        container_disk_gb: int = 0
        volume_gb: int = 0

    ledger = Ledger()
    t0 = datetime(2026, 3, 1, 23, 0, tzinfo=UTC).timestamp()
    ledger.sync([(Pod(), 1.0)], t0)
    now = t0 + 2 * 3600  # 23:00 -> 01:00: an hour each side of midnight
    body = pod_billing(ledger, {"startTime": ["2026-03-01T00:00:00Z"]}, now)
    assert [(r["startTime"], r["gpuAmount"]) for r in body["records"]] == [
        ("2026-03-01T00:00:00Z", 1.0),
        ("2026-03-02T00:00:00Z", 1.0),
    ]
    assert floor_to(datetime(2026, 3, 4, 5, tzinfo=UTC), "week").day == 2  # Monday


def test_billing_can_lag_behind_the_pods(sb: Sandbox) -> None:
    pod_id = create(sb)["id"]  # 10 GB of container disk, no volume
    sb.faults({"bill_hours": {pod_id: 2}})
    sb.faults({"billing_lag_s": 3600})  # RunPod documents no delay: a fault adds one
    assert _total(_bill(sb), pod_id) == pytest.approx(0.32 + 10 * DISK_H, abs=1e-3)
    sb.faults({"billing_lag_s": 3 * 3600})  # nothing billed yet
    assert _bill(sb)["records"] == []
    sb.faults({"billing_lag_s": 0})
    assert _total(_bill(sb), pod_id) == pytest.approx(2 * (0.32 + 10 * DISK_H), abs=1e-3)
    resp = rest(sb, "POST", "/_sandbox/faults", {"billing_lag_s": -1})
    assert resp.status_code == 400 and "billing_lag_s must be a finite number >= 0" in resp.text
