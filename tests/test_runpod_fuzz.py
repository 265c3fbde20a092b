"""RunPodClient fed garbage: every outcome is a result or a typed ApiError that hides the key.

Hypothesis draws HTTP answers (status, headers, body) of every odd shape a broken proxy or a
changed API could send: non-JSON bytes, HTML error pages, JSON of the wrong types, missing
fields, nulls where objects belong, huge and non-finite numbers, `errors` of odd shapes, and
the key echoed back. Each operation of the client is called against them through MockTransport.
"""

from __future__ import annotations

import asyncio
import copy
import json
import traceback
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.backends.runpod_graphql import RetryPolicy, RunPodClient
from reconciler.errors import ApiError, ApiResponseError, PodctlError
from reconciler.model import ActualPod, ActualState, PodStatus
from reconciler.podops import PodEdit
from tests.test_runpod_client import KEY, create_request, pod_json

Call = Callable[[RunPodClient], Awaitable[object]]

# each operation, the `data` key its answer lives under, and a check of a successful result
OPERATIONS: dict[str, tuple[Call, str, Callable[[object], bool]]] = {
    "list_pods": (lambda c: c.list_pods(), "myself", lambda r: isinstance(r, ActualState)),
    "get_pod": (
        lambda c: c.get_pod("abc123"),
        "pod",
        lambda r: r is None or isinstance(r, ActualPod),
    ),
    "gpu_prices": (
        lambda c: c.gpu_prices(["NVIDIA GeForce RTX 4090", "NVIDIA A40"]),
        "gpuTypes",
        lambda r: isinstance(r, dict),
    ),
    "create_pod": (
        lambda c: c.create_pod(create_request()),
        "podFindAndDeployOnDemand",
        lambda r: isinstance(r, ActualPod),
    ),
    "create_spot_pod": (
        lambda c: c.create_pod(create_request(bid_per_gpu=0.3)),
        "podRentInterruptable",
        lambda r: isinstance(r, ActualPod),
    ),
    "resume_pod": (
        lambda c: c.resume_pod("abc123", 1),
        "podResume",
        lambda r: isinstance(r, ActualPod),
    ),
    "bid_resume_pod": (
        lambda c: c.bid_resume_pod("abc123", 0.3, 1),
        "podBidResume",
        lambda r: isinstance(r, ActualPod),
    ),
    "stop_pod": (
        lambda c: c.stop_pod("abc123"),
        "podStop",
        lambda r: isinstance(r, PodStatus),
    ),
    "terminate_pod": (
        lambda c: c.terminate_pod("abc123"),
        "podTerminate",
        lambda r: isinstance(r, bool),
    ),
    "edit_pod": (
        lambda c: c.edit_pod(
            "abc123",
            PodEdit(
                image="img",
                container_disk_gb=10,
                volume_gb=20,
                volume_mount="/workspace",
                env={"A": "1"},
                ports=["22/tcp"],
            ),
        ),
        "podEditJob",
        lambda r: isinstance(r, ActualPod),
    ),
}

# --- strategies -------------------------------------------------------------------------------

odd_numbers = st.one_of(
    st.integers(),
    st.integers(min_value=10**18, max_value=10**400),
    st.integers(min_value=-(10**400), max_value=-(10**18)),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, -1, 1e308, -1e308, 5e-324, 2**63, 2**64]),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    odd_numbers,
    st.text(max_size=30),
    st.just(KEY),
    st.sampled_from(["RUNNING", "EXITED", "22/tcp", "INTERRUPTABLE", "PODCTL_UID=x", ""]),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)
POD_KEYS = list(pod_json())
MACHINE_KEYS = list(pod_json()["machine"])  # type: ignore[call-overload]
PORT_KEYS = ["ip", "isIpPublic", "privatePort", "publicPort", "type"]


@st.composite
def broken_pods(draw: st.DrawFn) -> object:
    """A valid pod with some fields replaced by garbage, removed, or nulled."""
    pod: dict[str, Any] = copy.deepcopy(pod_json())
    for key in draw(st.lists(st.sampled_from(POD_KEYS), max_size=4)):
        pod[key] = draw(json_values)
    for key in draw(st.lists(st.sampled_from(POD_KEYS), max_size=2)):
        pod.pop(key, None)
    if isinstance(pod.get("machine"), dict):
        for key in draw(st.lists(st.sampled_from(MACHINE_KEYS), max_size=2)):
            pod["machine"][key] = draw(json_values)
    runtime = pod.get("runtime")
    if isinstance(runtime, dict) and isinstance(runtime.get("ports"), list) and runtime["ports"]:
        port = runtime["ports"][-1]
        for key in draw(st.lists(st.sampled_from(PORT_KEYS), max_size=3)):
            port[key] = draw(json_values)
    return pod


