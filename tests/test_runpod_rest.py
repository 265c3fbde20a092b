"""RestClient at its boundary: what it sends to RunPod REST v2 and how it reads the answers.

The answers are the OpenAPI's own examples (tests/../shared reference copy, loaded below) served
by httpx.MockTransport; the bodies podctl sends are validated against the OpenAPI's schemas.
"""

from __future__ import annotations

import asyncio
import copy
import json
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest

from reconciler.backends.runpod_graphql import RetryPolicy, RunPodClient
from reconciler.backends.runpod_graphql import wire as gql_wire
from reconciler.backends.runpod_rest import NoFundsError, RestClient, rest_base_url, wire
from reconciler.backends.runpod_rest.limits import exhausted_for
from reconciler.backends.runpod_rest.sse import EventParser
from reconciler.backends.runpod_rest.wire import PagedListError
from reconciler.errors import (
    ApiError,
    AuthError,
    CapacityError,
    PodctlError,
    PodNotFoundError,
    TransientApiError,
    UsageError,
)
from reconciler.model import CloudType, PodMarkers, PodStatus, SshEndpoint
from reconciler.planner.fields import actual_view
from reconciler.podops import PodCreate, PodEdit

KEY = "rpa_RESTSECRET0123456789"
OPENAPI_PATH = Path(__file__).parent / "data" / "runpod-rest-v2.openapi.json"
OPENAPI: dict[str, Any] = json.loads(OPENAPI_PATH.read_text())
NO_CAPACITY = (
    "There are no longer any instances available with the requested specifications. "
    "Please refresh and try again."
)
MARKERS = {"PODCTL_STACK": "llm-eval", "PODCTL_POD": "trainer", "PODCTL_UID": "u-1"}

Reply = httpx.Response | Exception


def example(path: str, method: str, status: str = "200") -> Any:
    """The first example answer the OpenAPI gives for this operation and status."""
    content = OPENAPI["paths"][path][method]["responses"][status]["content"]
    media = next(iter(content.values()))
    return copy.deepcopy(next(iter(media["examples"].values()))["value"])


def schema_validator(name: str) -> jsonschema.protocols.Validator:
    schema = {"$ref": f"#/components/schemas/{name}", "components": OPENAPI["components"]}
    return jsonschema.Draft202012Validator(schema)


def problem(
    status: int,
    detail: str,
    errors: list[str] | None = None,
    *,
    headers: dict[str, str] | None = None,
) -> Reply:
    body: dict[str, Any] = {"title": "Bad Request", "status": status, "detail": detail}
    if errors is not None:
        body["errors"] = errors
    return httpx.Response(
        status,
        content=json.dumps(body).encode(),
        headers={"Content-Type": "application/problem+json", **(headers or {})},
    )


class FakeRest:
    """Answers each request with the next scripted reply and records what was sent."""

    def __init__(self, *replies: Reply) -> None:
        self.replies = list(replies)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if not self.replies:
            raise AssertionError(f"unexpected extra request {request.method} {request.url}")
        reply = self.replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return reply

    def body(self, index: int = -1) -> Any:
        return json.loads(self.requests[index].content)


class Sleeps:
    """A fake sleep that moves a fake clock along (`clock`), so waits add up as they would."""

    def __init__(self) -> None:
        self.delays: list[float] = []
        self.now = 100.0

    def clock(self) -> float:
        return self.now

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        self.now += delay


