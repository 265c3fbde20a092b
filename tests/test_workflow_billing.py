"""The stack's spend: only its own pods count, the window starts at its first creation, and a
failed billing read is a Spend with an error (the plan warns), never an exception."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from reconciler.errors import ApiError
from reconciler.model import Budget, JobRecord, JobStatus
from reconciler.planner.spend import Spend
from reconciler.workflow.billing import read_spend
from reconciler.workflow.context import Connection, Ports
from tests.planner_fixtures import actual, actual_pod, desired, lockfile, pod_spec, record

T1 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)


class FakeRest:
    api_name = "rest"

    def __init__(self, costs: dict[str, float] | Exception) -> None:
        self.costs = costs
        self.since: list[datetime | None] = []

    async def pod_costs(self, since: datetime | None) -> dict[str, float]:
        self.since.append(since)
        if isinstance(self.costs, Exception):
            raise self.costs
        return self.costs


@contextlib.asynccontextmanager
async def _as_billing(connection: Connection, client: Any) -> AsyncIterator[Any]:
    yield client  # the composition root would hand a REST client's billing here


WIRED = Connection(ports=Ports(backend=lambda c: None, billing=_as_billing))  # type: ignore[arg-type,return-value]


def _spend(client: FakeRest, **budget: float) -> Spend | None:
    spec = pod_spec()
    d = replace(desired(spec), budget=Budget(**budget))  # type: ignore[arg-type]
    gone = JobRecord("f", "old-pod", JobStatus.SUCCEEDED, 0, started_at=T1)
    r = replace(lockfile(("trainer", record(spec, "p1"))), jobs={"train": gone})
    a = actual(actual_pod(spec, "p1"), actual_pod(pod_spec("x"), "stranger", stack="other"))
    return asyncio.run(read_spend(WIRED, client, d, a, r))  # type: ignore[arg-type]


def test_only_the_stack_s_pods_count_from_its_first_known_time() -> None:
    client = FakeRest({"p1": 1.25, "old-pod": 2.0, "stranger": 100.0})
    assert _spend(client, max_usd_total=10) == Spend(total=3.25, pods=2)
    assert client.since == [T1]  # the job ledger's start: the record has no creation time


def test_no_max_usd_total_reads_nothing() -> None:
    client = FakeRest({})
    assert _spend(client, max_usd_per_hour=5) is None and client.since == []


def test_a_failed_read_is_an_error_the_plan_can_show() -> None:
    spend = _spend(
        FakeRest(ApiError("RunPod ListPodBilling: HTTP 403: access denied")), max_usd_total=1
    )
    assert spend is not None and spend.total is None
    assert spend.error == (
        "reading RunPod's billing (REST v2 /v2/billing/pods) failed: "
        "RunPod ListPodBilling: HTTP 403: access denied"
    )
