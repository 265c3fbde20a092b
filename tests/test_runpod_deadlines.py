"""RunPodClient's deadlines: one request's, and one call's with all its retries."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from reconciler.backends.runpod_graphql import RetryPolicy, RunPodClient
from reconciler.errors import TransientApiError


class Clock:
    """A clock the fake sleep moves forward (the real one is used for no decision here)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def busy(request: httpx.Request) -> httpx.Response:
    return httpx.Response(503, json={"errors": [{"message": "busy"}]}, headers={"Retry-After": "4"})


def client(handler: Any, clock: Clock, **kwargs: Any) -> RunPodClient:
    return RunPodClient(
        "key-123456",
        api_url="https://runpod.test",
        transport=httpx.MockTransport(handler),
        retry=RetryPolicy(max_attempts=10, max_total_delay=1000),
        sleep=clock.sleep,
        clock=clock,
        **kwargs,
    )


def test_no_retry_is_started_that_would_end_after_the_calls_deadline() -> None:
    clock = Clock()

    async def main() -> None:
        async with client(busy, clock, call_deadline_s=10.0) as api:
            await api.list_pods()

    with pytest.raises(TransientApiError) as info:
        asyncio.run(main())
    assert clock.slept == [4.0, 4.0]  # a third wait would end at 12 s, past the 10 s deadline
    assert info.value.message == (
        "RunPod ListPods: HTTP 503: busy; no retry: the 10s deadline for the whole ListPods "
        "call (all its attempts) would pass first"
    )


def test_a_request_that_never_answers_ends_at_its_own_deadline() -> None:
    async def silent(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    seen: list[str] = []

    async def main() -> None:
        api = RunPodClient(
            "key-123456",
            api_url="https://runpod.test",
            transport=httpx.MockTransport(silent),
            retry=RetryPolicy(max_attempts=1),
            request_deadline_s=0.05,
            on_request=seen.append,
        )
        async with api:
            await api.terminate_pod("p1")

    with pytest.raises(TransientApiError) as info:
        asyncio.run(main())
    assert info.value.message == (
        "RunPod TerminatePod: no complete answer from https://runpod.test/graphql: the 0.05s "
        "deadline for one request ran out"
    )
    assert info.value.maybe_processed  # it may have been acted on: a create is not retried
    assert seen == ["TerminatePod"]
