"""The ASGI app: auth, faults, `POST /graphql`, `/_sandbox/*` admin; `/v2/...` goes to `rest`."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import os
import socket
import struct
from collections import Counter
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs

from reconciler.sandbox import catalog, schema
from reconciler.sandbox.faults import ANY, Faults, FaultSpecError, capacities, finite
from reconciler.sandbox.gpus import set_util
from reconciler.sandbox.rest import api as rest
from reconciler.sandbox.serverless import routes as serverless
from reconciler.sandbox.serverless.engine import Engine
from reconciler.sandbox.state import BusinessError, Store

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

GENERIC = "Something went wrong. Please try again later or contact support."
# HTTP 200 with a body that is not JSON: an answer cut short
GARBAGE_BODY = b'{"data": {"myself": {"pods": [{"id": "'
BAD_GATEWAY_HTML = (
    b"<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway"
    b"</h1></center><hr><center>cloudflare</center></body></html>\n"
)


ROUTES = ("/graphql", "/_sandbox/health", "/_sandbox/faults", "/_sandbox/status", "/_sandbox/reset")
# far above any request podctl sends (a pod's env is at most a few KiB), far below harm
MAX_BODY_BYTES = 1 << 20


def _err(message: str, code: str) -> dict[str, Any]:
    return {"errors": [{"message": message, "extensions": {"code": code}}]}


class SandboxApp:
    """One ASGI callable; state lives in `store`, faults in `faults`."""

    def __init__(
        self,
        store: Store,
        faults: Faults,
        api_key: str,
        *,
        on_change: Callable[[], Awaitable[None]] | None = None,
        info: Callable[[], dict[str, Any]] = dict,
    ) -> None:
        self.store = store
        self.faults = faults
        self.api_key = api_key
        self.on_change = on_change or _nothing
        self.info = info
        self.requests: Counter[str] = Counter()  # GraphQL requests received, since start/reset
        self.fields: Counter[str] = Counter()  # ... by top-level field (pod, myself, podStop...)
        # RunPod Serverless: /v2/serverless (through REST v2), data plane /serverless/v2/...
        engine = Engine(store.data_dir, faults, lambda: store.start_delay)
        self.serverless = serverless.ServerlessRoutes(engine, faults, api_key)
        # RunPod's REST v2 (`/v2/...`) over the same store and faults: reconciler/sandbox/rest
        self.rest = rest.RestApi(
            store,
            faults,
            api_key,
            on_change=self._changed,
            drop=_drop_connection,
            read_body=_read_body,
            max_body=MAX_BODY_BYTES,
            extra=self.serverless.control,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        path = scope["path"].rstrip("/") or "/"
        method = scope["method"]
        if serverless.matches(path):  # the data plane: auth and payload limits of its own
            await self.serverless(scope, receive, send)
            return
        if rest.handles(path):  # auth, body and faults of its own (runpod-rest-v2.md 1, 3, 4)
            await self.rest(scope, receive, send)
            return
        # the key and the size come from the headers: a stranger's body is never read
        if path not in ROUTES:
            await _json(send, 404, _err(f"No route {method} {path}", "NOT_FOUND"))
            return
        pod_scope = None  # a pod's own RUNPOD_API_KEY: GraphQL on that pod only
        if not self._authorized(scope):
            pod_scope = self.store.pod_for_key(_presented_key(scope))
            if pod_scope is None or path != "/graphql":
                await _json(send, 401, _err("Unauthorized", "UNAUTHENTICATED"))
                return
        body = await _read_body(scope, receive)
        if body is None:
            too_big = f"Request body larger than {MAX_BODY_BYTES} bytes"
            await _json(send, 413, _err(too_big, "PAYLOAD_TOO_LARGE"))
            return
        if path == "/_sandbox/health":
            self.serverless.engine.ensure_started()
            await _json(send, 200, {"ok": True, "pid": os.getpid(), "pods": len(self.store.pods)})
        elif path == "/graphql":
            await self._graphql(scope, method, body, send, pod_scope)
        else:
            await self._admin(path, method, body, send)

    async def _changed(self) -> None:
        await self.on_change()

    def _authorized(self, scope: Scope) -> bool:
        given = ""
        for name, value in scope.get("headers", []):
            if name == b"authorization":
                given = value.decode("latin-1").strip()
                if given.lower().startswith("bearer "):
                    given = given[7:].strip()
        if not given:
            qs = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            given = (qs.get("api_key") or [""])[0]
        return bool(given) and hmac.compare_digest(given.encode(), self.api_key.encode())

    async def _graphql(
        self, scope: Scope, method: str, body: bytes, send: Send, pod_scope: str | None = None
    ) -> None:
        faults = self.faults
        self.requests["total"] += 1
        if faults.latency_ms:
            await asyncio.sleep(faults.latency_ms / 1000)
        kind = faults.roll_error()
        if kind == "reset":
            await _drop_connection(send)
            return
        if kind == "429":
            headers = [(b"retry-after", str(faults.retry_after).encode())]
            await _json(send, 429, _err("Too Many Requests", "RATE_LIMITED"), headers)
            return
        if kind == "500":
            await _json(send, 500, _err(GENERIC, "INTERNAL_SERVER_ERROR"))
            return
        if kind == "502":
            await _raw(send, 502, BAD_GATEWAY_HTML, b"text/html")
            return
        if kind == "garbage":
            await _raw(send, 200, GARBAGE_BODY, b"application/json")
            return
        if method == "GET":
            qs = parse_qs(scope.get("query_string", b"").decode())
            request: Any = {"query": (qs.get("query") or [""])[0]}
        elif method == "POST":
            try:
                request = json.loads(body or b"{}")
            except ValueError:
                await _json(send, 400, _err("POST body is not JSON", "BAD_REQUEST"))
                return
        else:
            await _json(send, 405, _err("Use POST", "METHOD_NOT_ALLOWED"))
            return
        if not isinstance(request, dict) or not isinstance(request.get("query"), str):
            await _json(send, 400, _err("Must provide query string.", "BAD_REQUEST"))
            return
        variables = request.get("variables")
        if variables is not None and not isinstance(variables, dict):
            await _json(send, 400, _err("variables must be an object", "BAD_REQUEST"))
            return
        prepared = schema.prepare(request["query"])
        self.requests["mutations" if prepared.mutation else "queries"] += 1
        self.fields.update(prepared.root_fields)
        status, payload = schema.run_prepared(
            self.store, prepared, variables, request.get("operationName"), pod_scope
        )
        if prepared.mutation:
            await self.on_change()
            applied = status == 200 and not payload.get("errors")
            if applied and faults.take_lost_response(prepared.root_fields):
                await _drop_connection(send)
                return
        if kind == "wrong-types" and isinstance(payload.get("data"), dict):
            payload = {**payload, "data": faults.mangle(payload["data"])}
        await _json(send, status, payload)

    async def _admin(self, path: str, method: str, body: bytes, send: Send) -> None:
        try:
            request = json.loads(body or b"{}") if method in ("POST", "PUT") else {}
        except ValueError:
            await _json(send, 400, _err("body is not JSON", "BAD_REQUEST"))
            return
        if not isinstance(request, dict):
            await _json(send, 400, _err("body must be a JSON object", "BAD_REQUEST"))
            return
        if path == "/_sandbox/status":
            await _json(send, 200, self.status())
        elif path == "/_sandbox/reset":
            self.store.reset()
            self.serverless.engine.reset()
            self.faults.clear()
            self.requests.clear()
            self.fields.clear()
            self.rest.requests = 0
            await self.on_change()
            await _json(send, 200, self.status())
        elif method == "GET":
            await _json(send, 200, self.faults.describe())
        elif method == "DELETE":
            self.faults.clear()
            await _json(send, 200, self.faults.describe())
        else:
            try:
                self._apply_faults(request)
            except (FaultSpecError, BusinessError, ValueError, TypeError) as exc:
                await _json(send, 400, _err(str(exc), "BAD_REQUEST"))
                return
            await self.on_change()
            await _json(send, 200, self.faults.describe())

    def _apply_faults(self, request: dict[str, Any]) -> None:
        """Check the whole request first, so that a bad one changes nothing."""
        request = dict(request)
        stock = request.pop("stock", None) or {}  # {"GPU type": n} or {"GPU type": {cloud: n}}
        delay = request.pop("start_delay", None)
        util = request.pop("gpu_util", None) or {}  # {"<pod id>": percent}: its nvidia-smi
        # {"<pod id>" or "*": hours}: bill as if the pod had been as it is that much longer
        bill = request.pop("bill_hours", None) or {}
        if not isinstance(bill, dict) or any(
            (p != "*" and p not in self.store.ledger.segments)
            or isinstance(v, bool)
            or not isinstance(v, int | float)
            or not 0 <= v <= 24 * 365
            for p, v in bill.items()
        ):
            raise FaultSpecError("bill_hours must be {pod id or '*': hours 0-8760} of known pods")
        if not isinstance(util, dict) or any(
            p not in self.store.pods
            or isinstance(v, bool)
            or not isinstance(v, int)
            or not 0 <= v <= 100
            for p, v in util.items()
        ):
            raise FaultSpecError("gpu_util must be {pod id: percent 0-100} of existing pods")
        if not isinstance(stock, dict):
            raise FaultSpecError("stock must be an object: {GPU type: count}")
        counts: list[tuple[str, str | None, int]] = []
        for gpu, value in stock.items():
            if gpu not in catalog.GPU_BY_ID:
                raise FaultSpecError(f"unknown GPU type: {gpu}")
            per_cloud: dict[str | None, Any] = value if isinstance(value, dict) else {None: value}
            for cloud, count in per_cloud.items():
                if cloud is not None and cloud not in catalog.CLOUDS:
                    raise FaultSpecError(f"unknown cloud {cloud!r}: use {list(catalog.CLOUDS)}")
                if isinstance(count, bool) or not isinstance(count, int) or count < 0:
                    raise FaultSpecError(f"stock of {gpu} must be a count >= 0, not {count!r}")
                counts.append((gpu, cloud, count))
        start_delay = None if delay is None else finite(delay, "start_delay")
        lag = request.pop("billing_lag_s", None)
        billing_lag = None if lag is None else finite(lag, "billing_lag_s")  # refuses < 0
        preempt = request.get("preempt") or []
        missing = [p for p in preempt if p not in self.store.pods]
        if missing:
            raise FaultSpecError(f"no such pods to preempt: {missing}")
        wanted = capacities([*(request.get("exhaust") or []), *(request.get("restore") or [])])
        gpus = sorted({g for g, _ in wanted if g != ANY and g not in catalog.GPU_BY_ID})
        if gpus:
            raise FaultSpecError(f"unknown GPU types: {gpus}")
        self.faults.apply(request)  # all or nothing
        for gpu, cloud, count in counts:
            self.store.set_stock(gpu, cloud, count)
        if start_delay is not None:
            self.store.start_delay = start_delay
        if billing_lag is not None:
            self.store.ledger.lag_s = billing_lag
        for pod_id in preempt:
            self.store.preempt(pod_id)
        for pod_id, percent in util.items():
            set_util(self.store.data_dir, pod_id, percent)
        for pod_id, hours in bill.items():
            ids = self.store.ledger.open_pods() if pod_id == "*" else [pod_id]
            self.store.ledger.advance(ids, hours * 3600)
        if bill:
            self.store.save()

    def status(self) -> dict[str, Any]:
        pods = self.store.pods.values()
        return {
            **self.info(),
            "pods": len(self.store.pods),
            "running": sum(1 for p in pods if p.desired_status == "RUNNING"),
            "faults": self.faults.describe(),
            "requests": {
                "total": self.requests["total"],
                "queries": self.requests["queries"],
                "mutations": self.requests["mutations"],
                "by_field": dict(sorted(self.fields.items())),
            },
        }


def _presented_key(scope: Scope) -> str:
    """The key a request presents: `Authorization: Bearer`, else `?api_key=`."""
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            given = str(value.decode("latin-1")).strip()
            return given[7:].strip() if given.lower().startswith("bearer ") else given
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    return str((query.get("api_key") or [""])[0])


async def _nothing() -> None:
    return None


async def _read_body(scope: Scope, receive: Receive) -> bytes | None:
    """The request body, or None when it is (or says it is) over MAX_BODY_BYTES."""
    for name, value in scope.get("headers", []):
        if name == b"content-length" and value.strip().isdigit() and int(value) > MAX_BODY_BYTES:
            return None
    chunks = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
        if not message.get("more_body"):
            break
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


async def _json(
    send: Send, status: int, payload: Any, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    body = json.dumps(payload, separators=(",", ":")).encode()
    await _raw(send, status, body, b"application/json", headers)


async def _drop_connection(send: Send) -> None:
    """Reset the TCP connection without answering (the client sees ECONNRESET).

    ASGI has no way to say this, so reach the transport behind uvicorn's `send` (a bound
    method of its request cycle); SO_LINGER 0 makes close() send a RST instead of a FIN.
    """
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if transport is None:
        raise ConnectionAbortedError("sandbox fault: connection dropped")
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
