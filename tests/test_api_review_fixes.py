"""Fixes a review against RunPod's public clients found: key files, auth answers, GPU offers."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from reconciler.backends.runpod_graphql import RunPodClient, resolve_api_key
from reconciler.backends.runpod_graphql import wire as gql_wire
from reconciler.backends.runpod_rest import RestClient
from reconciler.backends.runpod_rest import wire as rest_wire
from reconciler.errors import AuthError
from reconciler.model import CloudType, GpuOffer, PodSpec
from reconciler.planner.placement import placement_findings, placements

KEY = "rpa_REVIEWSECRET0123456789"


def test_a_runpodctl_config_with_a_top_level_apikey_is_read(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'apikey = "{KEY}"\napiurl = "https://api.runpod.io/graphql"\n')
    assert resolve_api_key({}, config) == KEY
    config.write_text(f'apikey = "other"\n[default]\napi_key = "{KEY}"\n')
    assert resolve_api_key({}, config) == KEY  # the SDK's section first


def _graphql(answer: dict[str, Any], status: int = 200) -> RunPodClient:
    def reply(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json=answer)

    return RunPodClient(KEY, api_url="https://runpod.test", transport=httpx.MockTransport(reply))


def _list(client: RunPodClient | RestClient) -> Any:
    async def main() -> Any:
        async with client:
            return await client.list_pods()

    return asyncio.run(main())


def test_myself_null_is_an_auth_problem() -> None:
    with pytest.raises(AuthError) as caught:
        _list(_graphql({"data": {"myself": None}}))
    assert "API key was refused" in str(caught.value) and "`myself` is null" in str(caught.value)
    assert KEY not in str(caught.value)


def test_a_403_says_the_key_may_lack_access_on_both_apis() -> None:
    with pytest.raises(AuthError) as caught:
        _list(_graphql({"errors": [{"message": "forbidden"}]}, status=403))
    assert "or it has no access to this (a read-only or restricted key)" in str(caught.value)
    with pytest.raises(AuthError) as caught:
        _list(_graphql({"errors": [{"message": "Unauthorized"}]}, status=401))
    assert "no access" not in str(caught.value)

    def reply(request: httpx.Request) -> httpx.Response:
        problem = {"title": "Forbidden", "status": 403, "detail": "forbidden"}
        return httpx.Response(403, content=json.dumps(problem).encode())

    rest = RestClient(KEY, api_url="https://api.runpod.io", transport=httpx.MockTransport(reply))
    with pytest.raises(AuthError) as caught:
        _list(rest)
    assert "or it has no access to this (a read-only or restricted key)" in str(caught.value)


def _gpu(gpu_id: str, **extra: Any) -> dict[str, Any]:
    price = {"uninterruptablePrice": 0.5, "minimumBidPrice": 0.2, "stockStatus": "High"}
    return {
        "id": gpu_id,
        "displayName": gpu_id,
        "secureCloud": True,
        "communityCloud": True,
        "maxGpuCount": 8,
        "secure": {"gpuTypeId": gpu_id, **price},
        "community": {"gpuTypeId": gpu_id, **price},
        **extra,
    }


def test_the_gpu_id_unknown_is_never_an_offer() -> None:
    data = {"gpuTypes": [_gpu("unknown"), _gpu("NVIDIA L4")]}
    by_cloud = gql_wire.parse_gpu_offers_by_cloud(data, None)
    assert [list(v) for v in by_cloud.values()] == [["NVIDIA L4"], ["NVIDIA L4"]]
    assert list(gql_wire.parse_gpu_offers(data, frozenset({"unknown", "NVIDIA L4"}))) == [
        "NVIDIA L4"
    ]
    rest = {"gpus": [{"id": "unknown", "name": "?"}, {"id": "NVIDIA L4", "name": "L4"}]}
    assert list(rest_wire.parse_gpu_offers(rest, CloudType.SECURE, None)) == ["NVIDIA L4"]


def test_each_cloud_has_its_own_maximum_gpu_count() -> None:
    data = {"gpuTypes": [_gpu("NVIDIA H100", maxGpuCountCommunityCloud=2)]}
    by_cloud = gql_wire.parse_gpu_offers_by_cloud(data, None)
    assert by_cloud[CloudType.SECURE]["NVIDIA H100"].max_gpu_count == 8
    assert by_cloud[CloudType.COMMUNITY]["NVIDIA H100"].max_gpu_count == 2


def _offers(**most: int) -> dict[CloudType, dict[str, GpuOffer]]:
    return {
        cloud: {"NVIDIA H100": GpuOffer("NVIDIA H100", "H100", max_gpu_count=most[cloud.value])}
        for cloud in (CloudType.SECURE, CloudType.COMMUNITY)
    }


def test_a_count_over_a_clouds_maximum_skips_that_cloud() -> None:
    spec = PodSpec(
        name="box", image="i", gpu_types=("NVIDIA H100",), gpu_count=4, cloud=CloudType.ALL
    )
    offers = _offers(secure=8, community=2)
    assert [(p.gpu_type_id, p.cloud) for p in placements(spec, offers)] == [
        ("NVIDIA H100", CloudType.SECURE)
    ]
    found = placement_findings(spec, offers)
    assert found.errors == []
    assert found.notes == [
        "pod.box: H100 (community) is skipped: RunPod puts at most 2 of them on one pod there, "
        "and pods.box.gpu.count is 4"
    ]


def test_a_count_over_every_maximum_is_a_plan_error() -> None:
    spec = PodSpec(
        name="box", image="i", gpu_types=("NVIDIA H100",), gpu_count=4, cloud=CloudType.ALL
    )
    found = placement_findings(spec, _offers(secure=2, community=1))
    assert found.errors == [
        "pod.box: pods.box.gpu.count is 4, more than RunPod puts on one pod of every GPU type "
        "and cloud it may use: H100 (secure) at most 2, H100 (community) at most 1; lower "
        "pods.box.gpu.count or add GPU types"
    ]


def test_an_empty_network_volume_id_is_none() -> None:
    pod = gql_wire.parse_pod({"id": "p1", "desiredStatus": "RUNNING", "networkVolumeId": ""}, "pod")
    assert pod.network_volume_id is None
