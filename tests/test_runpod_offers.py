"""RunPodClient.gpu_offers: both clouds' per-GPU prices in one request (MockTransport, sandbox)."""

from __future__ import annotations

import asyncio
from typing import Any

from reconciler.backends.runpod_graphql import RunPodClient
from reconciler.model import CloudType
from tests.sandbox.conftest import Sandbox, module_sandbox, sb
from tests.test_runpod_client import KEY, FakeRunPod, make_client, ok

__all__ = ["module_sandbox", "sb"]  # fixtures used below


def _price(on_demand: float | None, bid: float | None, stock: str | None) -> dict[str, Any]:
    return {
        "gpuTypeId": "x",
        "minimumBidPrice": bid,
        "uninterruptablePrice": on_demand,
        "stockStatus": stock,
        "availableGpuCounts": [1, 2],
    }


def test_gpu_offers_one_request_both_clouds() -> None:
    gpus = [
        {
            "id": "NVIDIA GeForce RTX 4090",
            "displayName": "RTX 4090",
            "memoryInGb": 24,
            "secureCloud": True,
            "communityCloud": True,
            "secure": _price(0.69, 0.35, "High"),
            "community": _price(0.34, 0.2, "Low"),
        },
        {
            "id": "NVIDIA H100 80GB HBM3",
            "displayName": "H100",
            "secureCloud": True,
            "communityCloud": False,
            "secure": _price(2.99, 1.5, "Medium"),
            "community": None,
        },
        {"id": "Other", "displayName": "Other", "secure": None, "community": None},
    ]
    server = FakeRunPod(ok({"gpuTypes": gpus}))

    async def main() -> Any:
        async with make_client(server) as client:
            return await client.gpu_offers(["NVIDIA GeForce RTX 4090", "NVIDIA H100 80GB HBM3"])

    offers = asyncio.run(main())
    assert len(server.requests) == 1
    body = server.bodies[0]
    assert body["operationName"] == "GpuOffers"
    assert body["variables"] == {
        "secure": {"gpuCount": 1, "secureCloud": True},
        "community": {"gpuCount": 1, "secureCloud": False},
    }
    secure, community = offers[CloudType.SECURE], offers[CloudType.COMMUNITY]
    assert secure["NVIDIA GeForce RTX 4090"].on_demand_price == 0.69
    assert community["NVIDIA GeForce RTX 4090"].on_demand_price == 0.34
    assert community["NVIDIA GeForce RTX 4090"].stock_status == "Low"
    assert secure["NVIDIA H100 80GB HBM3"].minimum_bid_price == 1.5
    assert "NVIDIA H100 80GB HBM3" not in community  # RunPod says: not on community
    assert "Other" not in secure


def test_gpu_offers_against_the_sandbox(sb: Sandbox) -> None:
    async def main() -> Any:
        async with RunPodClient(sb.key, api_url=sb.url) as client:
            offers = await client.gpu_offers(["NVIDIA RTX A4000"])
            everything = await client.gpu_offers()
            return offers, everything, client.request_count

    offers, everything, count = asyncio.run(main())
    assert count == 2
    a4000 = offers[CloudType.SECURE]["NVIDIA RTX A4000"]
    assert a4000.on_demand_price is not None and a4000.display_name == "RTX A4000"
    assert set(offers[CloudType.COMMUNITY]) == {"NVIDIA RTX A4000"}
    assert len(everything[CloudType.SECURE]) > 1
    assert KEY not in repr(everything)
