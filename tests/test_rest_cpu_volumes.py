"""REST v2: CPU pods, network volume data centers and `startedAt`, against RunPod's OpenAPI."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import graphql
import httpx
import pytest

from reconciler.backends.runpod_graphql.documents import create_input
from reconciler.backends.runpod_rest import wire
from reconciler.errors import ApiError, PodctlError
from reconciler.executor.watchdog import container_started, still_armed
from reconciler.model import CloudType, WatchdogArming
from reconciler.planner.fields import actual_view
from reconciler.podops import PodCreate
from tests.test_runpod_client import FakeRunPod, ok
from tests.test_runpod_client import run as run_graphql
from tests.test_runpod_rest import (
    FakeRest,
    created,
    example,
    make,
    request,
    run,
    schema_validator,
    v2_pod,
)

ROOT = Path(__file__).resolve().parents[1]


def cpu_request(**overrides: Any) -> PodCreate:
    base = dataclasses.replace(
        request(),
        gpu_type_id="cpu5c",
        gpu_count=0,
        cloud=CloudType.SECURE,
        cpu_flavor="cpu5c",
        vcpu_count=4,
        allowed_cuda_versions=(),
        min_vcpu=None,
        min_memory_gb=None,
    )
    return dataclasses.replace(base, **overrides)


def test_a_cpu_create_sends_cpu_and_no_gpu_or_volume_disk() -> None:
    server = FakeRest(created())
    run(make(server).create_pod(cpu_request()))
    body = server.body()
    schema_validator("CreatePodRequest").validate(body)  # unevaluatedProperties: false
    assert body["cpu"] == {"id": "cpu5c", "vcpuCount": 4}
    assert "gpu" not in body and "mounts" not in body  # mounts.persistent: invalid on CPU pods
    assert body["cloud"] == "SECURE"


def test_a_cpu_pod_reads_back_its_flavor_vcpus_and_memory() -> None:
    answer = v2_pod(cpu={"id": "cpu5c", "vcpuCount": 4, "memory": 8})
    del answer["gpu"]
    pod = wire.parse_pod(answer)
    assert (pod.cpu_flavor, pod.vcpu_count, pod.memory_gb) == ("cpu5c", 4, 8)
    assert (pod.gpu_type_id, pod.gpu_count) == (None, 0)
    view = actual_view(pod)
    assert (view["cpu.flavor"], view["cpu.vcpu"]) == ("cpu5c", 4)
    # a GPU pod's compared fields carry no cpu rows (its plan digest is what it was)
    assert not [k for k in actual_view(wire.parse_pod(v2_pod())) if k.startswith("cpu.")]


def test_the_cpu_catalog_example_is_offers_priced_per_vcpu() -> None:
    offers = wire.parse_cpu_offers(example("/v2/catalog/cpus", "get"))
    (offer,) = offers.values()
    assert offer.gpu_type_id == "cpu3c-2-4" and offer.display_name == "Compute-Optimized"
    assert (offer.on_demand_price, offer.vcpu_range, offer.stock_status) == (
        0.04,
        (2, 32),
        "Medium",
    )


def test_a_cpu_create_over_graphql_is_deploy_cpu_pod_with_the_flavors_memory() -> None:
    flavors = ok({"cpuFlavors": [{"id": "cpu5c", "minVcpu": 2, "maxVcpu": 32, "ramMultiplier": 2}]})
    pod = {"id": "p1", "desiredStatus": "RUNNING", "env": [], "gpuCount": 0, "vcpuCount": 4}
    server = FakeRunPod(flavors, ok({"deployCpuPod": pod}))
    created_pod = run_graphql(server, lambda c: c.create_pod(cpu_request()))
    assert created_pod.pod_id == "p1"
    lookup, deploy = server.bodies
    assert "cpuFlavors" in lookup["query"]
    sdl = graphql.build_schema((ROOT / "reconciler/schemas/runpod.graphql").read_text())
    assert graphql.validate(sdl, graphql.parse(deploy["query"])) == []  # the document is valid
    assert "deployCpuPod(input:" in deploy["query"]
    variables = deploy["variables"]
    assert variables["instanceId"] == "cpu5c-4-8"  # 4 vCPUs x 2 GB
    assert variables["cloudType"] == "SECURE" and "volumeInGb" not in variables
    assert "gpuTypeId" not in variables
    with pytest.raises(PodctlError):  # never through the GPU mutations
        create_input(cpu_request())


def test_an_unknown_flavor_over_graphql_creates_nothing() -> None:
    server = FakeRunPod(ok({"cpuFlavors": []}))
    with pytest.raises(ApiError, match="RunPod lists no CPU flavor 'cpu5c'"):
        run_graphql(server, lambda c: c.create_pod(cpu_request()))
    assert len(server.requests) == 1


def test_started_at_is_the_containers_start_and_a_restart_moves_it() -> None:
    pod = wire.parse_pod(v2_pod(startedAt="2026-03-13T20:00:00Z"))
    started = datetime(2026, 3, 13, 20, 0, tzinfo=UTC)
    assert pod.started_at == started
    now = started + timedelta(hours=5)  # uptime in the example says 3600 s: startedAt wins
    assert container_started(pod, now) == started
    arming = WatchdogArming("cfg", started)
    assert still_armed(arming, "cfg", pod, now)
    restarted = wire.parse_pod(v2_pod(startedAt="2026-03-13T20:00:01Z"))
    assert not still_armed(arming, "cfg", restarted, now)  # a second later: another container
    with pytest.raises(ApiError, match="startedAt is not an RFC 3339 time"):
        wire.parse_pod(v2_pod(startedAt="yesterday"))


def volume(volume_id: str = "vol9", data_center: str = "CA-MTL-1") -> httpx.Response:
    body = {"id": volume_id, "name": "d", "size": 50, "dataCenter": data_center, "type": "STANDARD"}
    return httpx.Response(200, json=body)


def test_a_network_volume_pod_without_data_center_is_sent_to_the_volumes() -> None:
    server = FakeRest(volume(), created())
    req = dataclasses.replace(request(), network_volume_id="vol9", data_center_id=None)
    run(make(server).create_pod(req))
    lookup, create = server.requests
    assert (lookup.method, lookup.url.path) == ("GET", "/v2/network-volumes/vol9")
    body = json.loads(create.content)
    schema_validator("CreatePodRequest").validate(body)
    assert body["dataCenterIds"] == ["CA-MTL-1"]
    assert body["mounts"] == {"network": [{"volumeId": "vol9", "path": "/workspace"}]}


def test_an_unknown_network_volume_is_a_clear_error_and_no_create() -> None:
    missing = httpx.Response(
        404, json={"title": "Not Found", "status": 404, "detail": "network volume not found"}
    )
    server = FakeRest(missing)
    req = dataclasses.replace(request(), network_volume_id="nope", data_center_id=None)
    with pytest.raises(ApiError, match="RunPod knows no network volume 'nope' on this account"):
        run(make(server).create_pod(req))
    assert len(server.requests) == 1


def test_the_volume_list_is_read_with_data_centers() -> None:
    body = example("/v2/network-volumes", "get")
    server = FakeRest(httpx.Response(200, json=body))
    volumes = run(make(server).network_volumes())
    assert volumes and all(v.data_center for v in volumes.values())
    assert server.requests[0].url.path == "/v2/network-volumes"


def test_the_gpu_catalog_says_which_data_centers_have_stock() -> None:
    body = example("/v2/catalog/gpus", "get")
    offers = wire.parse_gpu_offers(body, CloudType.SECURE, None)
    listed = {
        g["id"]: tuple(d["id"] for d in g.get("dataCenters", []) if d["availability"] != "NONE")
        for g in body["gpus"]
    }
    assert listed and all(offers[k].data_centers == v for k, v in listed.items() if k in offers)
    assert any(o.data_centers for o in offers.values())
