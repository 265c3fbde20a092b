"""The serverless HTTP routes: control plane `/v2/serverless...` (a route of the REST v2
transport, `reconciler.sandbox.rest.api`, so it shares its auth, errors, RateLimit headers and
faults) and the data plane `/serverless/v2/{endpoint_id}/...` (RunPod's
`https://api.runpod.ai/v2`, §2), plus the admin view `GET /_sandbox/serverless`.

The data plane is a path prefix of the same server, so `RUNPOD_ENDPOINT_BASE_URL` (read by
runpod-python, §2.8) is `http://127.0.0.1:PORT/serverless/v2`. Like RunPod it has no job
listing and no idempotency key (§2.7).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs

from reconciler.sandbox.faults import Faults
from reconciler.sandbox.rest.api import Problem, Reply
from reconciler.sandbox.serverless import endpoints
from reconciler.sandbox.serverless.engine import Engine
from reconciler.sandbox.serverless.jobs import (
    DEFAULT_TTL_MS,
    EXECUTION_TIMEOUT_RANGE_MS,
    IN_QUEUE,
    RETRYABLE,
    TTL_RANGE_MS,
    Job,
    new_id,
)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

CONTROL = "/v2/serverless"
DATA = "/serverless/v2"
ADMIN = "/_sandbox/serverless"
PREFIXES = (DATA, ADMIN)  # CONTROL comes through the REST v2 transport (`control`)
NOT_FOUND = "endpoint not found"
# §2.1 payload limits; the status for a larger body is not documented: 400, the data plane's
# "bad request" of the same section [INF]
PAYLOAD_LIMIT = {"run": 10 * 1000 * 1000, "runsync": 20 * 1000 * 1000}
# §2.1 rate limits per endpoint: (requests, window seconds)
RATES = {
    "run": (1000, 10.0),
    "runsync": (2000, 10.0),
    "status": (2000, 10.0),
    "stream": (2000, 10.0),
    "cancel": (100, 10.0),
    "purge-queue": (2, 10.0),
}
HELD = {"runsync": 400, "stream": 400}  # §2.1 concurrent requests per endpoint, where they wait
RUNSYNC_WAIT_MS = (1000, 90_000, 300_000)  # §2.3: min, default, max of ?wait=
STREAM_HOLD_S = 9.0  # §2.3 an empty /stream holds ~10 s; below the SDK's 10 s read timeout
JOB_ROUTES = ("status", "stream", "cancel", "retry")
METHODS = {
    "run": "POST",
    "runsync": "POST",
    "status": "GET",
    "stream": "GET",
    "cancel": "POST",
    "retry": "POST",
    "purge-queue": "POST",
    "health": "GET",
}


class TooLarge(Exception):
    pass


def matches(path: str) -> bool:
    return any(path == p or path.startswith(p + "/") for p in PREFIXES)


class ServerlessRoutes:
    def __init__(self, engine: Engine, faults: Faults, api_key: str) -> None:
        self.engine = engine
        self.faults = faults
        self.api_key = api_key
        self.calls: dict[tuple[str, str], deque[float]] = {}
        self.held: Counter[tuple[str, str]] = Counter()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.engine.ensure_started()
        path = scope["path"].rstrip("/") or "/"
        if path == ADMIN or path.startswith(ADMIN + "/"):
            if not self._authorized(scope, bare=False):
                await _send(send, 401, {"errors": [{"message": "Unauthorized"}]})
                return
            if path == ADMIN + "/idle" and scope["method"] == "POST":
                await self._idle(receive, send)
                return
            await _send(send, 200, self.engine.status())
        else:
            await self._data(scope, receive, send, path)

    async def _idle(self, receive: Receive, send: Send) -> None:
        """`POST /_sandbox/serverless/idle {"endpoint": ID, "days": N}`: let N idle days pass
        for that endpoint, as RunPod's idle scale-down sees them (§1.6)."""
        try:
            body = json.loads(await _read_body(receive, 4096) or b"null")
        except (TooLarge, ValueError):
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("days"), int | float):
            await _send(send, 400, {"error": 'send {"endpoint": ID, "days": N}'})
            return
        endpoint = self.engine.endpoints.get(str(body.get("endpoint")))
        if endpoint is None:
            await _send(send, 404, {"error": NOT_FOUND})
            return
        lowered = endpoints.idle_scale_down(endpoint, float(body["days"]))
        self.engine.put_endpoint(lowered)
        await _send(send, 200, {"workers": lowered["workers"]})

    def _authorized(self, scope: Scope, *, bare: bool) -> bool:
        given = ""
        for name, value in scope.get("headers", []):
            if name == b"authorization":
                given = value.decode("latin-1").strip()
        if given.lower().startswith("bearer "):
            given = given[7:].strip()
        elif not bare:  # REST v2: Bearer only; the data plane also takes the bare key (§2.1)
            given = ""
        return bool(given) and hmac.compare_digest(given.encode(), self.api_key.encode())

    # -- control plane (§1) --------------------------------------------------------------------

    def control(
        self, method: str, path: str, body: bytes, scope: Scope, pod_scope: str | None
    ) -> Reply | None:
        """The `/v2/serverless` routes, served through the REST v2 transport (its auth, body
        cap, RateLimit headers and faults); None for any other path."""
        if not (path == CONTROL or path.startswith(CONTROL + "/")):
            return None
        self.engine.ensure_started()
        if pod_scope is not None:  # a pod's own key reaches only its pod (rest-v2 §14)
            raise Problem(403, "access denied")
        parts = path[len(CONTROL) :].strip("/").split("/") if path != CONTROL else []
        engine = self.engine
        base = _data_base(scope)
        if not parts:
            _allow(method, "GET", "POST")
            if method == "GET":
                views = [endpoints.view(e, base) for e in engine.endpoints.values()]
                return Reply(200, {"endpoints": views})
            created = endpoints.create(_json(body))
            engine.put_endpoint(created)
            return Reply(201, endpoints.view(created, base), "rest:createEndpoint")
        endpoint_id = parts[0]
        endpoint = engine.endpoints.get(endpoint_id)
        if len(parts) == 2 and parts[1] in ("workers", "releases"):
            _allow(method, "GET")
            if endpoint is None:
                raise Problem(404, NOT_FOUND)
            if parts[1] == "workers":
                return Reply(200, engine.endpoint_workers(endpoint_id))
            versions = [w["version"] for w in engine.endpoint_workers(endpoint_id)["workers"]]
            return Reply(200, endpoints.releases(endpoint, versions))
        if len(parts) != 1:
            raise Problem(404, "resource not found")
        _allow(method, "GET", "PATCH", "DELETE")
        if endpoint is None:
            raise Problem(404, NOT_FOUND)
        if method == "GET":
            return Reply(200, endpoints.view(endpoint, base))
        if method == "PATCH":
            updated = endpoints.update(endpoint, _json(body))
            engine.put_endpoint(updated)
            return Reply(200, endpoints.view(updated, base), "rest:updateEndpoint")
        engine.delete_endpoint(endpoint_id)
        return Reply(204, None, "rest:deleteEndpoint")

    # -- data plane (§2) -----------------------------------------------------------------------

    async def _data(self, scope: Scope, receive: Receive, send: Send, path: str) -> None:
        parts = path[len(DATA) :].strip("/").split("/")
        method = scope["method"]
        if not self._authorized(scope, bare=True):
            await _send(send, 401, {"error": "Unauthorized"})  # body shape unverified (§6)
            return
        endpoint_id = parts[0] if parts and parts[0] else ""
        route = parts[1] if len(parts) > 1 else ""
        job_id = parts[2] if len(parts) == 3 and route in JOB_ROUTES else None
        known = route in METHODS and (len(parts) == 3) == (route in JOB_ROUTES)
        endpoint = self.engine.endpoints.get(endpoint_id)
        if not known or endpoint is None or endpoint.get("type") != "QUEUE":
            await _send(send, 404, {"error": f"no route {method} {path}"})  # §2.1: 404
            return
        if method != METHODS[route]:
            await _send(send, 405, {"error": f"use {METHODS[route]} for /{route}"})
            return
        fault = self.faults.serverless.take_error(route)
        if fault:
            self.faults.injected["serverless-429"] += 1
        held = (endpoint_id, route)
        busy = route in HELD and self.held[held] >= HELD[route]
        if fault or busy or self._over_rate(endpoint_id, route):
            await _send(send, 429, {"error": "Too Many Requests"})  # §2.1
            return
        if route in HELD:  # these answers wait: count them against the concurrency limit
            self.held[held] += 1
        try:
            await self._answer(scope, receive, send, endpoint_id, route, job_id)
        finally:
            if route in HELD:
                self.held[held] -= 1

    async def _answer(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        endpoint_id: str,
        route: str,
        job_id: str | None,
    ) -> None:
        engine = self.engine
        if route in ("run", "runsync"):
            await self._submit(scope, receive, send, endpoint_id, route)
            return
        if route == "health":
            await _send(send, 200, engine.health(endpoint_id))
            return
        if route == "purge-queue":
            await _send(send, 200, {"removed": engine.purge(endpoint_id), "status": "completed"})
            return
        job = engine.job(endpoint_id, job_id or "")
        if job is None:  # unknown, or gone at TTL or after its retention (§2.1, §2.5)
            await _send(send, 404, {"error": "request does not exist"})
            return
        if route == "status":
            await _send(send, 200, job.view())
        elif route == "stream":
            await self._stream(send, job)
        elif route == "cancel":
            engine.cancel(job)
            await _send(send, 200, {"id": job.id, "status": job.status})
        elif job.status not in RETRYABLE:
            await _send(send, 400, {"error": f"job is {job.status}: only FAILED or TIMED_OUT"})
        else:
            engine.retry(job)
            await _send(send, 200, {"id": job.id, "status": IN_QUEUE})  # §2.3

    def _over_rate(self, endpoint_id: str, route: str) -> bool:
        if route not in RATES:
            return False
        limit, window = RATES[route]
        now = time.monotonic()
        calls = self.calls.setdefault((endpoint_id, route), deque())
        while calls and calls[0] <= now - window:
            calls.popleft()
        if len(calls) >= limit:
            return True
        calls.append(now)
        return False

    async def _submit(
        self, scope: Scope, receive: Receive, send: Send, endpoint_id: str, route: str
    ) -> None:
        try:
            raw = await _read_body(receive, PAYLOAD_LIMIT[route])
        except TooLarge:
            limit = PAYLOAD_LIMIT[route] // 1_000_000
            await _send(
                send, 400, {"error": f"request body exceeds the {limit} MB limit of /{route}"}
            )
            return
        try:
            job = _job_request(raw, endpoint_id, sync=route == "runsync")
        except ValueError as exc:
            await _send(send, 400, {"error": str(exc)})
            return
        engine = self.engine
        queued = {"id": job.id, "status": job.status}  # §2.3: the answer says IN_QUEUE
        engine.submit(job)
        if route == "run":
            if self.faults.serverless.take("lose_run"):
                self.faults.injected["serverless-lost-run"] += 1
                from reconciler.sandbox.app import _drop_connection

                await _drop_connection(send)
                return
            await _send(send, 200, queued)
            return
        qs = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        low, default, high = RUNSYNC_WAIT_MS
        try:
            wait_ms = int((qs.get("wait") or [default])[0])
        except ValueError:
            wait_ms = default
        deadline = time.monotonic() + min(max(wait_ms, low), high) / 1000
        while not job.terminal and job.id in engine.jobs:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(engine.event(job.id).wait(), left)
        if job.terminal:
            await _send(send, 200, job.view())
        else:
            await _send(send, 200, {"id": job.id, "status": job.status})

    async def _stream(self, send: Send, job: Job) -> None:
        deadline = time.monotonic() + STREAM_HOLD_S
        while not job.stream and not job.terminal and job.id in self.engine.jobs:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.engine.event(job.id).wait(), left)
        chunks = self.engine.take_stream(job)
        await _send(send, 200, {"status": job.status, "stream": chunks})


