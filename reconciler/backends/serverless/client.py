"""JobApi: RunPod's queue-job routes over httpx (runpod-serverless.md §2), bounded and polite.

Which failures are retried, and how:
- 429 (§2.1 rate limits): waited out (`Retry-After` when sent, else backoff) on every route,
  /run included: a refused request was not queued.
- A refused connection (nothing sent): retried on every route.
- A timeout, reset or 5xx after a /run or /runsync was sent is ambiguous (the job may be
  queued; RunPod has no idempotency key and no listing, §2.7): `SubmitLost`, never retried.
- Reads (/status, /stream, /health) retry timeouts, resets and 5xx too.
Backoff: full jitter, from 0.5 s doubling to 10 s, within a total budget per call.
The API key goes in the Authorization header only; no message carries it.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from reconciler.backends.retry import parse_retry_after
from reconciler.backends.serverless.errors import JobApiError, JobGone, SubmitLost
from reconciler.errors import PodctlError

ENDPOINT_BASE_ENV = "RUNPOD_ENDPOINT_BASE_URL"  # the variable runpod-python reads (§2.8)
DEFAULT_BASE_URL = "https://api.runpod.ai/v2"
MAX_ANSWER_BYTES = 32 * 1000 * 1000  # above /runsync's 20 MB payload limit (§2.1)
BACKOFF_FIRST_S = 0.5
BACKOFF_MAX_S = 10.0
CALL_BUDGET_S = 300.0  # one call gives up after this long of retries
SUBMIT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
READ_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
_READS = frozenset({"status", "stream", "health"})
_SUBMITS = frozenset({"run", "runsync"})

OnRetry = Callable[[str], None]


def endpoint_base_url(env: Mapping[str, str], sandbox_url: str | None = None) -> str:
    """The data plane's base: the sandbox's, else $RUNPOD_ENDPOINT_BASE_URL, else RunPod's."""
    if sandbox_url is not None:
        return sandbox_url.rstrip("/") + "/serverless/v2"
    base = (env.get(ENDPOINT_BASE_ENV) or DEFAULT_BASE_URL).strip().rstrip("/")
    parts = urllib.parse.urlsplit(base)
    loopback = parts.hostname in ("127.0.0.1", "localhost", "::1")
    if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
        raise PodctlError(
            f"{ENDPOINT_BASE_ENV} must be an https:// URL (plain http only to loopback); "
            f"got {base[:80]!r}"
        )
    return base


def _seg(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def _backoff(attempt: int, rand: Callable[[], float]) -> float:
    """Full jitter in [first/2, min(max, first * 2^attempt)] (never a busy zero)."""
    ceiling = min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2.0**attempt)
    return ceiling / 2 + rand() * ceiling / 2


