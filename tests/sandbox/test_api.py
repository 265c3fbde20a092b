"""The GraphQL API: the official SDK, runpodctl-style documents, auth, validation, rules."""

from __future__ import annotations

import time
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from reconciler.sandbox import control
from tests.sandbox.conftest import Sandbox

NO_CAPACITY = (
    "There are no longer any instances available with the requested specifications. "
    "Please refresh and try again."
)
GPU_TAKEN = "There are not enough free GPUs on the host machine to start this pod."


def _runpod(sb: Sandbox, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    monkeypatch.setenv("HOME", str(tmp_path))  # never read a real ~/.runpod/config.toml
    monkeypatch.setenv("RUNPOD_API_BASE_URL", sb.url)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import runpod
    monkeypatch.setattr(runpod, "api_key", sb.key)
    return runpod


def test_official_sdk_lifecycle(sb: Sandbox, monkeypatch, tmp_path):
    runpod = _runpod(sb, monkeypatch, tmp_path)
    gpus = runpod.get_gpus()
    assert {"id": "NVIDIA RTX A4000", "displayName": "RTX A4000", "memoryInGb": 16} in gpus
    gpu = runpod.get_gpu("NVIDIA RTX A4000")
    assert gpu["lowestPrice"]["uninterruptablePrice"] > 0
    with pytest.raises(ValueError, match="No GPU found"):
        runpod.get_gpu("NVIDIA Nope")

    pod = runpod.create_pod(
        name="sdk",
        image_name="runpod/pytorch:2.1",
        gpu_type_id="NVIDIA RTX A4000",
        cloud_type="SECURE",
        ports="22/tcp, 8888/http",
        volume_in_gb=5,
        env={"PODCTL": "1"},
    )
    pod_id = pod["id"]
    assert len(pod_id) == 14 and pod_id.isalnum() and pod_id.lower() == pod_id
    assert pod["env"] == ["PODCTL=1"]
    assert pod["machine"]["podHostId"].startswith(pod_id + "-")

    listed = runpod.get_pods()
    assert [p["id"] for p in listed] == [pod_id]
    got = runpod.get_pod(pod_id)
    assert got["desiredStatus"] == "RUNNING"
    assert got["costPerHr"] == pytest.approx(0.32)
    assert got["machine"]["gpuDisplayName"] == "RTX A4000"
    ports = {p["privatePort"]: p for p in got["runtime"]["ports"]}
    assert ports[22]["isIpPublic"] and ports[22]["ip"] == "127.0.0.1"
    assert ports[8888]["type"] == "http" and not ports[8888]["isIpPublic"]

    assert runpod.stop_pod(pod_id) == {"id": pod_id, "desiredStatus": "EXITED"}
    stopped = runpod.get_pod(pod_id)
    assert stopped["desiredStatus"] == "EXITED" and stopped["runtime"] is None

    resumed = runpod.resume_pod(pod_id, gpu_count=1)
    assert resumed["desiredStatus"] == "RUNNING"
    again = {p["privatePort"]: p for p in runpod.get_pod(pod_id)["runtime"]["ports"]}
    assert again[22]["publicPort"] != ports[22]["publicPort"] or again[8888] != ports[8888]

    assert runpod.terminate_pod(pod_id) is None
    assert runpod.get_pods() == []
    assert runpod.get_pod(pod_id) is None


def test_sdk_cpu_pod(sb: Sandbox, monkeypatch, tmp_path):
    runpod = _runpod(sb, monkeypatch, tmp_path)
    pod = runpod.create_pod(name="cpu", image_name="ubuntu")
    assert runpod.get_pod(pod["id"])["gpuCount"] == 0


RUNPODCTL_PODS = """
query myPods {
  myself {
    pods {
      id name desiredStatus costPerHr env
      runtime { ports { ip isIpPublic privatePort publicPort PortType: type } }
      machine { gpuDisplayName location }
    }
  }
}
"""


def test_runpodctl_style_variables_and_alias(sb: Sandbox):
    data = sb.gql(
        """mutation createPod($input: PodFindAndDeployOnDemandInput!) {
          podFindAndDeployOnDemand(input: $input) {
            id name imageName desiredStatus costPerHr containerDiskInGb volumeInGb
            volumeMountPath gpuCount memoryInGb vcpuCount ports lastStatusChange env
            machine { gpuDisplayName location }
          }
        }""",
        {
            "input": {
                "cloudType": "COMMUNITY",
                "gpuCount": 2,
                "gpuTypeId": "NVIDIA GeForce RTX 4090",
                "imageName": "img",
                "name": "ctl",
                "ports": "22/tcp",
                "containerDiskInGb": 20,
                "env": [{"key": "A", "value": "b=c"}],
                "startSsh": True,
            }
        },
    )
    pod = data["podFindAndDeployOnDemand"]
    assert pod["desiredStatus"] == "RUNNING"
    assert pod["costPerHr"] == pytest.approx(0.68)
    assert pod["env"] == ["A=b=c"]
    assert pod["volumeMountPath"] == "/workspace"
    assert pod["lastStatusChange"].startswith("Rented by User: ")
    listed = sb.gql(RUNPODCTL_PODS)["myself"]["pods"]
    assert listed[0]["runtime"]["ports"][0]["PortType"] == "tcp"
    assert listed[0]["machine"]["location"]
    resumed = sb.gql(
        "mutation podStop($podId: String!) { podStop(input: {podId: $podId}) { id } }",
        {"podId": pod["id"]},
    )
    assert resumed["podStop"]["id"] == pod["id"]
    data = sb.gql(
        "mutation podResume($podId: String!) { podResume(input: {podId: $podId})"
        " { id costPerHr desiredStatus lastStatusChange } }",
        {"podId": pod["id"]},
    )
    assert data["podResume"]["desiredStatus"] == "RUNNING"


def test_fragments_typename_and_enum_literals(sb: Sandbox):
    data = sb.gql(
        """mutation { a: podFindAndDeployOnDemand(input: {cloudType: ALL, gpuTypeId: "NVIDIA L4",
             imageName: "x", dataCenterId: null}) { ...P } }
           fragment P on Pod { __typename id podType }"""
    )
    assert data["a"]["__typename"] == "Pod" and data["a"]["podType"] == "RESERVED"
    data = sb.gql(
        '{ gpuTypes(input: {id: "NVIDIA L4"}) { id lowestPrice(input: {gpuCount: 1,'
        " secureCloud: true}) { minimumBidPrice uninterruptablePrice stockStatus"
        " availableGpuCounts } } dataCenters { id } myself { id pubKey } }"
    )
    price = data["gpuTypes"][0]["lowestPrice"]
    assert price["stockStatus"] == "High" and price["availableGpuCounts"] == [1, 2, 4, 8]
    assert price["uninterruptablePrice"] == pytest.approx(0.43)
    assert sb.gql('{ gpuTypes(input: {id: "NVIDIA Nope"}) { id } }') == {"gpuTypes": []}


def test_unknown_field_is_400(sb: Sandbox):
    resp = sb.post("{ myself { pods { id nope } } }")
    assert resp.status_code == 400
    assert "Cannot query field 'nope'" in resp.json()["errors"][0]["message"]
    resp = sb.post(
        "mutation($i: PodFindAndDeployOnDemandInput!) { podFindAndDeployOnDemand(input: $i)"
        " { id } }",
        {"i": {"imageName": "x", "objectMounts": None}},
    )
    assert resp.status_code == 400
    resp = sb.post("mutation { podStop(input: {podId: 1, bogus: 2}) { id } }")
    assert resp.status_code == 400


def test_auth(sb: Sandbox):
    assert sb.post("{ myself { id } }", key="wrong").status_code == 401
    no_key = httpx.post(sb.url + "/graphql", json={"query": "{ myself { id } }"})
    assert no_key.status_code == 401
    legacy = httpx.post(
        sb.url + "/graphql", params={"api_key": sb.key}, json={"query": "{ myself { id } }"}
    )
    assert legacy.status_code == 200 and legacy.json()["data"]["myself"]["id"]


def test_business_errors_are_200_with_exact_messages(sb: Sandbox):
    pod = sb.create()
    sb.gql(f'mutation {{ podTerminate(input: {{podId: "{pod["id"]}"}}) }}')
    resp = sb.post(f'mutation {{ podTerminate(input: {{podId: "{pod["id"]}"}}) }}')
    assert resp.status_code == 200
    error = resp.json()["errors"][0]
    assert error["message"] == "pod not found to terminate"
    assert error["path"] == ["podTerminate"] and error["extensions"]["code"]


def test_capacity_is_consumed_and_released(sb: Sandbox):
    sb.faults({"stock": {"NVIDIA A40": 2}})
    pod = sb.create(gpuTypeId="NVIDIA A40", gpuCount=2, cloudType="SECURE")
    resp = sb.post(
        'mutation { podFindAndDeployOnDemand(input: {gpuTypeId: "NVIDIA A40", imageName: "x",'
        " cloudType: SECURE}) { id } }"
    )
    assert resp.json()["errors"][0]["message"] == NO_CAPACITY
    assert resp.json()["data"] == {"podFindAndDeployOnDemand": None}
    sb.gql(f'mutation {{ podStop(input: {{podId: "{pod["id"]}"}}) {{ id }} }}')
    other = sb.create(gpuTypeId="NVIDIA A40", gpuCount=1, cloudType="SECURE")
    resp = sb.post(f'mutation {{ podResume(input: {{podId: "{pod["id"]}"}}) {{ id }} }}')
    assert resp.json()["errors"][0]["message"] == GPU_TAKEN
    sb.gql(f'mutation {{ podTerminate(input: {{podId: "{other["id"]}"}}) }}')
    sb.gql(f'mutation {{ podResume(input: {{podId: "{pod["id"]}"}}) {{ id }} }}')


def test_spot_bids(sb: Sandbox):
    low = sb.post(
        'mutation { podRentInterruptable(input: {gpuTypeId: "NVIDIA L4", imageName: "x",'
        " bidPerGpu: 0.01, cloudType: SECURE}) { id } }"
    )
    assert "minimum bid" in low.json()["errors"][0]["message"]
    data = sb.gql(
        'mutation { podRentInterruptable(input: {gpuTypeId: "NVIDIA L4", imageName: "x",'
        " bidPerGpu: 0.3, gpuCount: 2, cloudType: SECURE}) { id podType costPerHr } }"
    )
    pod = data["podRentInterruptable"]
    assert pod["podType"] == "INTERRUPTABLE" and pod["costPerHr"] == pytest.approx(0.6)
    sb.gql(f'mutation {{ podStop(input: {{podId: "{pod["id"]}"}}) {{ id }} }}')
    low = sb.post(
        f'mutation {{ podBidResume(input: {{podId: "{pod["id"]}", bidPerGpu: 0.01,'
        " gpuCount: 2}) { id } }"
    )
    assert "minimum bid" in low.json()["errors"][0]["message"]
    data = sb.gql(
        "mutation Mutation($podId: String!, $bidPerGpu: Float!, $gpuCount: Int!) {"
        " podBidResume(input: {podId: $podId, bidPerGpu: $bidPerGpu, gpuCount: $gpuCount})"
        " { id costPerHr desiredStatus lastStatusChange } }",
        {"podId": pod["id"], "bidPerGpu": 0.25, "gpuCount": 2},
    )
    assert data["podBidResume"]["desiredStatus"] == "RUNNING"


def test_edit_resets_the_pod(sb: Sandbox):
    pod = sb.create(ports="22/tcp", env=[{"key": "A", "value": "1"}])
    before = sb.pod(pod["id"])
    assert before is not None
    data = sb.gql(
        "mutation($i: PodEditJobInput!) { podEditJob(input: $i) { id imageName env ports } }",
        {"i": {"podId": pod["id"], "imageName": "img:2", "ports": "22/tcp,8888/http"}},
    )
    assert data["podEditJob"]["imageName"] == "img:2"
    assert data["podEditJob"]["env"] == ["A=1"]  # null env keeps it
    after = sb.pod(pod["id"])
    assert after is not None and after["runtime"]["ports"] != before["runtime"]["ports"]


def test_start_delay_shows_runtime_null_first(sb: Sandbox):
    sb.faults({"start_delay": 0.5})
    pod = sb.create(ports="22/tcp")
    first = sb.pod(pod["id"])
    assert first is not None and first["desiredStatus"] == "RUNNING"
    assert first["runtime"] is None
    time.sleep(0.6)
    later = sb.pod(pod["id"])
    assert later is not None and later["runtime"]["ports"][0]["privatePort"] == 22


def test_terminate_after_and_stop_after_are_accepted_and_never_acted_on(sb: Sandbox):
    """As on RunPod (runpodctl PR #330): the pod keeps running, and billing, past both."""
    past = (datetime.now(UTC) - timedelta(seconds=5)).isoformat().replace("+00:00", "Z")
    pod = sb.create(terminateAfter=past, stopAfter=past)
    time.sleep(1)  # the sandbox's housekeeping ticks every 0.2 s: several went by
    after = sb.pod(pod["id"])
    assert after is not None and after["desiredStatus"] == "RUNNING"


def test_terminate_after_is_not_a_readable_pod_field(sb: Sandbox):
    pod = sb.create()
    for name in ("terminateAfter", "stopAfter"):
        resp = sb.post(f'{{ pod(input: {{podId: "{pod["id"]}"}}) {{ id {name} }} }}')
        assert resp.status_code == 400
        error = resp.json()["errors"][0]
        assert f"Cannot query field '{name}' on type 'Pod'" in error["message"]
        assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


def test_terminate_after_must_be_a_datetime(sb: Sandbox):
    resp = sb.post(
        "mutation($i: PodFindAndDeployOnDemandInput!) { podFindAndDeployOnDemand(input: $i)"
        " { id } }",
        {"i": {"imageName": "x", "gpuTypeId": "NVIDIA RTX A4000", "terminateAfter": "1h"}},
    )
    assert resp.status_code == 200
    assert "Invalid DateTime" in resp.json()["errors"][0]["message"]
    assert sb.gql("{ myself { pods { id } } }") == {"myself": {"pods": []}}


def test_directives_and_nested_fragments_on_pods(sb: Sandbox):
    sb.create(ports="22/tcp")
    data = sb.gql(
        """query($full: Boolean!) { myself { pods { ...Base
             runtime @include(if: $full) { ports { ...Port } }
             machine @skip(if: $full) { podHostId } } } }
           fragment Base on Pod { podId: id gpuCount }
           fragment Port on PodRuntimePorts { __typename privatePort kind: type }""",
        {"full": True},
    )
    pod = data["myself"]["pods"][0]
    assert set(pod) == {"podId", "gpuCount", "runtime"}
    assert pod["runtime"]["ports"] == [
        {"__typename": "PodRuntimePorts", "privatePort": 22, "kind": "tcp"}
    ]


def test_status_counts_requests_by_kind_and_field(sb: Sandbox):
    """Benchmarks and e2e tests read these counters to prove "one list query per plan"."""
    sb.gql("query { myself { pods { id } } }")
    pod = sb.create()
    sb.gql("mutation($id: String!) { podStop(input: {podId: $id}) { id } }", {"id": pod["id"]})
    counted = control.request(sb.info, "GET", "/_sandbox/status")["requests"]
    assert counted == {
        "total": 3,
        "queries": 1,
        "mutations": 2,
        "by_field": {"myself": 1, "podFindAndDeployOnDemand": 1, "podStop": 1},
    }
    control.reset(sb.data_dir)
    assert control.request(sb.info, "GET", "/_sandbox/status")["requests"]["total"] == 0