def _job_request(raw: bytes, endpoint_id: str, *, sync: bool) -> Job:
    """§2.2: `input` required; `webhook`; `policy` within its bounds."""
    try:
        body = json.loads(raw or b"null")
    except ValueError as exc:
        raise ValueError("request body is not valid JSON") from exc
    if not isinstance(body, dict) or "input" not in body:
        raise ValueError("request body must be a JSON object with an 'input' field")
    webhook = body.get("webhook")
    if webhook is not None and not isinstance(webhook, str):
        raise ValueError("webhook must be a URL string")
    policy = body.get("policy") or {}
    if not isinstance(policy, dict):
        raise ValueError("policy must be an object")
    execution = _ms(policy, "executionTimeout", EXECUTION_TIMEOUT_RANGE_MS)
    ttl = _ms(policy, "ttl", TTL_RANGE_MS)
    return Job(
        id=new_id(sync),
        endpoint_id=endpoint_id,
        input=body["input"],
        sync=sync,
        created_at=time.time(),
        webhook=webhook or None,
        execution_timeout_ms=execution,
        ttl_ms=DEFAULT_TTL_MS if ttl is None else ttl,
        low_priority=bool(policy.get("lowPriority", False)),
    )


def _ms(policy: dict[str, Any], key: str, bounds: tuple[int, int]) -> int | None:
    value = policy.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not bounds[0] <= value <= bounds[1]:
        raise ValueError(f"policy.{key} must be milliseconds between {bounds[0]} and {bounds[1]}")
    return value


