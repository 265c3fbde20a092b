"""SharedListing: pods waiting on SSH at once share one list_pods, not one request each."""

from __future__ import annotations

import asyncio

from reconciler.model import PodStatus
from reconciler.workflow.shells import SharedListing
from tests.executor_fakes import FakeApi


def test_twenty_waiting_pods_share_one_listing_until_it_is_old() -> None:
    api = FakeApi()
    for i in range(20):
        api.add(f"p{i}", "st", f"box{i}", PodStatus.RUNNING)
    now = [0.0]
    listing = SharedListing(api.list_pods, max_age_s=1.0, clock=lambda: now[0])

    async def main() -> list[object]:
        return list(await asyncio.gather(*(listing.pod(f"p{i}") for i in range(20))))

    pods = asyncio.run(main())
    assert [p.pod_id for p in pods] == [f"p{i}" for i in range(20)]  # type: ignore[attr-defined]
    assert listing.requests == 1 and api.calls["list_pods"] == 1
    now[0] = 1.0  # the listing is as old as max_age_s: the next caller lists again
    assert asyncio.run(listing.pod("gone")) is None
    assert api.calls["list_pods"] == 2
