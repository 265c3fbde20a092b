"""The endpoint resource of `/v2/serverless`: validation, RunPod's defaults, rendering (pure).

Rules from the reference §1.3 (create) and §1.4 (update), the schema messages of rest-v2 §4.2
(`"$: additional properties 'X' not allowed"`, `"$: missing property 'X'"`). Every 422 lists
all the violations found; cross-field rules (400) are checked only on a well-formed body.
"""

from __future__ import annotations

import re
import secrets
import string
import time
from datetime import UTC, datetime
from typing import Any, TypeGuard

from reconciler.sandbox.serverless.problem import Problem, invalid

# §1.6: pool ids and the cards of the sandbox catalog in each
POOLS: dict[str, tuple[str, ...]] = {
    "AMPERE_16": ("NVIDIA RTX A4000",),
    "AMPERE_24": ("NVIDIA L4", "NVIDIA RTX A5000", "NVIDIA GeForce RTX 3090"),
    "ADA_24": ("NVIDIA GeForce RTX 4090",),
    "AMPERE_48": ("NVIDIA RTX A6000", "NVIDIA A40"),
    "ADA_48_PRO": (),
    "AMPERE_80": ("NVIDIA A100 80GB PCIe",),
    "ADA_80_PRO": ("NVIDIA H100 80GB HBM3",),
    "HOPPER_141": (),
}
TYPES = ("QUEUE", "LOAD_BALANCER")
FLASHBOOT = ("OFF", "FLASHBOOT", "PRIORITY_FLASHBOOT")
CONTAINER = ("image", "args", "disk", "ports", "env", "registry")
CREATE_FIELDS = frozenset(
    {
        *CONTAINER,
        "name",
        "type",
        "scaling",
        "templateId",
        "gpu",
        "cpu",
        "workers",
        "timeout",
        "flashboot",
        "dataCenterIds",
        "networkVolumes",
    }
)
UPDATE_FIELDS = CREATE_FIELDS - {"type"}  # §1.4: the routing type is not patchable
GPU_FIELDS = frozenset({"pools", "excludedTypes", "count", "allowedCudaVersions", "minCudaVersion"})
_CUDA = re.compile(r"^\d+\.\d+$")
_ID_ALPHABET = string.ascii_lowercase + string.digits
IDLE_REQUEST_COUNT = "idleTimeout does not apply to queue-based endpoints scaling on requestCount"


def new_id() -> str:
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(14))


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _strings(value: Any) -> TypeGuard[list[str]]:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


