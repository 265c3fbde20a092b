"""Fault injection: every fault has a test, and the dice are deterministic under a seed."""

from __future__ import annotations

import time

import httpx
import pytest

from reconciler.cli import run
from tests.sandbox.conftest import Sandbox
from tests.sandbox.test_api import GPU_TAKEN, NO_CAPACITY

Q = "{ myself { id } }"


def test_latency(sb: Sandbox):
    sb.faults({"latency_ms": 300})
    t0 = time.monotonic()
    sb.gql(Q)
    assert time.monotonic() - t0 >= 0.3


@pytest.mark.parametrize("kind,status", [("429", 429), ("500", 500), ("502", 502)])
def test_http_errors(sb: Sandbox, kind: str, status: int):
    sb.faults({"errors": {"kinds": [kind], "count": 1, "retry_after": 3}})
    resp = sb.post(Q)
    assert resp.status_code == status
    if kind == "429":
        assert resp.headers["retry-after"] == "3"
    if kind == "502":
        assert resp.headers["content-type"] == "text/html"
    assert sb.post(Q).status_code == 200  # only the next one failed


def test_connection_reset(sb: Sandbox):
    sb.faults({"errors": {"kinds": ["reset"], "count": 1}})
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        sb.post(Q)
    assert sb.post(Q).status_code == 200


def test_error_rate_is_deterministic_under_a_seed(sb: Sandbox):
    def sequence() -> list[int]:
        sb.faults({"seed": 42, "errors": {"rate": 0.5, "kinds": ["429", "500"]}})
        return [sb.post(Q).status_code for _ in range(16)]

    first = sequence()
    assert first == sequence()
    assert {200, 429, 500} <= set(first)


def test_capacity_exhaustion_for_a_gpu_type(sb: Sandbox):
    sb.faults({"exhaust": ["NVIDIA L4"]})
    resp = sb.post(
        'mutation { podFindAndDeployOnDemand(input: {gpuTypeId: "NVIDIA L4", imageName: "x"})'
        " { id } }"
    )
    assert resp.status_code == 200
    assert resp.json()["errors"][0]["message"] == NO_CAPACITY
    price = sb.gql(
        '{ gpuTypes(input: {id: "NVIDIA L4"}) { lowestPrice(input: {gpuCount: 1})'
        " { stockStatus availableGpuCounts } } }"
    )
    assert price["gpuTypes"][0]["lowestPrice"] == {"stockStatus": None, "availableGpuCounts": []}
    sb.create(gpuTypeId="NVIDIA A40")  # other types still have capacity
    sb.faults({"restore": ["NVIDIA L4"]})
    sb.create(gpuTypeId="NVIDIA L4")


def test_gpu_taken_on_resume(sb: Sandbox):
    pod = sb.create()
    sb.gql(f'mutation {{ podStop(input: {{podId: "{pod["id"]}"}}) {{ id }} }}')
    sb.faults({"gpu_taken": [pod["id"]]})
    resume = f'mutation {{ podResume(input: {{podId: "{pod["id"]}", gpuCount: 1}}) {{ id }} }}'
    assert sb.post(resume).json()["errors"][0]["message"] == GPU_TAKEN
    sb.faults({"gpu_free": [pod["id"]]})
    sb.gql(resume)


def test_spot_preemption(sb: Sandbox):
    data = sb.gql(
        'mutation { podRentInterruptable(input: {gpuTypeId: "NVIDIA L4", imageName: "x",'
        " bidPerGpu: 0.5}) { id } }"
    )
    pod_id = data["podRentInterruptable"]["id"]
    sb.faults({"preempt": [pod_id]})
    pod = sb.pod(pod_id)
    assert pod is not None and pod["desiredStatus"] == "EXITED" and pod["runtime"] is None


def test_lost_response_applies_the_mutation(sb: Sandbox):
    sb.faults({"lose_responses": 1})
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        sb.post(
            'mutation { podFindAndDeployOnDemand(input: {gpuTypeId: "NVIDIA L4",'
            ' imageName: "x", name: "lost"}) { id } }'
        )
    pods = sb.gql("{ myself { pods { name desiredStatus } } }")["myself"]["pods"]
    assert pods == [{"name": "lost", "desiredStatus": "RUNNING"}]
    sb.gql(Q)  # queries are not affected, and the fault was used up
    sb.create()


def test_fault_cli(sb: Sandbox, capsys):
    base = ["sandbox", "fault"]
    opt = ["--data-dir", str(sb.data_dir)]
    assert run([*base, "latency", "5", *opt]) == 0
    assert run([*base, "errors", "--kind", "429", "--count", "1", *opt]) == 0
    assert run([*base, "exhaust", "NVIDIA L4", *opt]) == 0
    assert run([*base, "lose-response", "2", *opt]) == 0
    assert run([*base, "stock", "NVIDIA A40", "3", "--cloud", "SECURE", *opt]) == 0
    assert run([*base, "show", *opt]) == 0
    out = capsys.readouterr().out
    assert '"latency_ms": 5.0' in out and '"NVIDIA L4"' in out and '"lose_responses": 2' in out
    assert sb.post(Q).status_code == 429
    price = sb.gql(
        '{ gpuTypes(input: {id: "NVIDIA A40"}) { lowestPrice(input: {gpuCount: 1,'
        " secureCloud: true}) { availableGpuCounts } } }"
    )
    assert price["gpuTypes"][0]["lowestPrice"]["availableGpuCounts"] == [1, 2]
    assert run([*base, "clear", *opt]) == 0
    assert sb.post(Q).status_code == 200
    assert run([*base, "preempt", "nosuchpod", *opt]) == 1
    assert "no such pods to preempt" in capsys.readouterr().err
