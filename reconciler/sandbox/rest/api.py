"""RunPod REST v2 on the sandbox: routing, auth, faults and the pod and GPU-catalog handlers.

Every handler works on the same `Store` as GraphQL, so a pod made over one API is seen and
changed over the other (runpod-rest-v2.md 12). Section numbers in comments are that file's.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import re
import secrets
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from reconciler.sandbox import billing, catalog, layout
from reconciler.sandbox.faults import Faults
from reconciler.sandbox.rest import validate, views
from reconciler.sandbox.state import NO_CAPACITY, BusinessError, Pod, Store, parse_ports

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

PROBLEM = b"application/problem+json"
TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    402: "Payment Required",
    409: "Conflict",
    413: "Content Too Large",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
}
# 3: the OpenAPI's window names; its quotas are examples, the real ones undocumented: the
# sandbox advertises generous ones and never enforces them (only the 429 fault rejects)
WINDOWS = (("minute", 6000, 60), ("hour", 300000, 3600), ("day", 5000000, 86400))
BAD_GATEWAY_HTML = (
    b"<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway"
    b"</h1></center><hr><center>cloudflare</center></body></html>\n"
)
GARBAGE_BODY = b'{"pods": [{"id": "'
LOG_POLL_S = 0.25
LOG_STREAM_MAX_S = 3600.0  # the stream never ends by itself (5.9); the sandbox bounds it
_PORT_ITEM = re.compile(r"^\d{1,5}/(http|tcp)$")
_CUDA = re.compile(r"^\d+\.\d+$")
_CUDA_FLOOR = re.compile(r"^\d+(\.\d+)?$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")


class Problem(Exception):
    """An RFC 9457 answer: `{title, status, detail, errors?}` (4.1)."""

    def __init__(
        self,
        status: int,
        detail: str,
        errors: list[str] | None = None,
        headers: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = errors
        self.headers = headers or []

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "title": TITLES.get(self.status, "Error"),
            "status": self.status,
            "detail": self.detail,
        }
        if self.errors is not None:
            out["errors"] = self.errors
        return out


NOT_FOUND_POD = "pod not found"  # 4.1's example detail
DENIED = "access denied"  # 4.2 403


def handles(path: str) -> bool:
    """Whether `path` belongs to the REST API (everything under `/v2`)."""
    return path == "/v2" or path.startswith("/v2/")


@dataclass
class Reply:
    status: int
    body: Any = None  # JSON, or None for an empty body (204)
    mutation: str | None = None  # the REST operation name, for lost-response faults


# (method, path, body, scope, pod scope) -> the answer, or None when the route is not its own
ExtraRoutes = Callable[[str, str, bytes, Scope, str | None], Reply | None]


@dataclass
class _Windows:
    """Requests counted per fixed window, for the `RateLimit` header (3)."""

    starts: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def headers(self, now: float, *, exhausted_for: int | None = None) -> list[tuple[bytes, bytes]]:
        parts, policy = [], []
        for name, quota, width in WINDOWS:
            if now - self.starts.get(name, 0.0) >= width:
                self.starts[name] = now
                self.counts[name] = 0
            if exhausted_for is None:
                self.counts[name] = self.counts.get(name, 0) + 1
            left = max(0, quota - self.counts[name])
            reset = max(0, int(self.starts[name] + width - now))
            if exhausted_for is not None and name == "minute":
                left, reset = 0, exhausted_for
            parts.append(f'"{name}";r={left};t={reset}')
            policy.append(f'"{name}";q={quota};w={width}')
        return [
            (b"ratelimit", ", ".join(parts).encode()),
            (b"ratelimit-policy", ", ".join(policy).encode()),
        ]


class RestApi:
    """The `/v2/...` routes; `SandboxApp` hands every such request here."""

    def __init__(
        self,
        store: Store,
        faults: Faults,
        api_key: str,
        *,
        on_change: Callable[[], Awaitable[None]],
        drop: Callable[[Send], Awaitable[None]],
        read_body: Callable[[Scope, Receive], Awaitable[bytes | None]],
        max_body: int,
        extra: ExtraRoutes | None = None,
    ) -> None:
        self.store = store
        self.faults = faults
        self.api_key = api_key
        self.on_change = on_change
        self.drop = drop  # the app's: reset the connection without answering
        self.read_body = read_body  # the app's: None when over `max_body`
        self.max_body = max_body
        self.extra = extra  # more /v2 routes (serverless endpoints): a Reply, or None
        self.windows = _Windows()
        self.requests = 0

    # -- transport ---------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"].rstrip("/") or "/"
        method = scope["method"]
        now = time.time()
        key = _bearer(scope)
        if not key:  # 1: Bearer only; v2 takes no `?api_key=`
            await _problem(send, Problem(401, "missing bearer token"))
            return
        pod_scope: str | None = None
        if not hmac.compare_digest(key.encode(), self.api_key.encode()):
            pod_scope = self._pod_for_key(key)
            if pod_scope is None:
                await _problem(send, Problem(401, "invalid bearer token"))
                return
        limits = self.windows.headers(now)
        body = await self.read_body(scope, receive)  # after auth: a stranger's is never read
        if body is None:
            too_big = Problem(413, f"request body larger than {self.max_body} bytes")
            await _problem(send, too_big, limits)
            return
        self.requests += 1
        faults = self.faults
        if faults.latency_ms:
            await asyncio.sleep(faults.latency_ms / 1000)
        kind = faults.roll_error()  # answered instead of running the request: nothing applied
        if kind == "reset":
            await self.drop(send)
            return
        if kind == "429":
            wait = faults.retry_after
            headers = [
                (b"retry-after", str(wait).encode()),  # 3: integer seconds
                *self.windows.headers(now, exhausted_for=wait),
            ]
            problem = Problem(429, "rate limit exceeded for the minute window", headers=headers)
            await _problem(send, problem)
            return
        if kind == "500":
            await _problem(send, Problem(500, "internal server error"), limits)
            return
        if kind == "502":
            await _raw(send, 502, BAD_GATEWAY_HTML, b"text/html")
            return
        if kind == "garbage":
            await _raw(send, 200, GARBAGE_BODY, b"application/json")
            return
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        parts = _segments(path)
        if (
            len(parts) == 4
            and parts[:2] == ["v2", "pods"]
            and parts[3] == "logs"
            and method == "GET"
        ):
            try:
                pod = self._own(self._pod(parts[2:3]), pod_scope, "getPodLogs")
                params = _log_params(query, scope)
            except Problem as problem:
                await _problem(send, problem, limits)
                return
            await self._stream_logs(pod, params, receive, send, limits)
            return
        try:
            reply = None if self.extra is None else self.extra(method, path, body, scope, pod_scope)
            if reply is None:
                reply = self._route(method, path, body, query, pod_scope)
        except Problem as problem:
            await _problem(send, problem, limits)
            return
        if reply.mutation is not None:
            await self.on_change()
            if reply.status < 300 and faults.take_lost_response([reply.mutation]):
                await self.drop(send)
                return
        payload = reply.body
        if kind == "wrong-types" and isinstance(payload, dict):
            payload = faults.mangle(payload)
        if payload is None:
            await _raw(send, reply.status, b"", None, limits)
        else:
            await _json(send, reply.status, payload, limits)

    def _pod_for_key(self, key: str) -> str | None:
        """The pod whose pod-scoped `RUNPOD_API_KEY` this is (14), if any."""
        return self.store.pod_for_key(key)

    # -- routing -----------------------------------------------------------------------------

    def _route(
        self,
        method: str,
        path: str,
        body: bytes,
        query: dict[str, list[str]],
        pod_scope: str | None,
    ) -> Reply:
        parts = _segments(path)
        if parts[:2] == ["v2", "pods"]:
            if len(parts) == 2:
                _allow(method, "GET", "POST")
                if pod_scope is not None:
                    raise Problem(403, DENIED)
                if method == "GET":
                    return self.list_pods(query)
                return self.create_pod(_json_body(body, "createPod"))
            if len(parts) == 3:
                _allow(method, "GET", "PATCH", "DELETE")
                pod = self._pod(parts[2:3])
                if method == "GET":
                    self._own(pod, pod_scope, "getPod")
                    return Reply(200, views.pod_view(self.store, pod))
                if method == "DELETE":
                    self._own(pod, pod_scope, "deletePod")
                    return self.delete_pod(pod)
                self._own(pod, pod_scope, "updatePod")
                return self.update_pod(pod, _json_body(body, "updatePod"))
            if len(parts) == 4 and parts[3] == "action":
                _allow(method, "POST")
                pod = self._pod(parts[2:3])
                request = _json_body(body, "podAction")
                action = request["action"]
                self._own(pod, pod_scope, action)
                return self.pod_action(pod, action)
            if len(parts) == 4 and parts[3] == "logs":
                _allow(method, "GET")
        if parts[:2] == ["v2", "network-volumes"] and len(parts) in (2, 3):
            if pod_scope is not None:
                raise Problem(403, DENIED)
            if len(parts) == 2:
                _allow(method, "GET", "POST")
                if method == "GET":
                    return Reply(200, {"networkVolumes": self._volumes()})
                return self.create_volume(_json_body(body, "createNetworkVolume"))
            _allow(method, "GET", "PATCH", "DELETE")
            return self.volume(method, parts[2], body)
        if parts[:3] == ["v2", "catalog", "cpus"] and len(parts) in (3, 4):
            _allow(method, "GET")
            if pod_scope is not None:
                raise Problem(403, DENIED)
            return self.catalog_cpus(query, parts[3] if len(parts) == 4 else None)
        if parts == ["v2", "billing", "pods"]:
            _allow(method, "GET")
            if pod_scope is not None:
                raise Problem(403, DENIED)
            return self.pod_billing(query)
        if parts[:3] == ["v2", "catalog", "gpus"] and len(parts) in (3, 4):
            _allow(method, "GET")
            if pod_scope is not None:
                raise Problem(403, DENIED)
            return self.catalog_gpus(query, parts[3] if len(parts) == 4 else None)
        raise Problem(404, "resource not found")  # 4.2

    def _pod(self, ids: list[str]) -> Pod:
        pod = self.store.get(ids[0]) if ids else None
        if pod is None:
            raise Problem(404, NOT_FOUND_POD)
        return pod

    def _own(self, pod: Pod, pod_scope: str | None, what: str) -> Pod:
        """A pod-scoped key reads, stops and terminates its own pod only (as over GraphQL);
        RunPod does not document its REST permissions (16), so the sandbox assumes the least."""
        if pod_scope is None:
            return pod
        allowed = {"getPod", "getPodLogs", "stop", "terminate", "deletePod"}
        if pod.id != pod_scope or what not in allowed:
            raise Problem(403, DENIED)
        return pod

    # -- network volumes (7) -----------------------------------------------------------------

    def _volumes(self) -> list[dict[str, Any]]:
        return [v.view() for v in self.store.volumes.values()]

    def create_volume(self, request: dict[str, Any]) -> Reply:
        try:
            volume = self.store.create_volume(
                request["name"], request["size"], request["dataCenter"], request.get("type")
            )
        except BusinessError as exc:
            raise Problem(400, str(exc)) from None
        return Reply(201, volume.view(), "rest:createNetworkVolume")

    def volume(self, method: str, volume_id: str, body: bytes) -> Reply:
        """7: GET, PATCH (name, size: grow only), DELETE (204; [INF] refused while a pod uses
        it, which RunPod does not document)."""
        volume = self.store.volumes.get(volume_id)
        if volume is None:
            raise Problem(404, "network volume not found")
        if method == "GET":
            return Reply(200, volume.view())
        if method == "DELETE":
            if any(p.network_volume_id == volume_id for p in self.store.pods.values()):
                raise Problem(400, f"network volume {volume_id} is attached to a pod")
            del self.store.volumes[volume_id]
            self.store.save()
            return Reply(204, None, "rest:deleteNetworkVolume")
        request = _json_body(body, "updateNetworkVolume")
        if request.get("size", volume.size) < volume.size:
            raise Problem(400, "network volume storage cannot be reduced")
        volume.name = request.get("name", volume.name)
        volume.size = request.get("size", volume.size)
        self.store.save()
        return Reply(200, volume.view(), "rest:updateNetworkVolume")

    # -- billing (11): the store's own accounting ----------------------------------------------

    def pod_billing(self, query: dict[str, list[str]]) -> Reply:
        try:
            return Reply(200, billing.pod_billing(self.store.ledger, query, time.time()))
        except billing.QueryError as exc:
            raise Problem(exc.status, exc.detail, exc.errors) from None

    # -- pods --------------------------------------------------------------------------------

    def list_pods(self, query: dict[str, list[str]]) -> Reply:
        # 5.3: one parameter (includeClusterPods; the sandbox has no clusters); no pagination
        # and unknown parameters ignored (2)
        now = time.time()
        pods = [views.pod_view(self.store, p, now) for p in self.store.pods.values()]
        return Reply(200, {"pods": pods})

    def create_pod(self, request: dict[str, Any]) -> Reply:
        """5.5: one GPU type (or one CPU flavour), no fallback; 400 when it cannot be placed."""
        refused = self.faults.take_refusal()  # 4.4: 402 insufficient balance, 403 no access
        if refused == 402:
            raise Problem(402, "Insufficient balance.")
        if refused == 403:
            raise Problem(403, DENIED)
        gpu: Any = request.get("gpu")
        cpu: Any = request.get("cpu")
        if (gpu is None) == (cpu is None):
            raise Problem(400, "exactly one of gpu or cpu must be set")
        mounts = request.get("mounts") or {}
        env = dict(request.get("env") or {})
        if request.get("startJupyter") and "JUPYTER_PASSWORD" not in env:
            env["JUPYTER_PASSWORD"] = secrets.token_urlsafe(12)  # 5.5 startJupyter
        inp: dict[str, Any] = {
            "name": request["name"],
            "imageName": request["image"],
            "dockerArgs": request.get("args") or "",
            "containerDiskInGb": request.get("disk", 10),  # 5.5: runpod-python sends 10
            "ports": _ports(request.get("ports") or []),  # 5.5: no default ports
            "env": [{"key": k, "value": v} for k, v in env.items()],
            "containerRegistryAuthId": request.get("registry"),
            "templateId": request.get("templateId"),
            "cloudType": request.get("cloud", "SECURE"),  # 5.5: default SECURE, no ALL
            "dataCenterId": _data_center(request.get("dataCenterIds") or []),
            "startSsh": bool(request.get("startSsh")),
        }
        persistent = mounts.get("persistent")
        network = mounts.get("network") or []
        if persistent is not None and network:
            raise Problem(400, "mounts.persistent and mounts.network are mutually exclusive")
        if persistent is not None:
            if cpu is not None:
                raise Problem(400, "mounts.persistent is not supported on CPU pods")
            inp["volumeInGb"] = persistent["size"]
            inp["volumeMountPath"] = persistent["path"]
        if network:  # 5.5 `mounts.network`: the volume must be in the pod's data center
            inp["networkVolumeId"] = network[0]["volumeId"]
            inp["volumeMountPath"] = network[0]["path"]
            volume = self.store.volumes.get(network[0]["volumeId"])
            if volume is not None and volume.data_center in (request.get("dataCenterIds") or []):
                inp["dataCenterId"] = volume.data_center  # the preferred one that can hold it
        sidecar: dict[str, Any] = {}
        if gpu is not None:
            sidecar["cuda"] = _host_cuda(gpu)
            inp.update(gpuTypeId=gpu["id"], gpuCount=gpu.get("count", 1))
            kind = "ON_DEMAND"
        else:
            vcpu = cpu["vcpuCount"]
            ram = views.CPU_FLAVOURS.get(cpu["id"])
            if ram is None:
                raise Problem(400, f"unknown CPU flavor {cpu['id']!r}")
            if vcpu & (vcpu - 1):
                raise Problem(400, "cpu.vcpuCount must be a power of two")
            low, high = views.CPU_VCPUS
            if not low <= vcpu <= high:  # 6.2 `vcpu: {min, max}` of the flavor
                raise Problem(400, f"cpu.vcpuCount {vcpu} is not offered for {cpu['id']}")
            # [INF] dstack deploys CPU pods on SECURE only; the sandbox refuses the rest
            if request.get("cloud", "SECURE") != "SECURE":
                raise Problem(400, "CPU pods are available on SECURE cloud only")
            inp["instanceId"] = f"{cpu['id']}-{vcpu}-{vcpu * ram}"
            sidecar["cpu"] = cpu["id"]
            kind = "CPU"
        try:
            pod = self.store.create(inp, kind=kind)
        except BusinessError as exc:
            raise Problem(400, str(exc)) from None  # 4.2: no capacity is a 400, no code
        layout.atomic_write(
            views.sidecar_path(self.store.data_dir, pod.id), json.dumps(sidecar).encode()
        )
        return Reply(201, views.pod_view(self.store, pod, fresh=True), "rest:createPod")

    def update_pod(self, pod: Pod, request: dict[str, Any]) -> Reply:
        """5.6: only present fields change; env replaced whole; any container change resets."""
        mounts = request.get("mounts") or {}
        persistent = mounts.get("persistent")
        if persistent is not None and not pod.volume_gb:
            raise Problem(400, "mount kind is fixed at create: this pod has no persistent mount")
        edit: dict[str, Any] = {"podId": pod.id}
        if "image" in request:
            edit["imageName"] = request["image"]
        if "args" in request:
            edit["dockerArgs"] = request["args"]
        if "disk" in request:
            edit["containerDiskInGb"] = request["disk"]
        if "ports" in request:
            edit["ports"] = _ports(request["ports"])  # [] clears
        if "env" in request:
            edit["env"] = [{"key": k, "value": v} for k, v in request["env"].items()]
        if persistent is not None:
            edit["volumeInGb"] = persistent["size"]
            edit["volumeMountPath"] = persistent["path"]
        if "registry" in request:
            if request["registry"] is None:  # null clears (5.6)
                pod.container_registry_auth_id = None
            else:
                edit["containerRegistryAuthId"] = request["registry"]
        if "name" in request:  # in place (5.6, v1's PodUpdateInput)
            pod.name = request["name"]
        try:
            if len(edit) > 1 or "registry" in request:
                # 5.6 [INF]: a container change resets the pod (container wiped, new ports)
                pod = self.store.edit(edit)
            else:
                self.store.save()
        except BusinessError as exc:
            raise Problem(400, str(exc)) from None
        return Reply(200, views.pod_view(self.store, pod), "rest:updatePod")

    def pod_action(self, pod: Pod, action: str) -> Reply:
        """5.7: start / stop / restart (200 Pod), terminate (204); 409 when not valid now."""
        state = views.status(pod, time.time())
        if action not in views.ACTIONS[state]:
            raise Problem(409, f"cannot {action} a pod that is {state}")
        try:
            if action == "terminate":
                self.store.terminate(pod.id)
                return Reply(204, None, "rest:terminatePod")
            if action == "stop":
                pod = self.store.stop(pod.id)
            elif action == "start":
                pod = self.store.resume(pod.id, None)  # 5.7: no GPU count on start
            else:
                pod = self.store.edit({"podId": pod.id})  # restart: a new container, same host
        except BusinessError as exc:
            raise Problem(400, str(exc)) from None  # 5.7: the GPU-taken body is unverified
        return Reply(200, views.pod_view(self.store, pod), f"rest:{action}Pod")

    def delete_pod(self, pod: Pod) -> Reply:
        """5.8: 204, then 404; the pod leaves the list."""
        self.store.terminate(pod.id)
        return Reply(204, None, "rest:deletePod")

    # -- logs --------------------------------------------------------------------------------

    async def _stream_logs(
        self,
        pod: Pod,
        params: _LogParams,
        receive: Receive,
        send: Send,
        limits: list[tuple[bytes, bytes]],
    ) -> None:
        """5.9: SSE; replay `tail` (or from `since` / after `Last-Event-ID`), then tail live."""
        headers = [
            (b"content-type", b"text/event-stream"),
            (b"cache-control", b"no-cache"),
            *limits,
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        gone = asyncio.ensure_future(_disconnected(receive))
        started = time.monotonic()
        sent: int | None = None
        try:
            while not gone.done() and time.monotonic() - started < LOG_STREAM_MAX_S:
                current = self.store.get(pod.id)
                if current is None:
                    break  # terminated: nothing more will come
                lines = views.observe_log(self.store.data_dir, current, time.time())
                if params.source is not None:
                    lines = [e for e in lines if e[2] == params.source]
                if sent is None:  # the backfill, then only what is new
                    out = _first(lines, params)
                    sent = lines[-1][0] if lines else (params.after or 0)
                else:
                    out = [e for e in lines if e[0] > sent]
                if out:
                    sent = max(sent, out[-1][0])
                    chunk = b"".join(_event(*e) for e in out)
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                await asyncio.wait({gone}, timeout=LOG_POLL_S)
        finally:
            gone.cancel()
        await send({"type": "http.response.body", "body": b""})

    # -- catalog -----------------------------------------------------------------------------

    def catalog_cpus(self, query: dict[str, list[str]], flavor: str | None) -> Reply:
        """6.2: CPU flavors; `include=AVAILABILITY` needs `product` (POD or SERVERLESS)."""
        include = _list(query, "include")
        product = _list(query, "product")
        vcpus = _one(query, "vcpuCount")
        errors = [
            "$.include: value must be one of 'AVAILABILITY'" for v in include if v != "AVAILABILITY"
        ]
        errors += [
            "$.product: value must be one of 'POD', 'SERVERLESS'"
            for v in product
            if v not in ("POD", "SERVERLESS")
        ]
        if vcpus is not None and not (vcpus.isdigit() and int(vcpus) >= 2):
            errors.append(f"$.vcpuCount: must be an integer >= 2, got '{vcpus}'")
        if errors:
            raise Problem(422, "Request validation failed.", errors)
        if include and not product:
            raise Problem(400, "product is required with include=AVAILABILITY")
        if product and not include:
            raise Problem(400, "product is only valid with include=AVAILABILITY")
        if flavor is not None:
            if flavor not in views.CPU_FLAVOURS:
                raise Problem(404, "resource not found")
            return Reply(200, views.cpu_view(flavor, availability=bool(include)))
        cpus = [views.cpu_view(f, availability=bool(include)) for f in sorted(views.CPU_FLAVOURS)]
        return Reply(200, {"cpus": cpus})

    def catalog_gpus(self, query: dict[str, list[str]], gpu_id: str | None) -> Reply:
        """6.1: `include=AVAILABILITY` needs `product` (and only it allows the stock filters)."""
        include = _list(query, "include")
        product = _list(query, "product")
        errors = []
        if len(include) > 1:
            errors.append(f"$.include: maximum 1 items required, but found {len(include)} items")
        errors += [
            "$.include: value must be one of 'AVAILABILITY'" for v in include if v != "AVAILABILITY"
        ]
        errors += [
            "$.product: value must be one of 'POD', 'CLUSTER', 'SERVERLESS'"
            for v in product
            if v not in ("POD", "CLUSTER", "SERVERLESS")
        ]
        count_text = _one(query, "count")
        cloud = _one(query, "cloud")
        countries = _list(query, "countryCodes")
        cudas = _list(query, "cudaVersions")
        floor = _one(query, "minCudaVersion")
        if count_text is not None and not (count_text.isdigit() and int(count_text) >= 1):
            errors.append(f"$.count: must be an integer >= 1, got '{count_text}'")
        if cloud is not None and cloud not in catalog.CLOUDS:
            errors.append("$.cloud: value must be one of 'SECURE', 'COMMUNITY'")
        errors += [
            f"$.countryCodes: '{c}' does not match pattern '^[A-Z]{{2}}$'"
            for c in countries
            if not _COUNTRY.match(c)
        ]
        errors += [
            f"$.cudaVersions: '{c}' does not match pattern '^\\d+\\.\\d+$'"
            for c in cudas
            if not _CUDA.match(c)
        ]
        if floor is not None and not _CUDA_FLOOR.match(floor):
            errors.append(f"$.minCudaVersion: '{floor}' does not match pattern '^\\d+(\\.\\d+)?$'")
        if errors:
            raise Problem(422, "Request validation failed.", errors)
        availability = bool(include)
        if availability and not product:
            raise Problem(400, "product is required with include=AVAILABILITY")
        if not availability and product:
            raise Problem(400, "product is only valid with include=AVAILABILITY")
        only_with = [n for n in ("count", "cloud", "countryCodes") if n in query]
        if not availability and only_with:
            raise Problem(400, f"{', '.join(only_with)} only valid with include=AVAILABILITY")
        if cudas and floor is not None:
            raise Problem(400, "cudaVersions and minCudaVersion are mutually exclusive")
        count = int(count_text) if count_text is not None else 1
        options = {
            "availability": availability,
            "count": count,
            "cloud": cloud or "SECURE",
            "countries": countries or None,
        }
        if gpu_id is not None:
            gpu = catalog.GPU_BY_ID.get(gpu_id)
            if gpu is None:
                raise Problem(404, "resource not found")
            return Reply(200, views.gpu_view(self.store, gpu, **options))  # type: ignore[arg-type]
        gpus = []
        for gpu in catalog.GPU_TYPES:
            offered = views.CUDA_VERSIONS[gpu.id]
            if cudas and not set(cudas) & set(offered):
                continue
            if floor is not None and not any(
                views.cuda_key(v) >= views.cuda_key(floor) for v in offered
            ):
                continue
            if countries and not any(
                views.DC_COUNTRY[d.id] in countries for d in catalog.DATA_CENTERS
            ):
                continue
            gpus.append(views.gpu_view(self.store, gpu, **options))  # type: ignore[arg-type]
        return Reply(200, {"gpus": gpus})


# -- request pieces ------------------------------------------------------------------------


def _segments(path: str) -> list[str]:
    return [p for p in path.split("/") if p]


def _allow(method: str, *allowed: str) -> None:
    if method not in allowed:  # 4.2 405, with Allow
        problem = Problem(405, "The requested method is not allowed for this path.")
        problem.headers = [(b"allow", ", ".join(allowed).encode())]
        raise problem


def _bearer(scope: Scope) -> str:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            given = str(value.decode("latin-1")).strip()
            if given.lower().startswith("bearer "):
                return given[7:].strip()
            return ""
    return ""


def _json_body(body: bytes, operation: str) -> dict[str, Any]:
    """The body as JSON, valid against the kept schema, else 400 / 422 (4.2, 5.5)."""
    try:
        request = json.loads(body or b"null")
    except ValueError:
        raise Problem(400, "request could not be processed") from None
    found = validate.violations(operation, request)
    if found:
        raise Problem(422, "Request validation failed.", found)
    assert isinstance(request, dict)
    return request


def _ports(ports: list[str]) -> str:
    for item in ports:
        if not _PORT_ITEM.match(item):
            raise Problem(400, f'Invalid port "{item}": expected PORT/http or PORT/tcp.')
    text = ",".join(ports)
    try:
        parse_ports(text)
    except BusinessError as exc:
        raise Problem(400, str(exc)) from None
    return text


def _data_center(wanted: list[str]) -> str | None:
    """5.5 `dataCenterIds`: preferred; the sandbox places in the first one it has, and a list
    naming none of its data centers cannot be placed (whether RunPod would is unverified)."""
    if not wanted:
        return None
    for dc in wanted:
        if dc in catalog.DATA_CENTER_BY_ID:
            return dc
    raise Problem(400, NO_CAPACITY)


def _host_cuda(gpu: dict[str, Any]) -> str:
    """The host CUDA version a create gets under its constraint (5.5 `gpu`)."""
    allowed = gpu.get("allowedCudaVersions") or []
    floor = gpu.get("minCudaVersion")
    if allowed and floor is not None:
        raise Problem(400, "allowedCudaVersions and minCudaVersion are mutually exclusive")
    offered = list(views.CUDA_VERSIONS.get(gpu["id"], ()))
    if allowed:
        offered = [v for v in offered if v in allowed]
    if floor is not None:
        offered = [v for v in offered if views.cuda_key(v) >= views.cuda_key(floor)]
    if not offered and gpu["id"] in catalog.GPU_BY_ID:
        raise Problem(400, NO_CAPACITY)  # an unknown CUDA version is a capacity error
    return max(offered, key=views.cuda_key) if offered else ""


def _list(query: dict[str, list[str]], name: str) -> list[str]:
    """A `style: form, explode: false` list parameter (`a,b`)."""
    return [item for value in query.get(name, []) for item in value.split(",") if item]


def _one(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[-1] if values else None


@dataclass(frozen=True)
class _LogParams:
    source: str | None
    tail: int
    since: float | None
    after: int | None


def _log_params(query: dict[str, list[str]], scope: Scope) -> _LogParams:
    """5.9: `Last-Event-ID` wins over `since`, which wins over `tail` (0..5000, default 100)."""
    errors = []
    source = _one(query, "source")
    if source is not None and source not in ("container", "system"):
        errors.append("$.source: value must be one of 'container', 'system'")
    tail_text = _one(query, "tail") or "100"
    tail = int(tail_text) if tail_text.isdigit() else -1
    if not 0 <= tail <= 5000:
        errors.append(f"$.tail: must be an integer between 0 and 5000, got '{tail_text}'")
    since_text = _one(query, "since")
    since = None
    if since_text is not None:
        since = _parse_time(since_text)
        if since is None:
            errors.append(f"$.since: '{since_text}' is not a valid date-time")
    if errors:
        raise Problem(422, "Request validation failed.", errors)
    after = None
    for name, value in scope.get("headers", []):
        if name == b"last-event-id":
            after = _parse_event_id(value.decode("latin-1"))
    return _LogParams(source, tail, since, after)


def _parse_time(text: str) -> float | None:
    from datetime import datetime

    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _parse_event_id(text: str) -> int | None:
    """The seq of an id `<ts>/<seq>` (5.9)."""
    _stamp, _, seq = text.strip().partition("/")
    return int(seq) if seq.isdigit() else None


def _first(lines: list[views.LogLine], params: _LogParams) -> list[views.LogLine]:
    if params.after is not None:  # exclusive: resumes after that event
        return [e for e in lines if e[0] > params.after]
    if params.since is not None:
        return [e for e in lines if e[1] >= params.since]
    return lines[-params.tail :] if params.tail else []


def _event(seq: int, ts: float, source: str, line: str) -> bytes:
    stamp = views.iso(ts)
    data = json.dumps({"ts": stamp, "source": source, "line": line}, separators=(",", ":"))
    return f"id: {stamp}/{seq:012d}\ndata: {data}\n\n".encode()


async def _disconnected(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


async def _raw(
    send: Send,
    status: int,
    body: bytes,
    content_type: bytes | None,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    all_headers = [(b"content-length", str(len(body)).encode()), *(headers or [])]
    if content_type is not None:
        all_headers.insert(0, (b"content-type", content_type))
    await send({"type": "http.response.start", "status": status, "headers": all_headers})
    await send({"type": "http.response.body", "body": body})


async def _json(
    send: Send, status: int, payload: Any, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    body = json.dumps(payload, separators=(",", ":")).encode()
    await _raw(send, status, body, b"application/json", headers)


async def _problem(
    send: Send, problem: Problem, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    body = json.dumps(problem.body(), separators=(",", ":")).encode()
    await _raw(send, problem.status, body, PROBLEM, [*(headers or []), *problem.headers])