class _Check:
    """Collects schema violations as RunPod's validator words them."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def add(self, where: str, what: str) -> None:
        self.errors.append(f"{where}: {what}")

    def unknown(self, where: str, body: dict[str, Any], allowed: frozenset[str]) -> None:
        extra = sorted(set(body) - allowed)
        if extra:
            names = ", ".join(f"'{k}'" for k in extra)
            self.add(where, f"additional properties {names} not allowed")

    def required(self, where: str, body: dict[str, Any], names: tuple[str, ...]) -> None:
        for name in names:
            if name not in body:
                self.add(where, f"missing property '{name}'")

    def enum(self, where: str, value: Any, allowed: tuple[str, ...]) -> None:
        if value not in allowed:
            self.add(where, "value must be one of " + ", ".join(f"'{a}'" for a in allowed))


def _check_container(c: _Check, body: dict[str, Any]) -> None:
    for key in ("image", "args"):
        if key in body and not isinstance(body[key], str):
            c.add(f"$.{key}", "got " + type(body[key]).__name__ + ", want string")
    if "disk" in body and (not _is_int(body["disk"]) or body["disk"] < 1):
        c.add("$.disk", "must be an integer >= 1")
    if "ports" in body and not _strings(body["ports"]):
        c.add("$.ports", "must be an array of strings")
    env = body.get("env")
    if "env" in body and not (
        isinstance(env, dict) and all(isinstance(v, str) for v in env.values())
    ):
        c.add("$.env", "must be an object of strings")
    if (
        "registry" in body
        and body["registry"] is not None
        and not isinstance(body["registry"], str)
    ):
        c.add("$.registry", "must be a string or null")
    for key in ("dataCenterIds", "networkVolumes"):
        if key in body and not _strings(body[key]):
            c.add(f"$.{key}", "must be an array of strings")
    if "timeout" in body and not _is_int(body["timeout"]):
        c.add("$.timeout", "must be an integer")
    if "flashboot" in body:
        c.enum("$.flashboot", body["flashboot"], FLASHBOOT)
    if "name" in body and not (isinstance(body["name"], str) and body["name"]):
        c.add("$.name", "must be a string of at least 1 character")
    if "templateId" in body and not (isinstance(body["templateId"], str) and body["templateId"]):
        c.add("$.templateId", "must be a string of at least 1 character")


def _check_gpu(c: _Check, gpu: Any, *, create: bool) -> None:
    if not isinstance(gpu, dict):
        c.add("$.gpu", "must be an object")
        return
    c.unknown("$.gpu", gpu, GPU_FIELDS)
    if create:
        c.required("$.gpu", gpu, ("pools",))
    if "pools" in gpu and not (_strings(gpu["pools"]) and gpu["pools"]):
        c.add("$.gpu.pools", "must be an array of at least 1 string")
    excluded = gpu.get("excludedTypes")
    if "excludedTypes" in gpu:
        if not _strings(excluded) or len(set(excluded)) != len(excluded):
            c.add("$.gpu.excludedTypes", "must be an array of unique strings")
        elif not create and "pools" not in gpu:
            c.add("$.gpu", "property 'excludedTypes' requires property 'pools'")  # §1.4
    if "count" in gpu and (not _is_int(gpu["count"]) or gpu["count"] < 1):
        c.add("$.gpu.count", "must be an integer >= 1")
    cuda = gpu.get("allowedCudaVersions")
    if "allowedCudaVersions" in gpu and not (_strings(cuda) and all(_CUDA.match(v) for v in cuda)):
        c.add("$.gpu.allowedCudaVersions", "must be an array of 'major.minor' strings")
    floor = gpu.get("minCudaVersion")
    if "minCudaVersion" in gpu and not (
        isinstance(floor, str) and (_CUDA.match(floor) or (floor == "" and not create))
    ):
        c.add("$.gpu.minCudaVersion", "must be a 'major.minor' string")


def _check_cpu(c: _Check, cpu: Any) -> None:
    if not isinstance(cpu, list) or not cpu:
        c.add("$.cpu", "must be an array of at least 1 item")
        return
    seen: list[Any] = []
    for i, item in enumerate(cpu):
        where = f"$.cpu[{i}]"
        if not isinstance(item, dict):
            c.add(where, "must be an object")
            continue
        c.unknown(where, item, frozenset({"id", "vcpuCount"}))
        c.required(where, item, ("id", "vcpuCount"))
        if "id" in item and not (isinstance(item["id"], str) and item["id"]):
            c.add(f"{where}.id", "must be a string of at least 1 character")
        count = item.get("vcpuCount")
        if "vcpuCount" in item and (not _is_int(count) or count < 2 or count & (count - 1)):
            c.add(f"{where}.vcpuCount", "must be a power of two >= 2")
        if item in seen:
            c.add("$.cpu", "items must be unique")
        seen.append(item)


def _check_workers(c: _Check, workers: Any) -> None:
    if not isinstance(workers, dict):
        c.add("$.workers", "must be an object")
        return
    c.unknown("$.workers", workers, frozenset({"min", "max", "idleTimeout"}))
    for key in ("min", "max"):
        if key in workers and (not _is_int(workers[key]) or workers[key] < 0):
            c.add(f"$.workers.{key}", "must be an integer >= 0")
    idle = workers.get("idleTimeout")
    if "idleTimeout" in workers and (not _is_int(idle) or not 1 <= idle <= 3600):
        c.add("$.workers.idleTimeout", "must be an integer between 1 and 3600")


def _check_scaling(c: _Check, scaling: Any) -> None:
    if not isinstance(scaling, dict):
        c.add("$.scaling", "must be an object")
        return
    kind = scaling.get("type")
    if kind == "QUEUE_DELAY":
        c.unknown("$.scaling", scaling, frozenset({"type", "queueDelay"}))
        c.required("$.scaling", scaling, ("queueDelay",))
        delay = scaling.get("queueDelay")
        if "queueDelay" in scaling and (not _is_number(delay) or delay < 0.5):
            c.add("$.scaling.queueDelay", "must be a number >= 0.5")
    elif kind == "REQUEST_COUNT":
        c.unknown("$.scaling", scaling, frozenset({"type", "requestCount"}))
        c.required("$.scaling", scaling, ("requestCount",))
        count = scaling.get("requestCount")
        if "requestCount" in scaling and (not _is_int(count) or count < 1):
            c.add("$.scaling.requestCount", "must be an integer >= 1")
    else:
        c.enum("$.scaling.type", kind, ("QUEUE_DELAY", "REQUEST_COUNT"))


def _check_body(body: Any, *, create: bool) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise invalid(["$: got " + type(body).__name__ + ", want object"])
    c = _Check()
    c.unknown("$", body, CREATE_FIELDS if create else UPDATE_FIELDS)
    if create:
        c.required("$", body, ("name", "type", "scaling"))
        if "templateId" not in body:
            c.required("$", body, ("image",))
        if "type" in body:
            c.enum("$.type", body["type"], TYPES)
    _check_container(c, body)
    if "gpu" in body:
        _check_gpu(c, body["gpu"], create=create)
    if "cpu" in body:
        _check_cpu(c, body["cpu"])
    if "workers" in body:
        _check_workers(c, body["workers"])
    if "scaling" in body:
        _check_scaling(c, body["scaling"])
        scaling = body["scaling"]
        if (
            create
            and body.get("type") == "LOAD_BALANCER"
            and isinstance(scaling, dict)
            and scaling.get("type") == "QUEUE_DELAY"
        ):
            c.add("$.scaling.type", "value must be one of 'REQUEST_COUNT'")  # OAS if/then
    if c.errors:
        raise invalid(c.errors)
    return body


def _check_gpu_rules(gpu: dict[str, Any]) -> None:
    """The 400s of §1.3: CUDA set beside a floor; exclusions outside the pools."""
    unknown = [p for p in gpu.get("pools") or [] if p not in POOLS]
    if unknown:
        raise Problem(400, f"unknown GPU pool(s): {', '.join(unknown)}; use {', '.join(POOLS)}")
    if gpu.get("allowedCudaVersions") and gpu.get("minCudaVersion"):
        raise Problem(400, "allowedCudaVersions and minCudaVersion are mutually exclusive")
    types = {t for p in gpu.get("pools") or [] for t in POOLS[p]}
    excluded = [t.strip() for t in gpu.get("excludedTypes") or []]
    outside = [t for t in excluded if t not in types]
    if outside:
        raise Problem(400, f"excludedTypes {outside} are not GPU types of the selected pools")
    if excluded and not types - set(excluded):
        raise Problem(400, "excludedTypes leave no GPU type in the selected pools")


def _check_rules(endpoint: dict[str, Any]) -> None:
    """Cross-field rules on the endpoint as it would be after the change."""
    workers, scaling = endpoint["workers"], endpoint["scaling"]
    if (
        endpoint["type"] == "QUEUE"
        and scaling["type"] == "REQUEST_COUNT"
        and workers.get("idleTimeout")
    ):
        raise Problem(422, IDLE_REQUEST_COUNT)  # §1.3 (LIVE-3P)
    if endpoint["type"] == "LOAD_BALANCER" and scaling["type"] != "REQUEST_COUNT":
        raise invalid(["$.scaling.type: value must be one of 'REQUEST_COUNT'"])
    if workers["min"] > workers["max"]:
        raise Problem(400, "workers.min must not exceed workers.max")  # [INF]
    if endpoint.get("gpu") is not None:
        _check_gpu_rules(endpoint["gpu"])


def _gpu(raw: dict[str, Any], old: dict[str, Any] | None) -> dict[str, Any]:
    gpu = dict(old or {"count": 1, "allowedCudaVersions": [], "minCudaVersion": None})
    if "pools" in raw:  # §1.4: pools without excludedTypes clears the exclusions
        gpu["pools"] = list(raw["pools"])
        gpu.pop("excludedTypes", None)
    if raw.get("excludedTypes"):
        gpu["excludedTypes"] = [t.strip() for t in raw["excludedTypes"]]
    if "count" in raw:
        gpu["count"] = raw["count"]
    if "allowedCudaVersions" in raw:
        gpu["allowedCudaVersions"] = list(raw["allowedCudaVersions"])
    if "minCudaVersion" in raw:
        gpu["minCudaVersion"] = raw["minCudaVersion"] or None
    return gpu


def _cpu(raw: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**c, "memory": c["vcpuCount"] * 4} for c in raw]  # memory derived [INF: 4 GB/vCPU]


def _workers(raw: dict[str, Any], old: dict[str, Any] | None) -> dict[str, Any]:
    workers = dict(old or {"min": 0, "max": 3, "idleTimeout": 10})  # schema defaults §1.3
    workers.update(raw)
    return workers


def create(body: Any, *, now: float | None = None) -> dict[str, Any]:
    """The stored endpoint for a `POST /v2/serverless` body, or a Problem."""
    body = _check_body(body, create=True)
    if "templateId" in body:  # the sandbox holds no serverless templates
        raise Problem(404, f"template {body['templateId']} not found")
    if ("gpu" in body) == ("cpu" in body):
        raise Problem(400, "exactly one of gpu or cpu is required")
    scaling = dict(body["scaling"])
    workers = _workers(body.get("workers") or {}, None)
    if body["type"] == "QUEUE" and scaling["type"] == "REQUEST_COUNT":
        if "idleTimeout" in (body.get("workers") or {}):
            raise Problem(422, IDLE_REQUEST_COUNT)
        workers.pop("idleTimeout")  # omitted for that combination (OAS EndpointWorkers)
    endpoint: dict[str, Any] = {
        "id": new_id(),
        "name": body["name"],
        "type": body["type"],
        "image": body["image"],
        "args": body.get("args", ""),
        "disk": body.get("disk", 10),
        "ports": list(body.get("ports", [])),
        "env": dict(body.get("env", {})),
        "registry": body.get("registry"),
        "gpu": _gpu(body["gpu"], None) if "gpu" in body else None,
        "workers": workers,
        "scaling": scaling,
        "dataCenterIds": list(body.get("dataCenterIds", [])),
        "networkVolumes": list(body.get("networkVolumes", [])),
        "timeout": body.get("timeout", 0),  # §1.3: observed, omitted -> 0 (LIVE-3P)
        "flashboot": body.get("flashboot", "OFF"),  # §1.3: omitting it turns FlashBoot off
        "createdAt": _iso(time.time() if now is None else now),
        "version": 1,
    }
    if "cpu" in body:
        endpoint["cpu"] = _cpu(body["cpu"])
    _check_rules(endpoint)
    return endpoint


def update(endpoint: dict[str, Any], body: Any) -> dict[str, Any]:
    """The endpoint after a `PATCH` (only present fields change, §1.4), or a Problem."""
    body = _check_body(body, create=False)
    if "templateId" in body:
        raise Problem(404, f"template {body['templateId']} not found")
    is_cpu = endpoint.get("gpu") is None
    if ("gpu" in body and is_cpu) or ("cpu" in body and not is_cpu):
        raise Problem(400, "the compute family (gpu or cpu) of an endpoint cannot change")
    new = dict(endpoint)
    for key in ("name", *CONTAINER, "dataCenterIds", "networkVolumes", "timeout", "flashboot"):
        if key in body:
            new[key] = body[key]
    if "gpu" in body:
        new["gpu"] = _gpu(body["gpu"], endpoint["gpu"])
    if "cpu" in body:
        new["cpu"] = _cpu(body["cpu"])
    if "scaling" in body:
        new["scaling"] = dict(body["scaling"])
    if "workers" in body:
        new["workers"] = _workers(body["workers"], endpoint["workers"])
    if new["type"] == "QUEUE" and new["scaling"]["type"] == "REQUEST_COUNT":
        if "idleTimeout" in (body.get("workers") or {}):
            raise Problem(422, IDLE_REQUEST_COUNT)
        new["workers"] = {k: v for k, v in new["workers"].items() if k != "idleTimeout"}
    elif "idleTimeout" not in new["workers"]:
        new["workers"] = {**new["workers"], "idleTimeout": 10}
    _check_rules(new)
    if any(new.get(k) != endpoint.get(k) for k in CONTAINER):
        new["version"] = int(endpoint.get("version", 1)) + 1  # a new release (§1.4)
    return new


def view(endpoint: dict[str, Any], data_plane: str) -> dict[str, Any]:
    """The `Endpoint` object (§1.2); `data_plane` is the base the request URLs point at."""
    out = {k: v for k, v in endpoint.items() if k != "version"}
    base = f"{data_plane}/{endpoint['id']}"
    if endpoint["type"] == "QUEUE":
        out["requestUrls"] = {
            "run": f"{base}/run",
            "runSync": f"{base}/runsync",
            "status": f"{base}/status/{{job_id}}",
            "stream": f"{base}/stream/{{job_id}}",
            "cancel": f"{base}/cancel/{{job_id}}",
            "retry": f"{base}/retry/{{job_id}}",
            "purgeQueue": f"{base}/purge-queue",
            "health": f"{base}/health",
        }
    else:
        out["requestUrls"] = {"base": base, "health": f"{base}/ping"}
    return out
