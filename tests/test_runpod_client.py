"""RunPodClient at its boundary: the GraphQL it sends and the errors it maps, via MockTransport."""

from __future__ import annotations

import asyncio
import json
import traceback
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest

from reconciler.backends.retry import parse_retry_after
from reconciler.backends.runpod_graphql import (
    RetryPolicy,
    RunPodClient,
    resolve_api_key,
    resolve_graphql_url,
)
from reconciler.errors import (
    ApiError,
    ApiResponseError,
    AuthError,
    CapacityError,
    PodctlError,
    PodNotFoundError,
    ResumeCapacityError,
    TransientApiError,
)
from reconciler.model import CloudType, PodMarkers, PodStatus, SshEndpoint
from reconciler.podops import PodCreate, PodEdit

KEY = "rpa_SECRETKEY0123456789"
NO_CAPACITY = (
    "There are no longer any instances available with the requested specifications. "
    "Please refresh and try again."
)
GPU_TAKEN = "There are not enough free GPUs on the host machine to start this pod."

Reply = httpx.Response | Exception


class FakeRunPod:
    """Answers each request with the next scripted reply and records what was sent."""

    def __init__(self, *replies: Reply) -> None:
        self.replies = list(replies)
        self.requests: list[httpx.Request] = []

    @property
    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(r.content) for r in self.requests]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if not self.replies:
            raise AssertionError("unexpected extra request")
        reply = self.replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return reply


class Sleeps:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


def ok(data: object) -> httpx.Response:
    return httpx.Response(200, json={"data": data})


def gql_error(message: str, status: int = 200, code: str | None = None) -> httpx.Response:
    error: dict[str, object] = {"message": message, "path": ["x"]}
    if code:
        error["extensions"] = {"code": code}
    return httpx.Response(status, json={"data": None, "errors": [error]})


def pod_json(pod_id: str = "abc123", **overrides: object) -> dict[str, object]:
    pod: dict[str, object] = {
        "id": pod_id,
        "name": "llm-eval-trainer",
        "desiredStatus": "RUNNING",
        "imageName": "runpod/pytorch:2.4.0",
        "env": [
            "PODCTL_STACK=llm-eval",
            "PODCTL_POD=trainer",
            "PODCTL_UID=u-1",
            "EQ=a=b",
            "MULTI=line1\nline2",
        ],
        "gpuCount": 2,
        "costPerHr": 1.38,
        "containerDiskInGb": 40,
        "volumeInGb": 50,
        "volumeMountPath": "/workspace",
        "ports": "22/tcp, 8888/http",
        "podType": "RESERVED",
        "uptimeSeconds": 120,
        "lastStatusChange": "Rented by User: Fri Jul 12 2024",
        "machineId": "hpvdausak8xb",
        "dockerArgs": "",
        "vcpuCount": 16,
        "memoryInGb": 62,
        "networkVolumeId": None,
        "machine": {
            "podHostId": f"{pod_id}-64410065",
            "gpuDisplayName": "RTX 4090",
            "gpuTypeId": "NVIDIA GeForce RTX 4090",
            "location": "RO",
            "secureCloud": True,
            "dataCenterId": "EU-RO-1",
        },
        "runtime": {
            "uptimeInSeconds": 100,
            "ports": [
                {
                    "ip": "100.65.0.101",
                    "isIpPublic": False,
                    "privatePort": 8888,
                    "publicPort": 60141,
                    "type": "http",
                },
                {
                    "ip": "213.173.109.39",
                    "isIpPublic": True,
                    "privatePort": 22,
                    "publicPort": 13007,
                    "type": "tcp",
                },
            ],
        },
    }
    pod.update(overrides)
    return pod


def make_client(server: FakeRunPod, sleeps: Sleeps | None = None, **kwargs: Any) -> RunPodClient:
    kwargs.setdefault("retry", RetryPolicy(max_attempts=5, base_delay=1.0, max_delay=8.0))
    return RunPodClient(
        KEY,
        api_url="https://runpod.test",
        transport=httpx.MockTransport(server),
        sleep=sleeps or Sleeps(),
        random=lambda: 0.5,
        **kwargs,
    )


def run(server: FakeRunPod, call: Callable[[RunPodClient], Any], **kwargs: Any) -> Any:
    async def main() -> Any:
        async with make_client(server, **kwargs) as client:
            return await call(client)

    return asyncio.run(main())