def make(server: FakeRest, sleeps: Sleeps | None = None, **kwargs: Any) -> RestClient:
    sleeps = sleeps or Sleeps()
    return RestClient(
        KEY,
        api_url="https://api.runpod.io",
        transport=httpx.MockTransport(server),
        sleep=sleeps,
        random=lambda: 0.5,
        clock=sleeps.clock,
        **kwargs,
    )


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def request() -> PodCreate:
    return PodCreate(
        name="llm-eval-trainer",
        image="runpod/pytorch:2.4.0",
        gpu_type_id="NVIDIA GeForce RTX 4090",
        gpu_count=2,
        cloud=CloudType.COMMUNITY,
        env={**MARKERS, "HF_HOME": "/workspace/hf"},
        ports=("22/tcp", "8888/http"),
        container_disk_gb=40,
        volume_gb=50,
        volume_mount="/workspace",
        min_vcpu=8,
        min_memory_gb=32,
        allowed_cuda_versions=("12.4",),
        data_center_id="EU-RO-1",
        docker_args="bash -c 'sleep infinity'",
    )


def v2_pod(**overrides: Any) -> dict[str, Any]:
    pod: dict[str, Any] = example("/v2/pods/{id}", "get")
    pod["env"] = {**MARKERS, "MODEL_NAME": "llama-3"}
    pod.update(overrides)
    return pod


def created(**overrides: Any) -> httpx.Response:
    pod = example("/v2/pods", "post", "201")
    pod["env"] = dict(MARKERS)
    pod.update(overrides)
    return httpx.Response(201, json=pod)


# --- URL, auth ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "base"),
    [
        ("https://api.runpod.io", "https://api.runpod.io"),
        ("https://api.runpod.io/", "https://api.runpod.io"),
        ("https://api.runpod.io/graphql", "https://api.runpod.io"),
        ("https://api.runpod.io/v2", "https://api.runpod.io"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
    ],
)
def test_the_rest_base_is_the_graphql_base_without_graphql(given: str, base: str) -> None:
    assert rest_base_url(given, {}) == base


def test_a_rest_client_knows_where_graphql_lives_on_its_base() -> None:
    client = RestClient(KEY, api_url="https://api.runpod.io/v2")
    assert (client.url, client.graphql_url) == (
        "https://api.runpod.io",
        "https://api.runpod.io/graphql",
    )


def test_the_rest_base_url_is_checked_as_graphqls_is() -> None:
    with pytest.raises(UsageError, match="plain http://"):
        rest_base_url("http://api.example.com", {})
    assert rest_base_url(None, {"RUNPOD_API_BASE_URL": "https://x.example"}) == "https://x.example"


def test_list_is_one_get_of_v2_pods_with_the_key_as_bearer() -> None:
    server = FakeRest(httpx.Response(200, json=example("/v2/pods", "get")))
    state = run(make(server).list_pods())
    (sent,) = server.requests
    assert (sent.method, str(sent.url)) == ("GET", "https://api.runpod.io/v2/pods")
    assert sent.headers["Authorization"] == f"Bearer {KEY}"
    assert sent.headers["User-Agent"].startswith("podctl/")
    pod = state.pods["7h9k2m4n6p"]
    assert pod.desired_status is PodStatus.RUNNING
    assert pod.ssh == SshEndpoint(host="195.26.233.3", port=34446)
    assert pod.runtime_ready
    assert (pod.gpu_type_id, pod.gpu_count, pod.cloud) == (
        "NVIDIA GeForce RTX 4090",
        1,
        CloudType.SECURE,
    )
    assert (pod.volume_gb, pod.volume_mount, pod.container_disk_gb) == (20, "/workspace", 50)
    assert pod.ports == ("8888/http", "22/tcp")
    assert pod.env == {"MODEL_NAME": "llama-3"}
    assert (pod.data_center_id, pod.cost_per_hr, pod.uptime_s) == ("US-KS-2", 0.44, 3600)
    assert pod.pod_host_id == "7h9k2m4n6p-64411eb2"


def test_a_paged_list_is_refused_rather_than_read_in_part() -> None:
    body = example("/v2/pods", "get")
    body["pagination"] = {"nextCursor": "abc", "hasNextPage": True}
    with pytest.raises(PagedListError, match="more pages follow"):
        run(make(FakeRest(httpx.Response(200, json=body))).list_pods())
    body["pagination"] = {"nextCursor": None, "hasNextPage": False}
    assert len(run(make(FakeRest(httpx.Response(200, json=body))).list_pods()).pods) == 1


