"""The job API client against scripted answers: what is retried, what is ambiguous, what is
bounded, and that the key never reaches a message."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import pytest

from reconciler.backends.serverless import client as client_module
from reconciler.backends.serverless.client import JobApi, endpoint_base_url
from reconciler.backends.serverless.errors import JobApiError, JobGone, SubmitLost
from reconciler.errors import PodctlError

KEY = "rpa_SECRET_KEY_value_1234"


def api(handler: Callable[[httpx.Request], httpx.Response], **kw: object) -> JobApi:
    return JobApi(KEY, "https://api.example/v2", transport=httpx.MockTransport(handler), **kw)  # type: ignore[arg-type]


@pytest.fixture
def slept(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    delays: list[float] = []

    async def fake_sleep(delay: float) -> None:
        delays.append(delay)

    monkeypatch.setattr(asyncio, "sleep", fake_sleep)
    return delays


def test_429_waits_retry_after_then_succeeds(slept: list[float]) -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if len(calls) < 3:
            return httpx.Response(429, headers={"Retry-After": "2"}, json={"error": "slow"})
        return httpx.Response(200, json={"id": "j1", "status": "IN_QUEUE"})

    client = api(handler)
    answer = asyncio.run(client.run("ep1", {"input": {"x": 1}}))
    assert answer == {"id": "j1", "status": "IN_QUEUE"}
    assert slept == [2.0, 2.0]
    assert client.rate_limited == 2 and client.request_count == 3
    assert calls[0].url == "https://api.example/v2/ep1/run"
    assert calls[0].headers["authorization"] == f"Bearer {KEY}"
    assert calls[0].content == b'{"input":{"x":1}}'


def test_429_without_retry_after_backs_off_with_jitter_from_half_a_second(
    slept: list[float],
) -> None:
    count = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal count
        count += 1
        return httpx.Response(429) if count <= 6 else httpx.Response(200, json={"status": "X"})

    asyncio.run(api(handler, rand=lambda: 1.0).status("ep1", "j1"))
    assert slept == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0]
    slept.clear()
    count = 0
    asyncio.run(api(handler, rand=lambda: 0.0).status("ep1", "j1"))
    assert slept == [0.25, 0.5, 1.0, 2.0, 4.0, 5.0]


@pytest.mark.parametrize(
    "failure",
    [
        lambda r: (_ for _ in ()).throw(httpx.ReadTimeout("slow", request=r)),
        lambda r: (_ for _ in ()).throw(httpx.RemoteProtocolError("reset", request=r)),
        lambda r: httpx.Response(502, text="bad gateway"),
    ],
    ids=["timeout", "reset", "502"],
)
def test_a_run_whose_answer_is_lost_is_never_sent_twice(
    slept: list[float], failure: Callable[[httpx.Request], httpx.Response]
) -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return failure(request)

    with pytest.raises(SubmitLost, match="the job may be queued, or not"):
        asyncio.run(api(handler).run("ep1", {"input": 1}))
    assert calls == 1 and slept == []


def test_a_refused_connection_is_sent_again_even_for_run(slept: list[float]) -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(200, json={"id": "j2", "status": "IN_QUEUE"})

    assert asyncio.run(api(handler).run("ep1", {"input": 1}))["id"] == "j2"
    assert calls == 2


def test_reads_retry_resets_and_5xx(slept: list[float]) -> None:
    answers = iter([httpx.Response(503), httpx.Response(200, json={"status": "COMPLETED"})])

    def handler(request: httpx.Request) -> httpx.Response:
        return next(answers)

    assert asyncio.run(api(handler).status("ep1", "j1")) == {"status": "COMPLETED"}


def test_404_on_a_job_is_gone(slept: list[float]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, json={"error": "request does not exist"})

    with pytest.raises(JobGone):
        asyncio.run(api(handler).status("ep1", "j1"))


def test_answers_are_bounded(slept: list[float], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client_module, "MAX_ANSWER_BYTES", 1000)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"[" + b"1," * 5000 + b"1]")

    with pytest.raises(JobApiError, match="over 1000 bytes"):
        asyncio.run(api(handler).status("ep1", "j1"))


def test_the_key_never_reaches_a_message(slept: list[float]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"error": f"bad header {request.headers['authorization']}"})

    with pytest.raises(JobApiError) as caught:
        asyncio.run(api(handler).run("ep1", {"input": 1}))
    assert KEY not in str(caught.value) and "(key)" in str(caught.value)


def test_a_call_gives_up_within_its_budget(slept: list[float]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(429)

    with pytest.raises(JobApiError, match="gave up after"):
        asyncio.run(api(handler, budget_s=0.0).status("ep1", "j1"))


def test_base_url_from_the_sdk_variable_and_refusing_plain_http() -> None:
    assert endpoint_base_url({}) == "https://api.runpod.ai/v2"
    env = {"RUNPOD_ENDPOINT_BASE_URL": "http://127.0.0.1:9/serverless/v2/"}
    assert endpoint_base_url(env) == "http://127.0.0.1:9/serverless/v2"
    assert endpoint_base_url({}, "http://127.0.0.1:5") == "http://127.0.0.1:5/serverless/v2"
    with pytest.raises(PodctlError, match="must be an https:// URL"):
        endpoint_base_url({"RUNPOD_ENDPOINT_BASE_URL": "http://evil.example/v2"})
