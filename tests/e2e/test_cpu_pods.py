"""CPU pods (`cpu: {flavor, vcpu}`) through the CLI on the sandbox: REST v2 only."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Podctl

CPU_SPEC = """\
version: 1
stack: e2e
pods:
  web:
    image: img:1
    cpu: {{flavor: {flavor}, vcpu: {vcpu}}}
    ports: [22/tcp]
    env:
      MODE: "a"
"""


def _rest(podctl: Podctl, method: str, path: str, body: Any = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {podctl.sb.key}"}
    return httpx.request(method, podctl.sb.url + path, json=body, headers=headers, timeout=10)


def _pods(podctl: Podctl) -> list[dict[str, Any]]:
    pods: list[dict[str, Any]] = _rest(podctl, "GET", "/v2/pods").json()["pods"]
    return pods


@pytest.mark.both_apis
def test_a_cpu_pod_is_applied_planned_empty_and_destroyed(podctl: Podctl) -> None:
    podctl.write(text=CPU_SPEC.format(flavor="cpu5c", vcpu=4))
    plan = podctl("plan", "-f", str(podctl.spec))
    assert plan.code == 0, plan.out + plan.err
    assert '+ cpu.flavor: "cpu5c"' in plan.out and "+ cpu.vcpu: 4" in plan.out, plan.out
    assert "gpu.type" not in plan.out
    # its chain of one: the flavor on secure cloud; REST v2's catalog prices it per vCPU
    # (4 x $0.03), GraphQL's cpuFlavors gives no price without a data center
    price = "$0.12/h" if podctl.api == "rest" else "$?/h"
    assert f"    cpu: cpu5c (secure {price})" in plan.out, plan.out
    r = podctl("apply", "-y", "-f", str(podctl.spec))
    assert r.code == 0, r.out + r.err
    (pod,) = _pods(podctl)
    assert pod["cpu"] == {"id": "cpu5c", "vcpuCount": 4, "memory": 8} and "gpu" not in pod
    assert pod["mounts"] == {} and pod["cloud"] == "SECURE"  # no volume disk on a CPU pod
    assert pod["env"]["MODE"] == "a" and pod["env"]["PODCTL_POD"] == "web"
    record = podctl.recorded()["pods"]["web"]
    assert record["pod_id"] == pod["id"] and record["gpu_type_id"] == "cpu5c"
    again = podctl("plan", "--detailed-exitcode", "-f", str(podctl.spec))
    assert again.code == 0, again.out + again.err  # nothing to do
    twice = podctl("apply", "-y", "-f", str(podctl.spec))
    assert twice.code == 0 and [p["id"] for p in _pods(podctl)] == [pod["id"]]
    # the other API sees the same pod and plans nothing for it either
    other = "graphql" if podctl.api == "rest" else "rest"
    switched = podctl("--api", other, "plan", "--detailed-exitcode", "-f", str(podctl.spec))
    assert switched.code == 0 and "No changes" in switched.out, switched.out + switched.err
    status = podctl("--api", "rest", "status", "-f", str(podctl.spec))
    assert "4 vCPU cpu5c" in status.out and "$0.12/h" in status.out, status.out
    # another vCPU count cannot be patched on RunPod: a replacement
    podctl.write(text=CPU_SPEC.format(flavor="cpu5c", vcpu=8))
    moved = podctl("--api", "rest", "plan", "--detailed-exitcode", "-f", str(podctl.spec))
    assert moved.code == 2 and "cpu.vcpu" in moved.out and "replace" in moved.out, moved.out
    gone = podctl("destroy", "-y", "-f", str(podctl.spec))
    assert gone.code == 0, gone.out + gone.err
    assert _pods(podctl) == []


def test_graphqls_deploy_cpu_pod_takes_the_flavors_memory_in_its_instance_id(
    podctl: Podctl,
) -> None:
    for instance, words in (
        ("cpu5c-4-16", "no longer any instances"),  # cpu5c has 2 GB per vCPU: 8, not 16
        ("cpu5c-3-6", "no longer any instances"),
        ("cpu5c", "Invalid instanceId"),
    ):
        answer = podctl.sb.post(
            'mutation($i: String!) { deployCpuPod(input: {instanceId: $i, imageName: "x"}) '
            "{ id } }",
            variables={"i": instance},
        )
        assert words in answer.text, (instance, answer.text)
    assert _pods(podctl) == []


def test_an_unknown_flavor_or_vcpu_count_is_a_plan_error(podctl: Podctl) -> None:
    podctl.write(text=CPU_SPEC.format(flavor="cpu9z", vcpu=4))
    r = podctl("--api", "rest", "plan", "-f", str(podctl.spec))
    assert r.code == 1, r.out + r.err
    assert "unknown CPU flavor 'cpu9z' in pods.web.cpu.flavor; RunPod lists cpu3c" in r.out + r.err
    podctl.write(text=CPU_SPEC.format(flavor="cpu3c", vcpu=64))
    r = podctl("--api", "rest", "plan", "-f", str(podctl.spec))
    assert r.code == 1, r.out + r.err
    assert "pods.web.cpu.vcpu is 64; the flavor cpu3c comes with 2 to 32 vCPUs" in r.out + r.err


def test_the_sandbox_serves_the_cpu_catalog_and_refuses_what_runpod_refuses(
    podctl: Podctl,
) -> None:
    listed = _rest(podctl, "GET", "/v2/catalog/cpus?include=AVAILABILITY&product=POD").json()
    cpu5c = next(c for c in listed["cpus"] if c["id"] == "cpu5c")
    assert cpu5c["vcpu"] == {"min": 2, "max": 32} and cpu5c["price"]["securePerVcpu"] == 0.03
    assert cpu5c["availability"] == "HIGH"
    assert _rest(podctl, "GET", "/v2/catalog/cpus?include=AVAILABILITY").status_code == 400
    base = {"name": "c", "image": "img:1", "cpu": {"id": "cpu5c", "vcpuCount": 4}}
    for body, status, words in (
        ({**base, "cpu": {"id": "cpu5c", "vcpuCount": 3}}, 400, "power of two"),
        ({**base, "cpu": {"id": "cpu5c", "vcpuCount": 4, "memory": 8}}, 422, "'memory'"),
        ({**base, "gpu": {"id": "NVIDIA RTX A4000"}}, 400, "exactly one of gpu or cpu"),
        ({**base, "mounts": {"persistent": {"size": 20, "path": "/w"}}}, 400, "CPU pods"),
        ({**base, "cloud": "COMMUNITY"}, 400, "SECURE cloud only"),
    ):
        answer = _rest(podctl, "POST", "/v2/pods", body)
        assert answer.status_code == status, (body, answer.text)
        assert words in json.dumps(answer.json()), answer.text
    assert _pods(podctl) == []