# --- the same ActualPod as GraphQL -------------------------------------------------------------


def graphql_twin() -> dict[str, Any]:
    """The GraphQL answer for the pod of the v2 example (same image, GPU, disks, env...)."""
    return {
        "id": "7h9k2m4n6p",
        "name": "pytorch-training",
        "desiredStatus": "RUNNING",
        "imageName": "runpod/pytorch:1.0.2-cu1281-torch280-ubuntu2404",
        "env": [f"{k}={v}" for k, v in {**MARKERS, "MODEL_NAME": "llama-3"}.items()],
        "gpuCount": 1,
        "costPerHr": 0.44,
        "containerDiskInGb": 50,
        "volumeInGb": 20,
        "volumeMountPath": "/workspace",
        "ports": "8888/http,22/tcp",
        "podType": "RESERVED",
        "dockerArgs": "",
        "networkVolumeId": None,
        "machine": {
            "gpuTypeId": "NVIDIA GeForce RTX 4090",
            "secureCloud": True,
            "dataCenterId": "US-KS-2",
        },
        "runtime": {
            "uptimeInSeconds": 3600,
            "ports": [
                {
                    "ip": "195.26.233.3",
                    "isIpPublic": True,
                    "privatePort": 22,
                    "publicPort": 34446,
                    "type": "tcp",
                }
            ],
        },
    }


def test_a_v2_pod_is_the_actualpod_graphql_builds_in_every_compared_field() -> None:
    rest = wire.parse_pod(v2_pod())
    graphql = gql_wire.parse_pod(graphql_twin())
    assert actual_view(rest) == actual_view(graphql)
    for field in ("pod_id", "desired_status", "markers", "ssh", "runtime_ready", "env"):
        assert getattr(rest, field) == getattr(graphql, field), field


@pytest.mark.parametrize(
    ("status", "desired", "ready"),
    [
        ("PROVISIONING", PodStatus.RUNNING, False),
        ("STARTING", PodStatus.RUNNING, False),
        ("RUNNING", PodStatus.RUNNING, True),
        ("ERROR", PodStatus.RUNNING, False),
        ("EXITED", PodStatus.EXITED, False),
        ("TERMINATED", PodStatus.TERMINATED, False),
        ("SOMETHING_NEW", PodStatus.UNKNOWN, False),
    ],
)
def test_v2_status_is_observed_and_maps_to_graphqls_intent(
    status: str, desired: PodStatus, ready: bool
) -> None:
    pod = wire.parse_pod(v2_pod(status=status))
    assert (pod.desired_status, pod.runtime_ready) == (desired, ready)


def test_no_mount_is_volume_0_and_a_network_volume_has_its_path() -> None:
    bare = wire.parse_pod(v2_pod(mounts={}))
    assert (bare.volume_gb, bare.volume_mount, bare.network_volume_id) == (0, None, None)
    net = wire.parse_pod(v2_pod(mounts={"network": [{"volumeId": "vol1", "path": "/data"}]}))
    assert (net.volume_gb, net.volume_mount, net.network_volume_id) == (None, "/data", "vol1")


def test_ssh_is_none_until_direct_is_set() -> None:
    pod = wire.parse_pod(v2_pod(status="STARTING", ssh={"proxy": None, "direct": None}))
    assert pod.ssh is None


@pytest.mark.parametrize(
    "bad",
    [{"env": ["K=V"]}, {"env": {"K": 1}}, {"ports": "22/tcp"}, {"id": 5}, {"disk": "big"}],
)
def test_a_pod_of_the_wrong_shape_is_an_api_response_error(bad: dict[str, Any]) -> None:
    with pytest.raises(ApiError, match="RunPod answer"):
        wire.parse_pod(v2_pod(**bad))


# --- create, edit, actions ---------------------------------------------------------------------