@st.composite
def broken_gpu_types(draw: st.DrawFn) -> object:
    gpu: dict[str, Any] = {
        "id": "NVIDIA A40",
        "displayName": "A40",
        "memoryInGb": 48,
        "secureCloud": True,
        "communityCloud": True,
        "maxGpuCount": 8,
        "lowestPrice": {
            "uninterruptablePrice": 0.4,
            "minimumBidPrice": 0.2,
            "stockStatus": "High",
            "availableGpuCounts": [1, 2],
        },
    }
    for key in draw(st.lists(st.sampled_from(list(gpu)), max_size=3)):
        gpu[key] = draw(json_values)
    price = gpu.get("lowestPrice")
    if isinstance(price, dict) and price:
        for key in draw(st.lists(st.sampled_from(list(price)), max_size=2)):
            price[key] = draw(json_values)
    return draw(st.lists(st.one_of(st.just(gpu), json_values), max_size=3))


def data_for(key: str) -> st.SearchStrategy[object]:
    """`data` of an answer for the operation whose result lives under `key`."""
    value: st.SearchStrategy[object]
    if key == "myself":
        value = st.one_of(
            json_values,
            st.fixed_dictionaries({"pods": st.one_of(json_values, st.lists(broken_pods()))}),
        )
    elif key == "gpuTypes":
        value = st.one_of(json_values, broken_gpu_types())
    elif key == "podStop":
        value = st.one_of(
            json_values, st.fixed_dictionaries({"id": scalars, "desiredStatus": scalars})
        )
    else:
        value = st.one_of(json_values, broken_pods())
    return st.one_of(json_values, st.fixed_dictionaries({key: value}))


odd_errors = st.one_of(
    json_values,
    st.lists(
        st.one_of(
            json_values,
            st.fixed_dictionaries(
                {"message": scalars},
                optional={"extensions": json_values, "path": json_values},
            ),
            st.sampled_from(
                [
                    {"message": f"Unauthorized key {KEY}"},
                    {"message": "Something went wrong. Please try again later."},
                    {"message": "There are no longer any instances available"},
                    {"message": "pod not found to terminate"},
                    {"message": "x" * 5000},
                    {"message": "boom", "extensions": {"code": "INTERNAL_SERVER_ERROR"}},
                    {"message": "?", "extensions": {"code": "UNAUTHENTICATED", "key": KEY}},
                ]
            ),
        ),
        max_size=3,
    ),
)

HTML_PAGE = (
    b"<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1>"
    b"<hr>cloudflare</body></html>\n"
)


def bodies(key: str) -> st.SearchStrategy[bytes]:
    def dump(value: object) -> bytes:
        return json.dumps(value).encode()  # NaN and Infinity as JSON's common extensions

    payloads = st.one_of(
        json_values,
        st.fixed_dictionaries({"data": data_for(key)}, optional={"errors": odd_errors}),
        st.fixed_dictionaries({"errors": odd_errors}, optional={"data": json_values}),
    )
    return st.one_of(
        payloads.map(dump),
        st.binary(max_size=64),
        st.sampled_from(
            [
                HTML_PAGE,
                b"",
                b"null",
                b"[]",
                b'{"data": ',  # truncated
                b"\xff\xfe{}",  # not UTF-8
                b"[" * 100_000 + b"]" * 100_000,  # deeper than any parser's recursion limit
                b'{"data": {"pod": ' * 5_000 + b"null" + b"}}" * 5_000,
                f'{{"errors": [{{"message": "bad key {KEY}"}}]}}'.encode(),
            ]
        ),
    )


statuses = st.sampled_from([200, 200, 200, 201, 204, 301, 400, 401, 403, 404, 418, 429, 500, 502])
retry_afters = st.one_of(
    st.none(),
    st.sampled_from(
        ["1", "0", "-5", "nan", "inf", "1e309", "soon", "Wed, 21 Oct 2015 07:28:00 GMT"]
    ),
    st.text(alphabet="0123456789.-e", max_size=8),
)