def create_args(**overrides: object) -> dict[str, Any]:
    args: dict[str, Any] = {
        "name": "llm-eval-trainer",
        "image": "runpod/pytorch:2.4.0",
        "gpu_type_id": "NVIDIA GeForce RTX 4090",
        "gpu_count": 1,
        "cloud": CloudType.SECURE,
        "env": {"PODCTL_UID": "u-1"},
        "ports": ["22/tcp", "8888/http"],
        "container_disk_gb": 40,
        "volume_gb": 50,
        "volume_mount": "/workspace",
    }
    args.update(overrides)
    return args


def create_request(**overrides: Any) -> PodCreate:
    return PodCreate(**create_args(**overrides))


# --- configuration --------------------------------------------------------------------------


def test_api_key_from_env_wins_over_config(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[default]\napi_key = "from-file"\n')
    assert resolve_api_key({"RUNPOD_API_KEY": "from-env"}, config) == "from-env"
    assert resolve_api_key({}, config) == "from-file"


def test_missing_api_key_names_both_places(tmp_path: Path) -> None:
    with pytest.raises(PodctlError) as info:
        resolve_api_key({}, tmp_path / "none.toml")
    assert "RUNPOD_API_KEY" in str(info.value)
    assert "none.toml" in str(info.value)


def test_corrupt_config_does_not_quote_the_key(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[default]\napi_key = "{KEY}\n')  # unterminated string
    with pytest.raises(PodctlError) as info:
        resolve_api_key({}, config)
    assert KEY not in "".join(traceback.format_exception(info.value))


def test_graphql_url_resolution() -> None:
    assert resolve_graphql_url(None, {}) == "https://api.runpod.io/graphql"
    env = {"RUNPOD_API_BASE_URL": "http://127.0.0.1:8765/"}
    assert resolve_graphql_url(None, env) == "http://127.0.0.1:8765/graphql"
    assert resolve_graphql_url("http://x:1", env, insecure_http=True) == "http://x:1/graphql"
    assert (
        resolve_graphql_url("http://x:1/graphql", env, insecure_http=True) == "http://x:1/graphql"
    )


# --- what is sent ---------------------------------------------------------------------------


def test_list_pods_is_one_request_for_many_pods_with_bearer_auth() -> None:
    pods = [pod_json(f"pod{i:03d}") for i in range(25)]
    server = FakeRunPod(ok({"myself": {"pods": pods}}))
    counted: list[str] = []
    actual = run(server, lambda c: c.list_pods(), on_request=counted.append)
    assert len(server.requests) == 1 and counted == ["ListPods"]
    request = server.requests[0]
    assert request.method == "POST" and str(request.url) == "https://runpod.test/graphql"
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    body = server.bodies[0]
    assert body["operationName"] == "ListPods"
    assert body["query"].startswith("query ListPods")
    for fld in ("env", "runtime", "machine", "desiredStatus", "privatePort", "podHostId"):
        assert fld in body["query"]
    assert len(actual.pods) == 25 and "pod007" in actual.pods


def test_list_pods_parses_every_field() -> None:
    server = FakeRunPod(ok({"myself": {"pods": [pod_json()]}}))
    pod = run(server, lambda c: c.list_pods()).pods["abc123"]
    assert pod.desired_status is PodStatus.RUNNING
    assert pod.env["EQ"] == "a=b" and pod.env["MULTI"] == "line1\nline2"
    assert pod.markers == PodMarkers(stack="llm-eval", pod="trainer", uid="u-1")
    assert pod.ports == ("22/tcp", "8888/http")
    assert pod.ssh == SshEndpoint("213.173.109.39", 13007)
    assert pod.runtime_ready is True
    assert pod.cloud is CloudType.SECURE and pod.interruptible is False
    assert pod.gpu_type_id == "NVIDIA GeForce RTX 4090" and pod.gpu_count == 2
    assert (pod.data_center_id, pod.location, pod.machine_id) == ("EU-RO-1", "RO", "hpvdausak8xb")
    assert (pod.container_disk_gb, pod.volume_gb, pod.volume_mount) == (40, 50, "/workspace")
    assert pod.cost_per_hr == pytest.approx(1.38) and pod.uptime_s == 100


def test_actual_pod_repr_hides_env_values() -> None:
    raw = pod_json(env=["HF_TOKEN=hf_secretvalue", "PODCTL_STACK=s"])
    server = FakeRunPod(ok({"myself": {"pods": [raw]}}))
    actual = run(server, lambda c: c.list_pods())
    assert actual.pods["abc123"].env["HF_TOKEN"] == "hf_secretvalue"
    assert "hf_secretvalue" not in repr(actual)


def test_pod_without_runtime_is_not_ready_and_has_no_ssh() -> None:
    raw = pod_json(runtime=None, env=None, desiredStatus="SOMETHING_NEW", podType="INTERRUPTABLE")
    server = FakeRunPod(ok({"myself": {"pods": [raw]}}))
    pod = run(server, lambda c: c.list_pods()).pods["abc123"]
    assert pod.runtime_ready is False and pod.ssh is None and pod.markers is None
    assert pod.desired_status is PodStatus.UNKNOWN
    assert pod.interruptible is True and pod.bid_per_gpu == pytest.approx(0.69)


def test_find_by_markers() -> None:
    other = pod_json("zzz", env=["PODCTL_STACK=other", "PODCTL_POD=trainer", "PODCTL_UID=u-9"])
    orphan = pod_json("bbb", env=["PODCTL_STACK=llm-eval", "PODCTL_POD=trainer", "PODCTL_UID=u2"])
    server = FakeRunPod(ok({"myself": {"pods": [pod_json(), other, orphan]}}))
    actual = run(server, lambda c: c.list_pods())
    assert [p.pod_id for p in actual.find_by_markers("llm-eval", "trainer")] == ["abc123", "bbb"]
    assert [p.pod_id for p in actual.of_stack("other")] == ["zzz"]
    assert actual.find_by_uid("u2") is actual.pods["bbb"]


def test_create_on_demand_sends_everything_as_variables() -> None:
    tricky = "say \"hi\"\n\\n and 'quotes' }{ $var"
    server = FakeRunPod(ok({"podFindAndDeployOnDemand": pod_json(runtime=None)}))
    deadline = datetime(2030, 1, 2, 4, 5, 6, tzinfo=timezone(timedelta(hours=1)))
    pod = run(
        server,
        lambda c: c.create_pod(
            create_request(
                env={"TRICKY": tricky, "PODCTL_UID": "u-1"},
                terminate_after=deadline,
                min_vcpu=4,
                min_memory_gb=30,
                allowed_cuda_versions=("12.4", "12.5"),
                data_center_id="EU-RO-1",
                docker_args="bash -c 'sleep 1'",
            )
        ),
    )
    body = server.bodies[0]
    assert body["operationName"] == "CreatePod"
    assert "$input: PodFindAndDeployOnDemandInput!" in body["query"]
    assert "podFindAndDeployOnDemand(input: $input)" in body["query"]
    assert tricky not in body["query"] and "TRICKY" not in body["query"]
    sent = body["variables"]["input"]
    assert sent["env"] == [
        {"key": "TRICKY", "value": tricky},
        {"key": "PODCTL_UID", "value": "u-1"},
    ]
    assert sent["ports"] == "22/tcp,8888/http"
    assert sent["cloudType"] == "SECURE"
    assert sent["terminateAfter"] == "2030-01-02T03:05:06Z"
    assert sent["allowedCudaVersions"] == ["12.4", "12.5"]
    assert sent["startSsh"] is True and sent["supportPublicIp"] is True
    assert (sent["minVcpuCount"], sent["minMemoryInGb"], sent["dataCenterId"]) == (4, 30, "EU-RO-1")
    assert sent["dockerArgs"] == "bash -c 'sleep 1'"
    assert "bidPerGpu" not in sent and "networkVolumeId" not in sent
    assert pod.pod_id == "abc123" and pod.runtime_ready is False


def test_create_spot_uses_rent_interruptable_with_bid() -> None:
    server = FakeRunPod(ok({"podRentInterruptable": pod_json()}))
    run(server, lambda c: c.create_pod(create_request(bid_per_gpu=0.35, cloud=CloudType.ALL)))
    body = server.bodies[0]
    assert "$input: PodRentInterruptableInput!" in body["query"]
    assert body["variables"]["input"]["bidPerGpu"] == 0.35
    assert body["variables"]["input"]["cloudType"] == "ALL"


@pytest.mark.parametrize(
    ("call", "input_type", "variables"),
    [
        (lambda c: c.resume_pod("p1", 2), "PodResumeInput", {"podId": "p1", "gpuCount": 2}),
        (lambda c: c.resume_pod("p1"), "PodResumeInput", {"podId": "p1"}),
        (
            lambda c: c.bid_resume_pod("p1", 0.3, 1),
            "PodBidResumeInput",
            {"podId": "p1", "bidPerGpu": 0.3, "gpuCount": 1},
        ),
        (lambda c: c.stop_pod("p1"), "PodStopInput", {"podId": "p1"}),
        (lambda c: c.terminate_pod("p1"), "PodTerminateInput", {"podId": "p1"}),
    ],
)
def test_lifecycle_mutations_send_declared_input(call, input_type, variables) -> None:
    data = {
        "podResume": pod_json(),
        "podBidResume": pod_json(),
        "podStop": {"id": "p1", "desiredStatus": "EXITED"},
        "podTerminate": None,
    }
    server = FakeRunPod(ok(data))
    run(server, call)
    body = server.bodies[0]
    assert f"$input: {input_type}!" in body["query"]
    assert body["variables"] == {"input": variables}


def test_stop_returns_status_and_terminate_reports_it_went() -> None:
    server = FakeRunPod(ok({"podStop": {"id": "p1", "desiredStatus": "EXITED"}}))
    assert run(server, lambda c: c.stop_pod("p1")) is PodStatus.EXITED
    server = FakeRunPod(ok({"podTerminate": None}))
    assert run(server, lambda c: c.terminate_pod("p1")) is True


def test_terminate_of_a_gone_pod_is_success() -> None:
    server = FakeRunPod(gql_error("pod not found to terminate"))
    assert run(server, lambda c: c.terminate_pod("p1")) is False


def test_edit_sends_the_whole_config() -> None:
    server = FakeRunPod(ok({"podEditJob": pod_json()}))
    run(
        server,
        lambda c: c.edit_pod(
            "p1",
            PodEdit(
                image="img:2",
                container_disk_gb=40,
                volume_gb=50,
                volume_mount="/workspace",
                env={"A": "1"},
                ports=["22/tcp"],
            ),
        ),
    )
    body = server.bodies[0]
    assert "$input: PodEditJobInput!" in body["query"]
    assert body["variables"]["input"] == {
        "podId": "p1",
        "imageName": "img:2",
        "containerDiskInGb": 40,
        "volumeInGb": 50,
        "volumeMountPath": "/workspace",
        "env": [{"key": "A", "value": "1"}],
        "ports": "22/tcp",
        "dockerArgs": "",
    }


def test_get_pod_and_missing_pod() -> None:
    server = FakeRunPod(ok({"pod": pod_json("p1")}), ok({"pod": None}))

    async def both(c: RunPodClient) -> tuple[Any, Any]:
        return await c.get_pod("p1"), await c.get_pod("gone")

    found, missing = run(server, both)
    assert found.pod_id == "p1" and missing is None
    assert [b["variables"] for b in server.bodies] == [{"podId": "p1"}, {"podId": "gone"}]


def test_gpu_prices_one_request_filtered() -> None:
    gpus = [
        {
            "id": "NVIDIA GeForce RTX 4090",
            "displayName": "RTX 4090",
            "memoryInGb": 24,
            "secureCloud": True,
            "communityCloud": True,
            "maxGpuCount": 8,
            "lowestPrice": {
                "gpuTypeId": "NVIDIA GeForce RTX 4090",
                "minimumBidPrice": 0.29,
                "uninterruptablePrice": 0.69,
                "stockStatus": "High",
                "availableGpuCounts": [1, 2, 4],
            },
        },
        {"id": "NVIDIA A100", "displayName": "A100", "lowestPrice": None},
    ]
    server = FakeRunPod(ok({"gpuTypes": gpus}))
    offers = run(
        server, lambda c: c.gpu_prices(["NVIDIA GeForce RTX 4090", "Unknown"], gpu_count=2)
    )
    assert list(offers) == ["NVIDIA GeForce RTX 4090"]
    offer = offers["NVIDIA GeForce RTX 4090"]
    assert offer.on_demand_price == 0.69 and offer.minimum_bid_price == 0.29
    assert offer.available_gpu_counts == (1, 2, 4) and offer.stock_status == "High"
    assert server.bodies[0]["variables"] == {"lowestPrice": {"gpuCount": 2, "secureCloud": True}}
    assert len(server.requests) == 1


# --- error mapping --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "error_type"),
    [
        (gql_error(NO_CAPACITY), CapacityError),
        (
            gql_error(
                "There are no longer any instances available with the request "
                "specifications. Please try again later."
            ),
            CapacityError,
        ),
        (gql_error(GPU_TAKEN), ResumeCapacityError),
        (gql_error("Unauthorized"), AuthError),
        (httpx.Response(401, text="Unauthorized"), AuthError),
        (httpx.Response(403, json={"errors": [{"message": "forbidden"}]}), AuthError),
        (gql_error('Field "x" is not defined by type "Y".', status=400), ApiError),
        (gql_error("pod not found"), PodNotFoundError),
        (httpx.Response(200, text="<html>oops</html>"), ApiResponseError),
        (httpx.Response(200, json={"no": "data"}), ApiResponseError),
        (httpx.Response(200, json=[1, 2]), ApiResponseError),
        (httpx.Response(200, json={"data": None}), ApiResponseError),
        (httpx.Response(404, text="nope"), ApiError),
    ],
)
def test_error_mapping(reply: httpx.Response, error_type: type[ApiError]) -> None:
    server = FakeRunPod(reply)
    with pytest.raises(ApiError) as info:
        run(server, lambda c: c.create_pod(create_request()))
    assert type(info.value) is error_type
    assert len(server.requests) == 1  # none of these is retried
    assert "CreatePod" in str(info.value)


def test_api_error_keeps_the_graphql_errors_and_first_message() -> None:
    server = FakeRunPod(gql_error(NO_CAPACITY, code="BAD_USER_INPUT"))
    with pytest.raises(CapacityError) as info:
        run(server, lambda c: c.create_pod(create_request()))
    assert info.value.message.endswith(NO_CAPACITY)
    assert info.value.errors[0]["extensions"] == {"code": "BAD_USER_INPUT"}
    assert info.value.status_code == 200


@pytest.mark.parametrize(
    "garbage",
    [
        {"myself": {"pods": "nope"}},
        {"myself": {"pods": [{"name": "no id"}]}},
        {"myself": {"pods": [pod_json(gpuCount="two")]}},
        {"myself": {"pods": [pod_json(env=[1])]}},
        {"myself": {"pods": [pod_json(machine=[])]}},
        {"myself": {"pods": [pod_json(runtime={"ports": [None]})]}},
        {"myself": {"pods": [pod_json(runtime={"ports": "22"})]}},
        {"myself": {"pods": [pod_json(containerDiskInGb=True)]}},
    ],
)
def test_garbage_pods_raise_a_typed_error(garbage: dict[str, object]) -> None:
    server = FakeRunPod(ok(garbage))
    with pytest.raises(ApiResponseError):
        run(server, lambda c: c.list_pods())


def test_the_key_never_leaks_into_errors_or_reprs() -> None:
    echo = httpx.Response(200, json={"errors": [{"message": f"bad key {KEY}"}]})
    echo401 = httpx.Response(401, json={"errors": [{"message": f"Unauthorized: {KEY}"}]})
    connect = httpx.ConnectError(f"refused for {KEY}")
    for reply in (echo, echo401, connect):
        server = FakeRunPod(reply)
        with pytest.raises(ApiError) as info:
            run(server, lambda c: c.list_pods(), retry=RetryPolicy(max_attempts=1))
        assert KEY not in str(info.value) and KEY not in repr(info.value)
        assert KEY not in str(info.value.errors)
        assert KEY not in "".join(traceback.format_exception(info.value))
    client = make_client(FakeRunPod())
    assert KEY not in repr(client) and KEY not in str(client)
    asyncio.run(client.aclose())


def test_key_with_illegal_characters_is_refused_without_echo() -> None:
    with pytest.raises(PodctlError) as info:
        RunPodClient("abc\ndef")
    assert "abc" not in str(info.value)


# --- retries --------------------------------------------------------------------------------


def test_429_honours_retry_after_then_succeeds() -> None:
    sleeps, reasons = Sleeps(), []
    server = FakeRunPod(
        httpx.Response(429, headers={"Retry-After": "7"}, text="slow down"),
        ok({"myself": {"pods": []}}),
    )
    on_retry = lambda attempt, delay, reason: reasons.append((attempt, delay, reason))  # noqa: E731
    actual = run(server, lambda c: c.list_pods(), sleeps=sleeps, on_retry=on_retry)
    assert actual.pods == {} and sleeps.delays == [7.0]
    assert reasons == [(1, 7.0, "RunPod ListPods: HTTP 429")]


def test_500_then_success_backs_off_with_jitter() -> None:
    sleeps = Sleeps()
    server = FakeRunPod(
        httpx.Response(500), httpx.Response(502), ok({"myself": {"pods": [pod_json()]}})
    )
    actual = run(server, lambda c: c.list_pods(), sleeps=sleeps)
    assert len(actual.pods) == 1
    # random() = 0.5, base 1.0: 0.5 * 1, then 0.5 * 2
    assert sleeps.delays == [0.5, 1.0]


def test_gives_up_after_max_attempts() -> None:
    sleeps = Sleeps()
    server = FakeRunPod(*[httpx.Response(503) for _ in range(5)])
    with pytest.raises(TransientApiError) as info:
        run(server, lambda c: c.list_pods(), sleeps=sleeps)
    assert len(server.requests) == 5 and len(sleeps.delays) == 4
    assert info.value.status_code == 503


def test_gives_up_when_total_delay_budget_is_spent() -> None:
    sleeps = Sleeps()
    server = FakeRunPod(*[httpx.Response(429, headers={"Retry-After": "40"}) for _ in range(3)])
    policy = RetryPolicy(max_attempts=5, max_total_delay=60.0)
    with pytest.raises(TransientApiError):
        run(server, lambda c: c.list_pods(), sleeps=sleeps, retry=policy)
    assert sleeps.delays == [40.0] and len(server.requests) == 2


def test_something_went_wrong_is_retried_for_queries() -> None:
    server = FakeRunPod(
        gql_error("Something went wrong. Please try again later or contact support."),
        ok({"pod": pod_json("p1")}),
    )
    assert run(server, lambda c: c.get_pod("p1")).pod_id == "p1"


def test_timeouts_and_connection_errors_are_retried_for_queries() -> None:
    server = FakeRunPod(
        httpx.ReadTimeout("slow"),
        httpx.ConnectError("refused"),
        httpx.RemoteProtocolError("dropped"),
        ok({"podTerminate": None}),
    )
    assert run(server, lambda c: c.terminate_pod("p1")) is True
    assert len(server.requests) == 4


def test_create_is_not_retried_after_a_read_timeout() -> None:
    server = FakeRunPod(httpx.ReadTimeout("the answer was lost"), ok({}))
    with pytest.raises(TransientApiError) as info:
        run(server, lambda c: c.create_pod(create_request()))
    assert len(server.requests) == 1 and info.value.maybe_processed is True


@pytest.mark.parametrize("status", [500, 504])
def test_create_is_not_retried_after_an_ambiguous_5xx(status: int) -> None:
    server = FakeRunPod(httpx.Response(status), ok({}))
    with pytest.raises(TransientApiError):
        run(server, lambda c: c.create_pod(create_request()))
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    "first",
    [
        httpx.Response(429),
        httpx.Response(503),
        httpx.Response(502),
        httpx.ConnectError("refused"),
        httpx.ConnectTimeout("no route"),
    ],
)
def test_create_is_retried_when_surely_not_processed(first: Reply) -> None:
    server = FakeRunPod(first, ok({"podFindAndDeployOnDemand": pod_json()}))
    assert run(server, lambda c: c.create_pod(create_request())).pod_id == "abc123"
    assert len(server.requests) == 2


def test_capacity_error_is_never_retried() -> None:
    server = FakeRunPod(gql_error(NO_CAPACITY), ok({}))
    with pytest.raises(CapacityError):
        run(server, lambda c: c.create_pod(create_request()))
    assert len(server.requests) == 1


def test_request_count_per_operation() -> None:
    server = FakeRunPod(ok({"myself": {"pods": []}}), ok({"podTerminate": None}))

    async def calls(c: RunPodClient) -> RunPodClient:
        await c.list_pods()
        await c.terminate_pod("p")
        return c

    client = run(server, calls)
    assert client.request_count == 2
    assert dict(client.requests_by_operation) == {"ListPods": 1, "TerminatePod": 1}


def test_parse_retry_after() -> None:
    now = datetime(2026, 1, 1, 0, 0, 0, tzinfo=UTC)
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("Thu, 01 Jan 2026 00:00:10 GMT", now) == 10.0
    assert parse_retry_after("garbage") is None
    assert parse_retry_after(None) is None
    assert parse_retry_after("-5") == 0.0