def test_create_sends_one_placement_in_v2_fields_only() -> None:
    server = FakeRest(created())
    pod = run(make(server).create_pod(request()))
    sent = server.requests[0]
    assert (sent.method, sent.url.path) == ("POST", "/v2/pods")
    body = server.body()
    schema_validator("CreatePodRequest").validate(body)  # unevaluatedProperties: false
    assert body == {
        "name": "llm-eval-trainer",
        "image": "runpod/pytorch:2.4.0",
        "gpu": {"id": "NVIDIA GeForce RTX 4090", "count": 2, "allowedCudaVersions": ["12.4"]},
        "cloud": "COMMUNITY",
        "disk": 40,
        "ports": ["22/tcp", "8888/http"],
        "env": {**MARKERS, "HF_HOME": "/workspace/hf"},
        "startSsh": True,
        "args": "bash -c 'sleep infinity'",
        "mounts": {"persistent": {"size": 50, "path": "/workspace"}},
        "dataCenterIds": ["EU-RO-1"],
    }
    assert pod.desired_status is PodStatus.RUNNING and not pod.runtime_ready
    assert pod.markers == PodMarkers("llm-eval", "trainer", "u-1")


def test_create_with_a_network_volume_mounts_it_at_the_volume_path() -> None:
    server = FakeRest(created())
    req = PodCreate(**{**request().__dict__, "network_volume_id": "vol9"})
    run(make(server).create_pod(req))
    body = server.body()
    schema_validator("CreatePodRequest").validate(body)
    assert body["mounts"] == {"network": [{"volumeId": "vol9", "path": "/workspace"}]}


def test_a_spot_create_or_bid_resume_is_refused_without_a_request() -> None:
    server = FakeRest()
    req = PodCreate(**{**request().__dict__, "bid_per_gpu": 0.2})
    with pytest.raises(PodctlError, match="spot pods need --api graphql"):
        run(make(server).create_pod(req))
    with pytest.raises(PodctlError, match="spot pods need --api graphql"):
        run(make(server).bid_resume_pod("p1", 0.2, 1))
    assert server.requests == []


def test_edit_is_a_patch_that_resends_the_whole_env_with_the_markers() -> None:
    server = FakeRest(httpx.Response(200, json=v2_pod()))
    run(
        make(server).edit_pod(
            "7h9k2m4n6p",
            PodEdit(
                image="img:2",
                container_disk_gb=30,
                volume_gb=20,
                volume_mount="/workspace",
                env={**MARKERS, "PUBLIC_KEY": "ssh-ed25519 AAAA", "MODE": "b"},
                ports=("22/tcp",),
                docker_args="",
            ),
        )
    )
    sent = server.requests[0]
    assert (sent.method, sent.url.path) == ("PATCH", "/v2/pods/7h9k2m4n6p")
    body = server.body()
    schema_validator("UpdatePodRequest").validate(body)
    assert body == {
        "image": "img:2",
        "disk": 30,
        "env": {**MARKERS, "PUBLIC_KEY": "ssh-ed25519 AAAA", "MODE": "b"},
        "ports": ["22/tcp"],
        "args": "",
    }


def test_an_edit_without_the_markers_is_refused_before_it_is_sent() -> None:
    server = FakeRest()
    with pytest.raises(PodctlError, match="markers"):
        run(
            make(server).edit_pod(
                "p1",
                PodEdit(
                    image="i",
                    container_disk_gb=1,
                    volume_gb=0,
                    volume_mount="/w",
                    env={"MODE": "b"},
                    ports=(),
                ),
            )
        )
    assert server.requests == []