def _allow(method: str, *allowed: str) -> None:
    if method not in allowed:  # rest-v2 §4.2: 405 with Allow
        allow = [(b"allow", ", ".join(allowed).encode())]
        raise Problem(405, "The requested method is not allowed for this path.", headers=allow)


def _json(body: bytes) -> Any:
    try:
        return json.loads(body or b"null")
    except ValueError:
        raise Problem(400, "request could not be processed") from None  # rest-v2 §4.2


def _data_base(scope: Scope) -> str:
    host, port = scope.get("server") or ("127.0.0.1", 80)
    return f"http://{host}:{port}{DATA}"


async def _read_body(receive: Receive, limit: int) -> bytes:
    """The body, or TooLarge past `limit` (the rest is read and dropped, up to 4x the limit,
    so that the client reads the answer instead of a broken pipe)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size <= limit:
            chunks.append(chunk)
        if not message.get("more_body") or size > 4 * limit:
            break
    if size > limit:
        raise TooLarge
    return b"".join(chunks)


async def _raw(
    send: Send,
    status: int,
    body: bytes,
    content_type: bytes,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    all_headers = [
        (b"content-type", content_type),
        (b"content-length", str(len(body)).encode()),
        *(headers or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": all_headers})
    await send({"type": "http.response.body", "body": body})


async def _send(
    send: Send,
    status: int,
    payload: Any,
    headers: list[tuple[bytes, bytes]] | None = None,
    content_type: bytes = b"application/json",
) -> None:
    body = json.dumps(payload, separators=(",", ":")).encode()
    await _raw(send, status, body, content_type, headers)
