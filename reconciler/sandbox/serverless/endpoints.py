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

from reconciler.sandbox.rest.api import Problem

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
_EXCLUDED = re.compile(r"^\s*[^-\s]")
_ID_ALPHABET = string.ascii_lowercase + string.digits
IDLE_REQUEST_COUNT = "idleTimeout does not apply to queue-based endpoints scaling on requestCount"


def invalid(errors: list[str]) -> Problem:
    """422 with the validator's messages, sorted (rest-v2 §4.2: "Request validation failed.")."""
    return Problem(422, "Request validation failed.", sorted(set(errors)))


def new_id() -> str:
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(14))


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


class _Check:
    """Collects schema violations in the words of RunPod's validator (rest-v2 §4.2)."""

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

    def type(self, where: str, value: Any, want: str) -> bool:
        """Whether `value` is of JSON type `want` ("integer", "string or null"...); says if not."""
        got = _json_type(value)
        if got in want.split(" or ") or (got == "integer" and "number" in want):
            return True
        self.add(where, f"got {got}, want {want}")
        return False

    def integer(self, where: str, value: Any, minimum: int | None = None, maximum: int = 0) -> None:
        if not self.type(where, value, "integer"):
            return
        if minimum is not None and value < minimum:
            self.add(where, f"must be >= {minimum} but found {value}")
        if maximum and value > maximum:
            self.add(where, f"must be <= {maximum} but found {value}")

    def string(self, where: str, value: Any, min_length: int = 0) -> bool:
        if not self.type(where, value, "string"):
            return False
        if len(value) < min_length:
            self.add(where, f"length must be >= {min_length}, but got {len(value)}")
            return False
        return True

    def strings(
        self,
        where: str,
        value: Any,
        *,
        min_items: int = 0,
        unique: bool = False,
        pattern: re.Pattern[str] | None = None,
    ) -> bool:
        """An array of strings; True when it is one (whatever its other flaws)."""
        if not self.type(where, value, "array"):
            return False
        if len(value) < min_items:
            self.add(where, f"minimum {min_items} items required, but found {len(value)} items")
        ok = True
        for i, item in enumerate(value):
            if not self.type(f"{where}[{i}]", item, "string"):
                ok = False
            elif pattern is not None and not pattern.search(item):
                self.add(f"{where}[{i}]", f"'{item}' does not match pattern '{pattern.pattern}'")
        if unique:
            for i, item in enumerate(value):
                if item in value[:i]:
                    self.add(where, f"items at index {value.index(item)} and {i} are equal")
                    break
        return ok


def _check_container(c: _Check, body: dict[str, Any]) -> None:
    for key in ("image", "args"):
        if key in body:
            c.string(f"$.{key}", body[key])
    if "disk" in body:
        c.integer("$.disk", body["disk"], 1)
    if "ports" in body:
        c.strings("$.ports", body["ports"])
    if "env" in body and c.type("$.env", body["env"], "object"):
        for key, value in body["env"].items():
            c.type(f"$.env.{key}", value, "string")
    if "registry" in body:
        c.type("$.registry", body["registry"], "string or null")
    for key in ("dataCenterIds", "networkVolumes"):
        if key in body:
            c.strings(f"$.{key}", body[key])
    if "timeout" in body:
        c.integer("$.timeout", body["timeout"])
    if "flashboot" in body:
        c.enum("$.flashboot", body["flashboot"], FLASHBOOT)
    if "name" in body:
        c.string("$.name", body["name"], 1)
    if "templateId" in body:
        c.string("$.templateId", body["templateId"], 1)


def _check_gpu(c: _Check, gpu: Any, *, create: bool) -> None:
    if not c.type("$.gpu", gpu, "object"):
        return
    c.unknown("$.gpu", gpu, GPU_FIELDS)
    if create:
        c.required("$.gpu", gpu, ("pools",))
    if "pools" in gpu:
        c.strings("$.gpu.pools", gpu["pools"], min_items=1)
    if "excludedTypes" in gpu:
        c.strings("$.gpu.excludedTypes", gpu["excludedTypes"], unique=True, pattern=_EXCLUDED)
        if not create and "pools" not in gpu:  # §1.4 dependentRequired
            c.add("$.gpu", "property 'excludedTypes' requires property 'pools'")
    if "count" in gpu:
        c.integer("$.gpu.count", gpu["count"], 1)
    if "allowedCudaVersions" in gpu:
        c.strings("$.gpu.allowedCudaVersions", gpu["allowedCudaVersions"], pattern=_CUDA)
    if "minCudaVersion" in gpu and c.string("$.gpu.minCudaVersion", gpu["minCudaVersion"]):
        floor = gpu["minCudaVersion"]
        if not (_CUDA.search(floor) or (floor == "" and not create)):
            pattern = _CUDA.pattern if create else "^$|" + _CUDA.pattern
            c.add("$.gpu.minCudaVersion", f"'{floor}' does not match pattern '{pattern}'")