def test_start_stop_terminate_are_the_v2_routes() -> None:
    server = FakeRest(
        httpx.Response(200, json=v2_pod(status="STARTING")),
        httpx.Response(200, json=v2_pod(status="EXITED")),
        httpx.Response(204),
        problem(404, "pod not found"),
    )
    client = make(server)
    assert run(client.resume_pod("a/b", 2)).desired_status is PodStatus.RUNNING
    assert run(client.stop_pod("a/b")) is PodStatus.EXITED
    assert run(client.terminate_pod("a/b")) is True
    assert run(client.terminate_pod("a/b")) is False  # 404: already gone, not an error
    routes = [(r.method, r.url.raw_path.decode()) for r in server.requests]
    assert routes == [
        ("POST", "/v2/pods/a%2Fb/action"),
        ("POST", "/v2/pods/a%2Fb/action"),
        ("DELETE", "/v2/pods/a%2Fb"),
        ("DELETE", "/v2/pods/a%2Fb"),
    ]
    assert [server.body(i) for i in (0, 1)] == [{"action": "start"}, {"action": "stop"}]
    schema_validator("PodActionRequest").validate(server.body(0))


def test_get_of_an_unknown_pod_is_none() -> None:
    assert run(make(FakeRest(problem(404, "pod not found"))).get_pod("x")) is None


# --- the GPU catalog ---------------------------------------------------------------------------


def test_gpu_offers_read_the_catalog_once_per_cloud_with_stock_and_cuda() -> None:
    gpus = example("/v2/catalog/gpus", "get")
    gpus["gpus"][0]["cudaVersions"] = [
        {"version": "12.8", "available": True},
        {"version": "12.4", "available": False},
    ]
    community = copy.deepcopy(gpus)
    community["gpus"][0]["availability"] = "LOW"
    server = FakeRest(httpx.Response(200, json=gpus), httpx.Response(200, json=community))
    offers = run(make(server).gpu_offers())
    queries = [dict(r.url.params) for r in server.requests]
    assert [r.url.path for r in server.requests] == ["/v2/catalog/gpus"] * 2
    assert queries == [
        {"include": "AVAILABILITY", "product": "POD", "count": "1", "cloud": "SECURE"},
        {"include": "AVAILABILITY", "product": "POD", "count": "1", "cloud": "COMMUNITY"},
    ]
    secure = offers[CloudType.SECURE]["NVIDIA GeForce RTX 4090"]
    low = offers[CloudType.COMMUNITY]["NVIDIA GeForce RTX 4090"]
    assert (secure.display_name, secure.memory_gb, secure.on_demand_price) == ("RTX 4090", 24, 0.44)
    assert (secure.stock_status, low.stock_status, low.on_demand_price) == ("High", "Low", 0.31)
    assert (secure.max_gpu_count, low.max_gpu_count) == (8, 4)
    assert secure.cuda_versions == ("12.8",)


def test_a_gpu_a_cloud_does_not_offer_is_not_listed_there() -> None:
    gpus = example("/v2/catalog/gpus", "get")
    gpus["gpus"][0]["community"] = False
    offers = wire.parse_gpu_offers(gpus, CloudType.COMMUNITY, None)
    assert offers == {}


# --- errors: the mapping table of the reference (4.4) ------------------------------------------


@pytest.mark.parametrize(
    ("reply", "error", "text"),
    [
        (problem(400, NO_CAPACITY), CapacityError, "no longer any instances"),
        (problem(400, "gpu and cpu are mutually exclusive"), ApiError, "mutually exclusive"),
        (
            problem(422, "Request validation failed.", ["$: missing property 'gpu'"]),
            ApiError,
            "Request validation failed. ($: missing property 'gpu')",
        ),
        (problem(402, "insufficient balance"), NoFundsError, "has no funds"),
        (problem(401, "missing bearer token"), AuthError, "API key was refused"),
        (problem(403, "access denied"), AuthError, "access denied"),
        (problem(404, "template not found"), PodNotFoundError, "template not found"),
        (
            httpx.Response(404, json={"error": "not found", "status": 404}),
            ApiError,
            "does not serve RunPod's REST API v2",
        ),
    ],
)
def test_a_create_error_is_typed_and_never_retried(
    reply: Reply, error: type[ApiError], text: str
) -> None:
    server = FakeRest(reply)
    with pytest.raises(error) as caught:
        run(make(server).create_pod(request()))
    assert type(caught.value) is error
    assert text in str(caught.value)
    assert not isinstance(caught.value, TransientApiError)
    assert len(server.requests) == 1


