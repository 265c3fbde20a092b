"""The /v2/serverless client's mapping: RunPod's documented Endpoint object in, bodies out."""

from __future__ import annotations

import pytest

from reconciler.backends.runpod_rest.endpoints import (
    create_body,
    data_plane_base,
    parse_endpoint,
    parse_endpoints,
    parse_health,
    update_body,
)
from reconciler.errors import ApiResponseError
from reconciler.model import CpuFlavor, EndpointMarkers, EndpointSpec, Flashboot

# runpod-serverless.md §1.2, RunPod's own example
EXAMPLE = {
    "id": "4m7x2k9q",
    "name": "image-generator",
    "type": "QUEUE",
    "image": "runpod/pytorch:1.0.2-cu1281-torch280-ubuntu2404",
    "args": "",
    "disk": 20,
    "ports": ["8000/http"],
    "env": {"MODEL_NAME": "sdxl"},
    "registry": None,
    "gpu": {"pools": ["ADA_24"], "count": 1, "allowedCudaVersions": [], "minCudaVersion": None},
    "workers": {"min": 0, "max": 5, "idleTimeout": 5},
    "scaling": {"type": "QUEUE_DELAY", "queueDelay": 4},
    "dataCenterIds": ["US-KS-2"],
    "networkVolumes": ["2q9m7x4c"],
    "timeout": 300000,
    "flashboot": "OFF",
    "createdAt": "2026-06-01T12:00:00Z",
}


def test_runpods_example_endpoint_reads_in_podctls_units() -> None:
    e = parse_endpoint(EXAMPLE)
    assert (e.endpoint_id, e.name, e.image) == ("4m7x2k9q", "image-generator", EXAMPLE["image"])
    assert e.gpu_pools == ("ADA_24",) and e.gpu_count == 1 and not e.is_cpu
    assert (e.workers_min, e.workers_max, e.idle_timeout_s) == (0, 5, 5)
    assert e.queue_delay_s == 4.0 and e.request_count is None
    assert e.execution_timeout_s == 300.0 and e.flashboot == "OFF"
    assert e.data_centers == ("US-KS-2",) and e.network_volumes == ("2q9m7x4c",)
    assert e.markers is None  # not podctl's
    assert "sdxl" not in repr(e)  # env values may be secrets: never in a repr


def test_markers_and_request_count_scaling_and_cpu() -> None:
    data = {
        **EXAMPLE,
        "gpu": None,
        "cpu": [{"id": "cpu3c", "vcpuCount": 4, "memory": 16}],
        "scaling": {"type": "REQUEST_COUNT", "requestCount": 3},
        "workers": {"min": 0, "max": 2},
        "env": {"PODCTL_STACK": "demo", "PODCTL_ENDPOINT": "scorer"},
    }
    e = parse_endpoint(data)
    assert e.cpu == (CpuFlavor("cpu3c", 4),) and e.is_cpu
    assert e.request_count == 3 and e.queue_delay_s is None and e.idle_timeout_s is None
    assert e.markers == EndpointMarkers("demo", "scorer")


@pytest.mark.parametrize("bad", [None, [], {"name": "x"}, {"id": ""}, {"id": 7}])
def test_an_answer_that_is_no_endpoint_is_refused(bad: object) -> None:
    with pytest.raises(ApiResponseError, match="not an endpoint"):
        parse_endpoint(bad)


def test_a_listing_without_endpoints_is_refused() -> None:
    with pytest.raises(ApiResponseError, match="no `endpoints` list"):
        parse_endpoints({"pods": []})
    assert parse_endpoints({"endpoints": [EXAMPLE]})["4m7x2k9q"].name == "image-generator"


def test_health_counts() -> None:
    h = parse_health(
        {
            "jobs": {"completed": 1, "failed": 5, "inProgress": 0, "inQueue": 2, "retried": 0},
            "workers": {"idle": 0, "running": 1},
        }
    )
    assert (h.jobs_in_queue, h.jobs_in_progress, h.jobs_failed, h.workers_running) == (2, 0, 5, 1)
    assert parse_health("nonsense").jobs_in_queue == 0


def test_every_field_is_sent_on_create_and_type_never_on_update() -> None:
    spec = EndpointSpec(name="scorer", image="a:1", gpu_pools=("ADA_24",), flashboot=Flashboot.ON)
    body = create_body("demo-scorer", spec, {"PODCTL_STACK": "demo"})
    assert set(body) == {
        "name", "type", "image", "args", "disk", "ports", "env", "registry", "gpu",
        "workers", "scaling", "timeout", "flashboot", "dataCenterIds", "networkVolumes",
    }  # fmt: skip
    assert body["timeout"] == 600_000 and body["flashboot"] == "FLASHBOOT"
    assert body["gpu"] == {
        "pools": ["ADA_24"],
        "count": 1,
        "excludedTypes": [],  # with pools, always: pools alone would clear the exclusions
        "allowedCudaVersions": [],
    }
    update = update_body("demo-scorer", spec, {}, container=False)
    assert "type" not in update and "image" not in update and "env" not in update
    assert "image" in update_body("demo-scorer", spec, {}, container=True)
    counted = EndpointSpec(
        name="s", image="a:1", gpu_pools=("ADA_24",), idle_timeout_s=None, queue_delay_s=None,
        request_count=2,
    )  # fmt: skip
    assert create_body("d-s", counted, {})["workers"] == {"min": 0, "max": 3}  # no idleTimeout


def test_the_data_plane_is_runpods_ai_host_or_the_sandboxs_path() -> None:
    assert data_plane_base("https://api.runpod.io") == "https://api.runpod.ai/v2"
    assert data_plane_base("http://127.0.0.1:8123") == "http://127.0.0.1:8123/serverless/v2"