def _check_cpu(c: _Check, cpu: Any) -> None:
    if not c.type("$.cpu", cpu, "array"):
        return
    if not cpu:
        c.add("$.cpu", "minimum 1 items required, but found 0 items")
    for i, item in enumerate(cpu):
        where = f"$.cpu[{i}]"
        if not c.type(where, item, "object"):
            continue
        c.unknown(where, item, frozenset({"id", "vcpuCount"}))
        c.required(where, item, ("id", "vcpuCount"))
        if "id" in item:
            c.string(f"{where}.id", item["id"], 1)
        if "vcpuCount" in item:
            c.integer(f"{where}.vcpuCount", item["vcpuCount"], 2)
        if item in cpu[:i]:
            c.add("$.cpu", f"items at index {cpu.index(item)} and {i} are equal")


def _check_workers(c: _Check, workers: Any) -> None:
    if not c.type("$.workers", workers, "object"):
        return
    c.unknown("$.workers", workers, frozenset({"min", "max", "idleTimeout"}))
    for key in ("min", "max"):
        if key in workers:
            c.integer(f"$.workers.{key}", workers[key], 0)
    if "idleTimeout" in workers:
        c.integer("$.workers.idleTimeout", workers["idleTimeout"], 1, 3600)


def _check_scaling(c: _Check, scaling: Any) -> None:
    if not c.type("$.scaling", scaling, "object"):
        return
    kind = scaling.get("type")
    if kind == "QUEUE_DELAY":
        c.unknown("$.scaling", scaling, frozenset({"type", "queueDelay"}))
        c.required("$.scaling", scaling, ("queueDelay",))
        delay = scaling.get("queueDelay")
        if (
            "queueDelay" in scaling
            and c.type("$.scaling.queueDelay", delay, "number")
            and delay < 0.5
        ):
            c.add("$.scaling.queueDelay", f"must be >= 0.5 but found {delay}")
    elif kind == "REQUEST_COUNT":
        c.unknown("$.scaling", scaling, frozenset({"type", "requestCount"}))
        c.required("$.scaling", scaling, ("requestCount",))
        if "requestCount" in scaling:
            c.integer("$.scaling.requestCount", scaling["requestCount"], 1)
    elif "type" not in scaling:
        c.add("$.scaling", "missing property 'type'")
    else:
        c.enum("$.scaling.type", kind, ("QUEUE_DELAY", "REQUEST_COUNT"))


def _vcpu_power_of_two(cpu: list[dict[str, Any]]) -> None:
    """BaseCpuConfig: "must be a power of two" is prose, not schema: a 400 [INF]."""
    for item in cpu:
        count = item["vcpuCount"]
        if count & (count - 1):
            raise Problem(400, f"vcpuCount {count} is not a power of two")


def _check_body(body: Any, *, create: bool) -> dict[str, Any]:
    c = _Check()
    if not c.type("$", body, "object") or not isinstance(body, dict):
        raise invalid(c.errors)
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
        "releases": [_release(1, [], now)],
    }
    if "cpu" in body:
        _vcpu_power_of_two(body["cpu"])
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
        _vcpu_power_of_two(body["cpu"])
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
    diff = [
        {"field": k, "old": endpoint.get(k), "new": new.get(k)}
        for k in CONTAINER
        if new.get(k) != endpoint.get(k)
    ]
    if diff:  # §1.4: container changes make a new release, rolled out as workers are replaced
        new["version"] = int(endpoint.get("version", 1)) + 1
        new["releases"] = [_release(new["version"], diff), *endpoint.get("releases", [])]
    return new


IDLE_SCALE_DOWN = ((7, 0), (3, 2))  # §1.6: idle days -> the workers.max RunPod lowers to


def idle_scale_down(endpoint: dict[str, Any], days: float) -> dict[str, Any]:
    """RunPod's own change to an endpoint without requests for `days` (§1.6, docs
    `endpoint-configurations.mdx`): workers.max lowered to 2 after 3 days, to 0 after 7; it
    stays there until raised. The sandbox has no clock of days: a test says how many passed."""
    for after, lowered in IDLE_SCALE_DOWN:
        if days >= after and endpoint["workers"]["max"] > lowered:
            workers = {**endpoint["workers"], "max": lowered}
            workers["min"] = min(workers["min"], lowered)  # [INF]: min never above max
            return {**endpoint, "workers": workers}
    return endpoint


def _release(version: int, diff: list[dict[str, Any]], now: float | None = None) -> dict[str, Any]:
    return {
        "id": new_id(),
        "version": version,
        "source": "MANUAL",
        "buildId": None,
        "createdByUserId": "user_sandbox",
        "createdAt": _iso(time.time() if now is None else now),
        "diff": diff,
    }


def releases(endpoint: dict[str, Any], worker_versions: list[int]) -> dict[str, Any]:
    """`GET /v2/serverless/{id}/releases` (§1.5), newest first; workers counted per version."""
    version = int(endpoint.get("version", 1))
    on_latest = sum(1 for v in worker_versions if v == version)
    total = len(worker_versions)
    return {
        "endpointVersion": version,
        "rollout": {
            "inProgress": on_latest < total,
            "workersOnLatest": on_latest,
            "workersTotal": total,
            "percentOnLatest": 100 if total == 0 else round(100 * on_latest / total),
        },
        "releases": [
            {**r, "workerCount": sum(1 for v in worker_versions if v == r["version"])}
            for r in endpoint.get("releases", [])
        ],
    }


def view(endpoint: dict[str, Any], data_plane: str) -> dict[str, Any]:
    """The `Endpoint` object (§1.2); `data_plane` is the base the request URLs point at."""
    out = {k: v for k, v in endpoint.items() if k not in ("version", "releases")}
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