def test_every_candidate_answering_400_capacity_is_the_same_error_graphql_raises() -> None:
    server = FakeRest(problem(400, NO_CAPACITY))
    with pytest.raises(CapacityError) as caught:
        run(make(server).create_pod(request()))
    assert caught.value.status_code == 400
    assert caught.value.errors == ({"message": NO_CAPACITY},)


def test_422_shows_detail_and_every_validation_failure() -> None:
    errors = [f"$: additional properties 'x{i}' not allowed" for i in range(12)]
    server = FakeRest(problem(422, "Request validation failed.", errors))
    with pytest.raises(ApiError) as caught:
        run(make(server).create_pod(request()))
    text = str(caught.value)
    assert "HTTP 422" in text and "'x0'" in text and "'x9'" in text and "and 2 more" in text


def test_429_waits_retry_after_and_sends_the_same_create_again() -> None:
    sleeps = Sleeps()
    server = FakeRest(problem(429, "rate limit exceeded", headers={"Retry-After": "12"}), created())
    run(make(server, sleeps).create_pod(request()))
    assert sleeps.delays == [12.0]
    assert server.body(0) == server.body(1)


def test_429_waits_for_the_longest_exhausted_window() -> None:
    sleeps = Sleeps()
    headers = {
        "Retry-After": "12",
        "RateLimit": '"minute";r=0;t=12, "hour";r=0;t=40, "day";r=49500;t=45012',
    }
    server = FakeRest(problem(429, "rate limit exceeded", headers=headers), created())
    run(make(server, sleeps).create_pod(request()))
    assert sleeps.delays == [40.0]


def test_an_answer_with_a_used_up_window_makes_the_next_request_wait_its_reset() -> None:
    sleeps = Sleeps()
    limited = httpx.Response(
        200,
        json=example("/v2/pods", "get"),
        headers={"RateLimit": '"minute";r=0;t=7', "RateLimit-Policy": '"minute";q=60;w=60'},
    )
    server = FakeRest(limited, httpx.Response(200, json=example("/v2/pods", "get")))
    client = make(server, sleeps)
    run(client.list_pods())
    assert sleeps.delays == []
    run(client.list_pods())
    assert sleeps.delays == [7.0]


def test_a_window_resetting_beyond_the_retry_budget_fails_without_sending() -> None:
    limited = httpx.Response(
        200, json=example("/v2/pods", "get"), headers={"RateLimit": '"day";r=0;t=40000'}
    )
    server = FakeRest(limited)
    client = make(server)
    run(client.list_pods())
    with pytest.raises(TransientApiError, match="day window has no requests left"):
        run(client.list_pods())
    assert len(server.requests) == 1


def test_a_500_on_create_may_have_been_applied_and_is_not_resent() -> None:
    server = FakeRest(problem(500, "upstream error"))
    with pytest.raises(TransientApiError) as caught:
        run(make(server).create_pod(request()))
    assert caught.value.maybe_processed is True
    assert len(server.requests) == 1


def test_a_reset_connection_on_create_is_maybe_applied_and_not_resent() -> None:
    server = FakeRest(httpx.ReadError("connection reset by peer"))
    with pytest.raises(TransientApiError) as caught:
        run(make(server).create_pod(request()))
    assert caught.value.maybe_processed is True
    assert len(server.requests) == 1


def test_a_503_or_refused_connection_on_create_is_retried() -> None:
    server = FakeRest(problem(503, "unavailable"), httpx.ConnectError("refused"), created())
    run(make(server).create_pod(request()))
    assert len(server.requests) == 3


