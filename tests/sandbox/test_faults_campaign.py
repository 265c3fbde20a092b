"""The faults the fault campaigns need, each seen through podctl's own RunPodClient.

Lost responses on create, stop, terminate and resume; 429/5xx/resets at a probability under a
seed; garbage and wrong-typed answers; capacity per GPU type and per cloud.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx
import pytest

from reconciler.backends.runpod_graphql import RetryPolicy, RunPodClient
from reconciler.errors import (
    ApiResponseError,
    CapacityError,
    ResumeCapacityError,
    TransientApiError,
)
from reconciler.model import CloudType, PodStatus
from reconciler.podops import PodCreate
from tests.sandbox.conftest import Sandbox
from tests.sandbox.test_api import NO_CAPACITY

T = TypeVar("T")
Q = "{ myself { id } }"
GPU = "NVIDIA RTX A4000"


def client_run(
    sb: Sandbox, call: Callable[[RunPodClient], Awaitable[T]], sleeps: list[float] | None = None
) -> T:
    """Run `call` with a RunPodClient on the sandbox; backoff delays are recorded, not slept."""

    async def record(delay: float) -> None:
        if sleeps is not None:
            sleeps.append(delay)

    async def main() -> T:
        async with RunPodClient(
            sb.key,
            api_url=sb.url,
            retry=RetryPolicy(max_attempts=6, base_delay=0.01, max_delay=0.05),
            sleep=record,
        ) as client:
            return await call(client)

    return asyncio.run(main())


def request(name: str = "t", **overrides: Any) -> PodCreate:
    fields: dict[str, Any] = {
        "name": name,
        "image": "img",
        "gpu_type_id": GPU,
        "gpu_count": 1,
        "cloud": CloudType.SECURE,
        "env": {"PODCTL_UID": f"u-{name}"},
        "ports": [],
        "container_disk_gb": 10,
        "volume_gb": 0,
        "volume_mount": "/workspace",
    }
    fields.update(overrides)
    return PodCreate(**fields)


def pods(sb: Sandbox) -> dict[str, str]:
    """name -> desiredStatus of every pod."""
    data = sb.gql("{ myself { pods { name desiredStatus } } }")
    return {p["name"]: p["desiredStatus"] for p in data["myself"]["pods"]}


def stop(sb: Sandbox, pod_id: str) -> None:
    sb.gql(f'mutation {{ podStop(input: {{podId: "{pod_id}"}}) {{ id }} }}')


# --- lost responses ---------------------------------------------------------------------------


def test_lost_create_response_is_not_retried_and_the_pod_exists(sb: Sandbox):
    sb.faults({"lose_responses": {"count": 1, "operations": ["create"]}})
    with pytest.raises(TransientApiError) as caught:
        client_run(sb, lambda c: c.create_pod(request("lost")))
    assert caught.value.maybe_processed is True
    assert caught.value.operation == "CreatePod"
    assert pods(sb) == {"lost": "RUNNING"}  # applied once, and only once


def test_lost_stop_response_is_retried_and_the_pod_is_stopped(sb: Sandbox):
    pod_id = sb.create(name="s")["id"]
    sb.faults({"lose_responses": {"count": 1, "operations": ["stop"]}})
    status = client_run(sb, lambda c: c.stop_pod(pod_id))
    assert status is PodStatus.EXITED
    assert pods(sb) == {"s": "EXITED"}


def test_lost_terminate_response_then_retry_finds_it_gone(sb: Sandbox):
    pod_id = sb.create(name="x")["id"]
    sb.faults({"lose_responses": {"count": 1, "operations": ["terminate"]}})
    requests: list[float] = []
    went_now = client_run(sb, lambda c: c.terminate_pod(pod_id), requests)
    assert went_now is False  # the retry was told "pod not found to terminate"
    assert len(requests) == 1  # one backoff: two requests in all
    assert pods(sb) == {}


def test_lost_resume_response_leaves_the_pod_running(sb: Sandbox):
    pod_id = sb.create(name="r")["id"]
    stop(sb, pod_id)
    sb.faults({"lose_responses": {"count": 1, "operations": ["resume"]}})
    with pytest.raises(TransientApiError) as caught:
        client_run(sb, lambda c: c.resume_pod(pod_id, 1))
    assert caught.value.maybe_processed is True
    assert pods(sb) == {"r": "RUNNING"}


def test_lost_responses_hit_only_the_operations_named(sb: Sandbox):
    sb.faults({"lose_responses": {"count": 1, "operations": ["terminate"]}})
    pod_id = sb.create(name="kept")["id"]  # a create answers normally
    stop(sb, pod_id)  # so does a stop
    resp = sb.post(Q)
    assert resp.status_code == 200
    described = sb.faults({})
    assert described["lose"] == {"count": 1, "probability": 1.0, "operations": ["podTerminate"]}


def test_failed_mutations_do_not_use_up_a_lost_response(sb: Sandbox):
    sb.faults({"exhaust": ["NVIDIA L4"], "lose_responses": 1})
    resp = sb.post(
        'mutation { podFindAndDeployOnDemand(input: {gpuTypeId: "NVIDIA L4", imageName: "x"})'
        " { id } }"
    )
    assert resp.json()["errors"][0]["message"] == NO_CAPACITY
    assert sb.faults({})["lose_responses"] == 1
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        sb.create(name="second")
    assert pods(sb) == {"second": "RUNNING"}


def test_lost_responses_at_a_probability_are_deterministic_under_a_seed(sb: Sandbox):
    def campaign() -> list[bool]:
        sb.faults({"seed": 11, "lose_responses": {"count": None, "probability": 0.5}})
        lost = []
        for i in range(12):
            try:
                sb.create(name=f"p{i}")
                lost.append(False)
            except (httpx.RemoteProtocolError, httpx.ReadError):
                lost.append(True)
        return lost

    first = campaign()
    assert True in first and False in first
    assert len(pods(sb)) == 12  # every create was applied, answered or not
    assert campaign() == first


# --- errors at a probability ------------------------------------------------------------------


def test_thirty_percent_of_requests_fail_under_a_seed(sb: Sandbox):
    def statuses() -> list[int]:
        sb.faults({"seed": 5, "errors": {"probability": 0.3, "kinds": ["429", "500", "502"]}})
        headers = {"Authorization": f"Bearer {sb.key}"}
        with httpx.Client(base_url=sb.url, headers=headers, timeout=10) as http:
            return [http.post("/graphql", json={"query": Q}).status_code for _ in range(200)]

    first = statuses()
    failed = sum(1 for s in first if s != 200)
    assert 40 <= failed <= 80  # 30 % of 200 is 60
    assert {200, 429, 500, 502} == set(first)
    assert statuses() == first


def test_the_client_converges_through_thirty_percent_errors(sb: Sandbox):
    sb.faults({"seed": 1, "errors": {"probability": 0.3, "kinds": ["429", "500", "502", "reset"]}})
    sleeps: list[float] = []

    async def twenty_lists(client: RunPodClient) -> int:
        for _ in range(20):
            await client.list_pods()
        return client.request_count

    sent = client_run(sb, twenty_lists, sleeps)
    assert sent > 20 and len(sleeps) == sent - 20  # every failure was retried, and only those


def test_429_retry_after_is_honoured_by_the_client(sb: Sandbox):
    sb.faults({"errors": {"kinds": ["429"], "count": 2, "retry_after": 3}})
    sleeps: list[float] = []
    state = client_run(sb, lambda c: c.list_pods(), sleeps)
    assert state.pods == {}
    assert sleeps == [3.0, 3.0]


@pytest.mark.parametrize("kind", ["500", "502", "reset"])
def test_a_server_error_on_create_is_retried_only_when_surely_not_processed(sb: Sandbox, kind):
    sb.faults({"errors": {"kinds": [kind], "count": 1}})
    if kind == "502":  # the gateway answered: the request never reached RunPod
        pod = client_run(sb, lambda c: c.create_pod(request("gw")))
        assert pod.name == "gw"
    else:
        with pytest.raises(TransientApiError) as caught:
            client_run(sb, lambda c: c.create_pod(request("gw")))
        assert caught.value.maybe_processed is True
    assert len(pods(sb)) == (1 if kind == "502" else 0)  # error kinds never apply the request


# --- garbage answers --------------------------------------------------------------------------


def test_garbage_body_is_a_response_error(sb: Sandbox):
    sb.faults({"errors": {"kinds": ["garbage"], "count": 1}})
    resp = sb.post(Q)
    assert resp.status_code == 200
    with pytest.raises(ValueError):
        resp.json()
    sb.faults({"errors": {"kinds": ["garbage"], "count": 1}})
    with pytest.raises(
        ApiResponseError, match=r"^RunPod ListPods: the answer is not a JSON object$"
    ):
        client_run(sb, lambda c: c.list_pods())
    assert sb.post(Q).status_code == 200


def test_wrong_types_apply_the_mutation_and_break_the_answer(sb: Sandbox):
    sb.faults({"seed": 2, "errors": {"kinds": ["wrong-types"], "count": 1}})
    with pytest.raises(ApiResponseError) as caught:
        client_run(sb, lambda c: c.create_pod(request("odd")))
    assert str(caught.value).startswith("RunPod answer: data.podFindAndDeployOnDemand")
    assert pods(sb) == {"odd": "RUNNING"}


def test_wrong_types_change_a_query_answer_deterministically(sb: Sandbox):
    sb.create(name="a")
    document = "{ myself { pods { id name gpuCount costPerHr desiredStatus } } }"
    clean = sb.gql(document)

    def mangled() -> Any:
        sb.faults({"seed": 9, "errors": {"kinds": ["wrong-types"], "count": 1}})
        resp = sb.post(document)
        assert resp.status_code == 200
        return resp.json()["data"]

    first = mangled()
    assert first != clean
    assert mangled() == first


# --- spot preemption and resume --------------------------------------------------------------


def test_preempted_spot_pod_then_gpu_taken_then_bid_resume(sb: Sandbox):
    spot = client_run(sb, lambda c: c.create_pod(request("spot", bid_per_gpu=0.5)))
    assert spot.interruptible and spot.desired_status is PodStatus.RUNNING
    sb.faults({"preempt": [spot.pod_id], "gpu_taken": [spot.pod_id]})
    seen = client_run(sb, lambda c: c.get_pod(spot.pod_id))
    assert seen is not None and seen.desired_status is PodStatus.EXITED
    assert seen.ssh is None and not seen.runtime_ready
    with pytest.raises(ResumeCapacityError, match="not enough free GPUs on the host machine"):
        client_run(sb, lambda c: c.bid_resume_pod(spot.pod_id, 0.5, 1))
    sb.faults({"gpu_free": [spot.pod_id]})
    resumed = client_run(sb, lambda c: c.bid_resume_pod(spot.pod_id, 0.5, 1))
    assert resumed.desired_status is PodStatus.RUNNING and resumed.interruptible


# --- capacity ---------------------------------------------------------------------------------


def test_capacity_exhausted_per_cloud(sb: Sandbox):
    sb.faults({"exhaust": [{"cloud": "SECURE"}]})
    with pytest.raises(CapacityError):
        client_run(sb, lambda c: c.create_pod(request("s", cloud=CloudType.SECURE)))
    pod = client_run(sb, lambda c: c.create_pod(request("c", cloud=CloudType.COMMUNITY)))
    assert pod.cloud is CloudType.COMMUNITY
    pod = client_run(sb, lambda c: c.create_pod(request("any", cloud=CloudType.ALL)))
    assert pod.cloud is CloudType.COMMUNITY  # ALL lands where there is capacity
    offers = client_run(sb, lambda c: c.gpu_prices([GPU], secure=True))
    assert offers[GPU].available_gpu_counts == ()
    sb.faults({"restore": [{"cloud": "SECURE"}]})
    assert client_run(sb, lambda c: c.create_pod(request("s"))).cloud is CloudType.SECURE


def test_capacity_exhausted_for_one_gpu_type_in_one_cloud(sb: Sandbox):
    described = sb.faults({"exhaust": [{"gpu": GPU, "cloud": "COMMUNITY"}]})
    assert described["exhausted"] == [f"{GPU}/COMMUNITY"]
    with pytest.raises(CapacityError):
        client_run(sb, lambda c: c.create_pod(request("c", cloud=CloudType.COMMUNITY)))
    other = client_run(
        sb,
        lambda c: c.create_pod(request("l4", gpu_type_id="NVIDIA L4", cloud=CloudType.COMMUNITY)),
    )
    assert other.gpu_type_id == "NVIDIA L4"
    assert client_run(sb, lambda c: c.create_pod(request("s"))).cloud is CloudType.SECURE


@pytest.mark.parametrize(
    "spec,message",
    [
        ({"exhaust": [{"cloud": "MOON"}]}, "capacity to exhaust must be a GPU type"),
        ({"exhaust": ["NVIDIA Nope"]}, "unknown GPU types: ['NVIDIA Nope']"),
        ({"errors": {"probability": 1.5}}, "error probability must be between 0 and 1"),
        ({"errors": {"kinds": ["teapot"]}}, "error kinds must be among"),
        ({"lose_responses": {"operations": ["reboot"]}}, "unknown operation 'reboot'"),
        ({"lose_responses": "lots"}, "lose_responses must be a count or an object"),
        ({"latency_ms": 50, "errors": {"kinds": ["teapot"]}}, "error kinds must be among"),
        ({"seed": 4, "stock": {GPU: {"MOON": 2}}}, "unknown cloud 'MOON'"),
        ({"exhaust": [GPU], "preempt": ["nosuchpod"]}, "no such pods to preempt"),
    ],
)
def test_bad_fault_requests_are_refused_with_a_reason(sb: Sandbox, spec, message):
    before = sb.faults({})
    resp = httpx.post(
        sb.url + "/_sandbox/faults",
        json=spec,
        headers={"Authorization": f"Bearer {sb.key}"},
        timeout=10,
    )
    assert resp.status_code == 400
    assert message in resp.json()["errors"][0]["message"]
    assert sb.faults({}) == before  # a bad request changes nothing


def test_fault_cli_probability_cloud_and_lose_on(sb: Sandbox, capsys):
    from reconciler.cli import run

    opt = ["--data-dir", str(sb.data_dir)]
    base = ["sandbox", "fault"]
    assert run([*base, "errors", "--probability", "0.3", "--kind", "garbage", *opt]) == 0
    assert run([*base, "exhaust", "--cloud", "COMMUNITY", *opt]) == 0
    assert run([*base, "exhaust", GPU, "--cloud", "SECURE", *opt]) == 0
    assert run([*base, "lose-response", "--on", "stop", "--on", "terminate", *opt]) == 0
    described = sb.faults({})
    assert described["errors"]["probability"] == 0.3
    assert described["errors"]["kinds"] == ["garbage"]
    assert described["exhausted"] == ["*/COMMUNITY", f"{GPU}/SECURE"]
    assert described["lose"]["operations"] == ["podStop", "podTerminate"]
    assert run([*base, "exhaust", *opt]) == 2
    assert "Name a GPU_TYPE, a --cloud, or both." in capsys.readouterr().err


def test_fault_cli_seed_makes_a_campaign_repeatable(sb: Sandbox):
    from reconciler.cli import run

    opt = ["--data-dir", str(sb.data_dir)]
    args = ["sandbox", "fault", "errors", "--probability", "0.5", "--seed", "3", *opt]

    def statuses() -> list[int]:
        assert run(args) == 0
        headers = {"Authorization": f"Bearer {sb.key}"}
        with httpx.Client(base_url=sb.url, headers=headers, timeout=10) as http:
            return [http.post("/graphql", json={"query": Q}).status_code for _ in range(20)]

    first = statuses()
    assert set(first) == {200, 500}
    assert statuses() == first
    assert sb.faults({})["seed"] == 3