class JobApi:
    """`async with JobApi(key, base) as api:`; every method returns the decoded JSON answer."""

    def __init__(
        self,
        api_key: str,
        base_url: str = DEFAULT_BASE_URL,
        *,
        on_retry: OnRetry | None = None,
        budget_s: float = CALL_BUDGET_S,
        transport: httpx.AsyncBaseTransport | None = None,
        rand: Callable[[], float] = random.random,
        max_connections: int = 100,
    ) -> None:
        self._key = api_key
        self.base_url = base_url.rstrip("/")
        self._on_retry = on_retry
        self._budget_s = budget_s
        self._rand = rand
        limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=32)
        self._http = httpx.AsyncClient(
            headers={"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"},
            limits=limits,
            transport=transport,
            follow_redirects=False,
        )
        self.request_count = 0
        self.requests_by_route: dict[str, int] = {}
        self.rate_limited = 0  # 429 answers seen

    async def __aenter__(self) -> JobApi:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- routes ------------------------------------------------------------------------------

    async def run(self, endpoint_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return await self._call("POST", "run", endpoint_id, None, body)

    async def runsync(
        self, endpoint_id: str, body: Mapping[str, Any], wait_ms: int = 90_000
    ) -> dict[str, Any]:
        return await self._call("POST", "runsync", endpoint_id, None, body, wait_ms=wait_ms)

    async def status(self, endpoint_id: str, job_id: str) -> dict[str, Any]:
        return await self._call("GET", "status", endpoint_id, job_id)

    async def stream(self, endpoint_id: str, job_id: str) -> dict[str, Any]:
        return await self._call("GET", "stream", endpoint_id, job_id)

    async def cancel(self, endpoint_id: str, job_id: str) -> dict[str, Any]:
        return await self._call("POST", "cancel", endpoint_id, job_id)

    async def retry(self, endpoint_id: str, job_id: str) -> dict[str, Any]:
        return await self._call("POST", "retry", endpoint_id, job_id)

    async def purge_queue(self, endpoint_id: str) -> dict[str, Any]:
        return await self._call("POST", "purge-queue", endpoint_id, None)

    async def health(self, endpoint_id: str) -> dict[str, Any]:
        return await self._call("GET", "health", endpoint_id, None)

    # -- transport ---------------------------------------------------------------------------

    def _url(self, route: str, endpoint_id: str, job_id: str | None, wait_ms: int | None) -> str:
        url = f"{self.base_url}/{_seg(endpoint_id)}/{route}"
        if job_id is not None:
            url += f"/{_seg(job_id)}"
        if wait_ms is not None:
            url += f"?wait={int(wait_ms)}"
        return url

    async def _call(
        self,
        method: str,
        route: str,
        endpoint_id: str,
        job_id: str | None,
        body: Mapping[str, Any] | None = None,
        *,
        wait_ms: int | None = None,
    ) -> dict[str, Any]:
        url = self._url(route, endpoint_id, job_id, wait_ms)
        content = None if body is None else json.dumps(body, separators=(",", ":")).encode()
        what = f"/{route}" + (f" of job {job_id}" if job_id else "") + f" on {endpoint_id}"
        timeout = SUBMIT_TIMEOUT if route in _SUBMITS else READ_TIMEOUT
        if route == "runsync" and wait_ms is not None:
            timeout = httpx.Timeout(wait_ms / 1000 + 30.0, connect=10.0)
        ends = time.monotonic() + self._budget_s
        attempt = 0
        while True:
            self.request_count += 1
            self.requests_by_route[route] = self.requests_by_route.get(route, 0) + 1
            delay: float | None = None
            try:
                status, data, headers = await self._send(method, url, content, timeout)
            except httpx.ConnectError as exc:  # nothing was sent: safe to send again
                reason = f"{what}: cannot connect ({type(exc).__name__})"
            except (httpx.TimeoutException, httpx.TransportError, _TooLarge) as exc:
                reason = f"{what}: {type(exc).__name__.lower()} before the answer"
                if route in _SUBMITS:
                    raise SubmitLost(f"{reason}: the job may be queued, or not") from None
                if isinstance(exc, _TooLarge):
                    raise JobApiError(
                        f"{what}: the answer is over {MAX_ANSWER_BYTES} bytes"
                    ) from None
            else:
                if status == 429:
                    self.rate_limited += 1
                    delay = parse_retry_after(headers.get("retry-after"))
                    reason = f"{what}: 429 Too Many Requests"
                elif status >= 500:
                    reason = f"{what}: HTTP {status}"
                    if route in _SUBMITS:
                        raise SubmitLost(
                            f"{reason} after it was sent: the job may be queued, or not", status
                        )
                    if route not in _READS:
                        said = _said(data).replace(self._key, "(key)") if self._key else ""
                        raise JobApiError(f"{reason}: {said}", status)
                elif status == 404 and job_id is not None:
                    raise JobGone(f"{what}: 404, the job is unknown or expired", 404)
                elif status == 401:
                    raise JobApiError(f"{what}: 401 Unauthorized: check RUNPOD_API_KEY", 401)
                elif status >= 400:
                    said = _said(data).replace(self._key, "(key)") if self._key else _said(data)
                    raise JobApiError(f"{what}: HTTP {status}: {said}", status)
                elif not isinstance(data, dict):
                    raise JobApiError(f"{what}: the answer is not a JSON object", status)
                else:
                    return data
            wait = _backoff(attempt, self._rand) if delay is None else min(delay, 60.0)
            if time.monotonic() + wait > ends:
                raise JobApiError(f"{reason}; gave up after {attempt + 1} tries")
            if self._on_retry is not None:
                self._on_retry(f"{reason}; retrying in {wait:.1f}s")
            attempt += 1
            await asyncio.sleep(wait)

    async def _send(
        self, method: str, url: str, content: bytes | None, timeout: httpx.Timeout
    ) -> tuple[int, Any, httpx.Headers]:
        async with self._http.stream(method, url, content=content, timeout=timeout) as resp:
            chunks: list[bytes] = []
            size = 0
            async for chunk in resp.aiter_bytes():
                size += len(chunk)
                if size > MAX_ANSWER_BYTES:
                    raise _TooLarge
                chunks.append(chunk)
        raw = b"".join(chunks)
        try:
            data = json.loads(raw) if raw else None
        except ValueError:
            data = raw[:200].decode("utf-8", "replace")
        return resp.status_code, data, resp.headers


class _TooLarge(Exception):
    pass


def _said(data: object) -> str:
    """What an error answer said, short (a server quoting the request never quotes the key:
    the key travels in a header only)."""
    if isinstance(data, dict):
        for key in ("error", "message", "detail"):
            value = data.get(key)
            if isinstance(value, str):
                return value[:200]
    text = data if isinstance(data, str) else json.dumps(data)[:200]
    return text[:200]