def test_reads_are_retried_on_any_5xx() -> None:
    server = FakeRest(problem(500, "oops"), httpx.Response(200, json=example("/v2/pods", "get")))
    assert len(run(make(server).list_pods()).pods) == 1
    assert len(server.requests) == 2


def test_retries_stop_at_the_policy() -> None:
    server = FakeRest(*[problem(500, "oops") for _ in range(2)])
    with pytest.raises(TransientApiError, match="HTTP 500"):
        run(make(server, retry=RetryPolicy(max_attempts=2)).list_pods())


def test_the_key_never_reaches_a_message() -> None:
    server = FakeRest(problem(400, f"bad key {KEY} in request", [f"$: {KEY}"]))
    with pytest.raises(ApiError) as caught:
        run(make(server).create_pod(request()))
    assert KEY not in str(caught.value) and KEY not in repr(caught.value.errors)


def test_server_text_is_escaped() -> None:
    server = FakeRest(problem(400, "bad \x1b[31mred\x1b[0m"))
    with pytest.raises(ApiError) as caught:
        run(make(server).create_pod(request()))
    assert "\x1b" not in str(caught.value) and "\\x1b[31m" in str(caught.value)


def test_graphql_410_gone_says_to_use_rest() -> None:
    def gone(_: httpx.Request) -> httpx.Response:
        return httpx.Response(410, text="Gone")

    client = RunPodClient(KEY, transport=httpx.MockTransport(gone))
    with pytest.raises(ApiError, match=r"retired its GraphQL API.*--api rest"):
        run(client.list_pods())


# --- rate-limit headers, SSE -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ratelimit", "policy", "expected"),
    [
        ('"minute";r=0;t=12, "hour";r=2800;t=1812', None, ("minute", 12.0)),
        ('"minute";r=3;t=12', None, None),
        ('"minute";r=0', '"minute";q=60;w=60', ("minute", 60.0)),
        ("garbage;;;,,=", None, None),
        ('"day";r=0;t=1e12', None, ("day", 86400.0)),
        (None, None, None),
    ],
)
def test_exhausted_windows(ratelimit: str | None, policy: str | None, expected: object) -> None:
    assert exhausted_for(ratelimit, policy) == expected


def test_sse_events_come_out_whole_across_chunks() -> None:
    parser = EventParser()
    stream = (
        b"id: 2026-06-01T12:02:03Z/000000000001\n"
        b'data: {"ts":"2026-06-01T12:02:03Z","source":"container","line":"Model loaded."}\n\n'
        b": keep-alive\n\nid: 2/2\r\ndata: not json\r\n\r\n"
    )
    events = [e for i in range(0, len(stream), 7) for e in parser.feed(stream[i : i + 7])]
    assert [(e.id, e.line) for e in events] == [
        ("2026-06-01T12:02:03Z/000000000001", "Model loaded."),
        ("2/2", "not json"),
    ]


def test_sse_refuses_an_endless_line() -> None:
    parser = EventParser()
    with pytest.raises(ValueError, match="longer than"):
        list(parser.feed(b"x" * (2 << 20)))


def test_pod_logs_prints_the_container_lines_escaped() -> None:
    body = example("/v2/pods/{id}/logs", "get").encode() + (
        b'\nid: 2\ndata: {"line":"\\u001b[2Jwiped?"}\n\n'
    )
    server = FakeRest(
        httpx.Response(200, content=body, headers={"Content-Type": "text/event-stream"})
    )
    lines: list[str] = []
    count = run(make(server).pod_logs("7h9k2m4n6p", lines.append, tail=50))
    assert lines == ["Model loaded.", "\\x1b[2Jwiped?"] and count == 2
    sent = server.requests[0]
    assert sent.url.path == "/v2/pods/7h9k2m4n6p/logs"
    assert dict(sent.url.params) == {"source": "container", "tail": "50"}


def test_pod_logs_of_an_unknown_pod_is_not_found() -> None:
    server = FakeRest(problem(404, "pod not found"))
    with pytest.raises(PodNotFoundError):
        run(make(server).pod_logs("nope", print))