@st.composite
def answers(draw: st.DrawFn, key: str) -> httpx.Response:
    headers = {"Content-Type": draw(st.sampled_from(["application/json", "text/html"]))}
    retry_after = draw(retry_afters)
    if retry_after is not None:
        headers["Retry-After"] = retry_after
    return httpx.Response(draw(statuses), content=draw(bodies(key)), headers=headers)


# --- the property -----------------------------------------------------------------------------


def call_with(operation: str, replies: list[httpx.Response]) -> object:
    """Run one operation against the replies (the last repeats); the result or the exception."""
    call, _key, _ok = OPERATIONS[operation]
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        reply = replies[min(len(sent), len(replies)) - 1]
        return httpx.Response(reply.status_code, content=reply.content, headers=reply.headers)

    async def no_sleep(_delay: float) -> None:
        return None

    async def main() -> object:
        async with RunPodClient(
            KEY,
            api_url="https://runpod.test",
            transport=httpx.MockTransport(handler),
            retry=RetryPolicy(max_attempts=3, base_delay=0.1, max_delay=1.0, max_total_delay=5.0),
            sleep=no_sleep,
            random=lambda: 0.5,
        ) as client:
            try:
                return await call(client)
            except PodctlError as exc:
                return exc

    outcome = asyncio.run(main())
    assert 1 <= len(sent) <= 3
    return outcome


def check_outcome(operation: str, outcome: object) -> None:
    _call, _key, is_result = OPERATIONS[operation]
    if not isinstance(outcome, PodctlError):
        assert is_result(outcome), repr(outcome)
        return
    assert isinstance(outcome, ApiError), repr(outcome)
    text = str(outcome)
    assert text.startswith("RunPod "), text  # says who answered what
    assert len(text) < 1000, text[:200]
    shown = "".join(traceback.format_exception(outcome)) + repr(outcome) + repr(outcome.errors)
    assert KEY not in shown


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), operation=st.sampled_from(sorted(OPERATIONS)))
def test_any_answer_is_a_result_or_a_typed_error(data: st.DataObject, operation: str) -> None:
    key = OPERATIONS[operation][1]
    replies = data.draw(st.lists(answers(key), min_size=1, max_size=3))
    check_outcome(operation, call_with(operation, replies))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), operation=st.sampled_from(sorted(OPERATIONS)))
def test_wrong_types_in_a_success_answer(data: st.DataObject, operation: str) -> None:
    """HTTP 200, `data` of roughly the right shape with garbage inside: the parser's job."""
    key = OPERATIONS[operation][1]
    body = json.dumps({"data": data.draw(data_for(key))}).encode()
    outcome = call_with(operation, [httpx.Response(200, content=body)])
    check_outcome(operation, outcome)


def test_deep_nesting_is_a_response_error_not_a_recursion_error() -> None:
    body = b"[" * 100_000 + b"]" * 100_000
    outcome = call_with("list_pods", [httpx.Response(200, content=body)])
    assert isinstance(outcome, ApiResponseError)
    assert str(outcome) == "RunPod ListPods: the answer is not a JSON object"


def test_huge_numbers_are_a_response_error() -> None:
    pod = pod_json(costPerHr=10**400, podType="INTERRUPTABLE")
    body = json.dumps({"data": {"pod": pod}}).encode()
    outcome = call_with("get_pod", [httpx.Response(200, content=body)])
    assert isinstance(outcome, ApiResponseError)
    assert str(outcome) == "RunPod answer: data.pod.costPerHr is not a finite number"


def test_a_huge_error_message_is_cut_short() -> None:
    body = json.dumps({"errors": [{"message": "no " * 10_000}]}).encode()
    outcome = call_with("stop_pod", [httpx.Response(200, content=body)])
    assert isinstance(outcome, ApiError)
    assert str(outcome).startswith("RunPod StopPod: no no")
    assert str(outcome).endswith("… (29,999 characters in all)")


def test_odd_gpu_counts_are_named_in_the_error() -> None:
    gpu = {"id": "NVIDIA A40", "lowestPrice": {"availableGpuCounts": [1, "2"]}}
    body = json.dumps({"data": {"gpuTypes": [gpu]}}).encode()
    outcome = call_with("gpu_prices", [httpx.Response(200, content=body)])
    assert isinstance(outcome, ApiResponseError)
    assert str(outcome) == (
        "RunPod answer: data.gpuTypes[0].lowestPrice.availableGpuCounts is not a list of "
        "whole numbers"
    )