def sse(*events: tuple[str, str]) -> httpx.Response:
    body = "".join(f"id: {i}\ndata: {json.dumps({'line': line})}\n\n" for i, line in events)
    return httpx.Response(200, content=body.encode(), headers={"Content-Type": "text/event-stream"})


def test_following_resumes_after_the_last_event_and_gives_up_on_a_dead_stream() -> None:
    quiet = [sse() for _ in range(7)]
    server = FakeRest(sse(("1/1", "one")), sse(("1/2", "two")), *quiet)
    lines: list[str] = []
    sleeps = Sleeps()
    count = run(make(server, sleeps).pod_logs("p1", lines.append, follow=True))
    assert lines == ["one", "two"] and count == 2
    assert "Last-Event-ID" not in server.requests[0].headers
    assert server.requests[1].headers["Last-Event-ID"] == "1/1"
    assert server.requests[-1].headers["Last-Event-ID"] == "1/2"
    assert len(sleeps.delays) == len(server.requests) - 1 and max(sleeps.delays) <= 15.0


def test_an_error_answer_to_a_log_request_is_read_up_to_its_cap() -> None:
    server = FakeRest(httpx.Response(500, content=b"x" * (2 << 20)))
    with pytest.raises(ApiError, match="larger than"):
        run(make(server, retry=RetryPolicy(max_attempts=1)).pod_logs("p1", print))


def test_an_unknown_podctl_api_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from reconciler.cli import run as podctl

    spec = tmp_path / "podctl.yaml"
    spec.write_text(
        "version: 1\nstack: s\npods:\n  a:\n    image: i\n    gpu: {type: NVIDIA RTX A4000}\n"
    )
    monkeypatch.setenv("PODCTL_API", "soap")
    monkeypatch.setenv("RUNPOD_API_KEY", KEY)
    assert podctl(["plan", "-f", str(spec)]) == 2
    assert "PODCTL_API 'soap' is no RunPod API podctl speaks: use graphql or rest." in (
        capsys.readouterr().err
    )
    assert podctl(["--api", "soap", "plan", "-f", str(spec)]) == 2


def test_a_log_snapshot_ends_by_the_request_deadline_whatever_the_server_sends() -> None:
    class Trickle(httpx.AsyncByteStream):
        """A keep-alive comment at once, again and again: never quiet, never a line."""

        async def __aiter__(self) -> Any:
            while True:
                await asyncio.sleep(0)
                yield b": keep-alive\n"

    ticks = iter(range(10**6))
    client = RestClient(
        KEY,
        transport=httpx.MockTransport(lambda _: httpx.Response(200, stream=Trickle())),
        clock=lambda: float(next(ticks)),  # one second per look at the clock
        request_deadline_s=50.0,
    )
    lines: list[str] = []
    assert run(client.pod_logs("p1", lines.append)) == 0
    assert lines == []
    assert next(ticks) < 100  # it stopped at the deadline, not at the end of the counter


def test_readiness_gives_up_at_once_on_a_v2_container_error() -> None:
    from reconciler.executor.readiness import NotReadyError, Readiness
    from reconciler.model import ActualState

    errored = wire.parse_pod(v2_pod(status="ERROR", runtime=None))
    assert errored.container_failed and not errored.runtime_ready

    class Api:
        async def list_pods(self) -> ActualState:
            return ActualState(pods={errored.pod_id: errored})

    async def waiting() -> Readiness:
        sleeps = Sleeps()
        readiness = Readiness(api=Api(), sleep=sleeps, clock=sleeps.clock)  # type: ignore[arg-type]
        starting = wire.parse_pod(v2_pod(status="STARTING", runtime=None))
        with pytest.raises(NotReadyError, match="in ERROR, an unrecoverable error"):
            await readiness.wait(starting, needs_ssh=True, timeout_s=600)
        return readiness

    assert run(waiting()).polls == 1  # not after the 600 s timeout
