"""EndpointClient: RunPod Serverless endpoints on REST v2 `/v2/serverless` (the control plane).

Endpoints exist only on REST v2, so podctl uses this client for them whatever `--api` says,
with the same key and base URL. Every create sends every field: RunPod's defaults disagree
between its schema, its docs and what it does (an omitted `timeout` is stored as 0, an omitted
`flashboot` turns FlashBoot off; runpod-serverless.md §1.3). An update sends every scaling and
placement field, and the container fields (image, env, disk, args, registry) only when one of
them changes: a container change rolls out a new release that replaces the workers (§1.4).

`/health` is on the data plane (`https://api.runpod.ai/v2/{id}/health`, §2.9), a second base:
for RunPod it is that host; for any other base (the sandbox) `<base>/serverless/v2`.
"""

from __future__ import annotations

import math
import urllib.parse
from collections.abc import Mapping
from typing import Any

from reconciler.backends.runpod_rest.client import RestClient
from reconciler.errors import ApiResponseError, PodNotFoundError
from reconciler.model import (
    ActualEndpoint,
    CpuFlavor,
    EndpointHealth,
    EndpointMarkers,
    EndpointSpec,
)

RUNPOD_REST_HOST = "rest.runpod.io"
RUNPOD_API_HOST = "api.runpod.io"
RUNPOD_DATA_PLANE = "https://api.runpod.ai/v2"
SANDBOX_DATA_PLANE = "/serverless/v2"  # the sandbox's data plane, a path of its own server
CONTAINER_FIELDS = ("image", "args", "disk", "ports", "env", "registry")


def data_plane_base(rest_base: str) -> str:
    """Where `/{id}/health` (and the job API) live for this REST base."""
    host = urllib.parse.urlsplit(rest_base).hostname or ""
    if host in (RUNPOD_API_HOST, RUNPOD_REST_HOST):
        return RUNPOD_DATA_PLANE
    return rest_base.rstrip("/") + SANDBOX_DATA_PLANE


def _segment(value: str) -> str:
    return urllib.parse.quote(value, safe="")


# --- requests ---------------------------------------------------------------------------------


def compute_body(spec: EndpointSpec) -> dict[str, Any]:
    """`gpu` or `cpu` of a create or update body (both are sent whole)."""
    if spec.is_cpu:
        return {"cpu": [{"id": c.flavor, "vcpuCount": c.vcpu} for c in spec.cpu]}
    # `excludedTypes` always goes with `pools`: pools alone clear the exclusions (§1.4)
    return {
        "gpu": {
            "pools": list(spec.gpu_pools),
            "count": spec.gpu_count,
            "excludedTypes": list(spec.gpu_exclude),
            "allowedCudaVersions": list(spec.cuda),
        }
    }


def scaling_body(spec: EndpointSpec) -> dict[str, Any]:
    """`workers`, `scaling`, `timeout`, `flashboot`, placement: sent on every create and update."""
    workers: dict[str, Any] = {"min": spec.workers_min, "max": spec.workers_max}
    if spec.request_count is not None:
        # the one field podctl cannot send: RunPod refuses idleTimeout with REQUEST_COUNT (§1.3)
        scaling: dict[str, Any] = {"type": "REQUEST_COUNT", "requestCount": spec.request_count}
    else:
        workers["idleTimeout"] = spec.idle_timeout_s
        scaling = {"type": "QUEUE_DELAY", "queueDelay": spec.queue_delay_s}
    return {
        "workers": workers,
        "scaling": scaling,
        "timeout": spec.execution_timeout_s * 1000,  # milliseconds (§1.2)
        "flashboot": spec.flashboot.wire,
        # an empty list leaves the choice to RunPod [INF: the schema has no default]
        "dataCenterIds": list(spec.data_centers),
        "networkVolumes": list(spec.network_volumes),
    }


def container_body(spec: EndpointSpec, env: Mapping[str, str]) -> dict[str, Any]:
    body: dict[str, Any] = {
        "args": spec.docker_args,
        "disk": spec.disk_gb,
        "ports": [],
        "env": dict(env),
        "registry": spec.registry,
    }
    if spec.image is not None:
        body["image"] = spec.image
    return body


def create_body(name: str, spec: EndpointSpec, env: Mapping[str, str]) -> dict[str, Any]:
    """`POST /v2/serverless`: every field, explicitly (`env` holds the markers and secrets)."""
    body: dict[str, Any] = {"name": name, "type": "QUEUE"}
    if spec.template is not None:
        body["templateId"] = spec.template
    return {
        **body,
        **container_body(spec, env),
        **compute_body(spec),
        **scaling_body(spec),
    }


def update_body(
    name: str, spec: EndpointSpec, env: Mapping[str, str], *, container: bool
) -> dict[str, Any]:
    """`PATCH /v2/serverless/{id}`: the same fields but `type` (not patchable), the container
    ones only with `container` (a change there rolls out a new release)."""
    body: dict[str, Any] = {"name": name, **compute_body(spec), **scaling_body(spec)}
    if container:
        body.update(container_body(spec, env))
    return body


# --- answers ----------------------------------------------------------------------------------


def _strs(value: object) -> tuple[str, ...]:
    return tuple(str(v) for v in value) if isinstance(value, list) else ()


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _obj(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key)
    return value if isinstance(value, dict) else {}


def parse_endpoint(data: object) -> ActualEndpoint:
    """One `Endpoint` object (§1.2) as an ActualEndpoint; ApiResponseError when it is none."""
    if not isinstance(data, dict) or not isinstance(data.get("id"), str) or not data["id"]:
        raise ApiResponseError("RunPod endpoint: the answer is not an endpoint (no id)")
    gpu, workers, scaling, raw_env = (_obj(data, k) for k in ("gpu", "workers", "scaling", "env"))
    env = {str(k): str(v) for k, v in raw_env.items()}
    cpu = tuple(
        CpuFlavor(str(c.get("id", "")), _int(c.get("vcpuCount")) or 0)
        for c in data.get("cpu") or []
        if isinstance(c, dict)
    )
    by_count = scaling.get("type") == "REQUEST_COUNT"
    timeout = _number(data.get("timeout"))
    return ActualEndpoint(
        endpoint_id=data["id"],
        name=str(data.get("name", "")),
        image=str(data.get("image") or ""),
        gpu_pools=_strs(gpu.get("pools")),
        gpu_count=_int(gpu.get("count")),
        gpu_exclude=_strs(gpu.get("excludedTypes")),
        cuda=_strs(gpu.get("allowedCudaVersions")),
        cpu=cpu,
        workers_min=_int(workers.get("min")) or 0,
        workers_max=_int(workers.get("max")) or 0,
        idle_timeout_s=_int(workers.get("idleTimeout")),
        queue_delay_s=None if by_count else _number(scaling.get("queueDelay")),
        request_count=_int(scaling.get("requestCount")) if by_count else None,
        execution_timeout_s=(timeout or 0.0) / 1000.0,
        flashboot=str(data.get("flashboot", "")),
        env=env,
        network_volumes=_strs(data.get("networkVolumes")),
        data_centers=_strs(data.get("dataCenterIds")),
        disk_gb=_int(data.get("disk")),
        docker_args=str(data.get("args") or ""),
        registry=data.get("registry") if isinstance(data.get("registry"), str) else None,
        markers=EndpointMarkers.from_env(env),
        created_at=str(data.get("createdAt") or ""),
    )


def parse_endpoints(data: object) -> dict[str, ActualEndpoint]:
    """`GET /v2/serverless` -> endpoints by id."""
    items = data.get("endpoints") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise ApiResponseError("RunPod ListEndpoints: the answer has no `endpoints` list")
    found = (parse_endpoint(item) for item in items)
    return {e.endpoint_id: e for e in found}


def parse_health(data: object) -> EndpointHealth:
    """`/health` (§2.9); a missing count is 0."""
    jobs = data.get("jobs") if isinstance(data, dict) else None
    workers = data.get("workers") if isinstance(data, dict) else None
    jobs = jobs if isinstance(jobs, dict) else {}
    workers = workers if isinstance(workers, dict) else {}
    return EndpointHealth(
        workers_idle=_int(workers.get("idle")) or 0,
        workers_running=_int(workers.get("running")) or 0,
        jobs_in_queue=_int(jobs.get("inQueue")) or 0,
        jobs_in_progress=_int(jobs.get("inProgress")) or 0,
        jobs_completed=_int(jobs.get("completed")) or 0,
        jobs_failed=_int(jobs.get("failed")) or 0,
        jobs_retried=_int(jobs.get("retried")) or 0,
    )


class EndpointClient:
    """The `/v2/serverless` routes over a RestClient's transport (auth, retries, errors).

    Retries follow RestClient's rules: reads and DELETE on any transient failure; a create or
    PATCH only when the server surely did not act. A create whose answer was lost is found
    again by its markers at the next plan.
    """

    def __init__(
        self, rest: RestClient, *, data_plane: str | None = None, owns_rest: bool = False
    ) -> None:
        self.rest = rest
        self.data_plane = data_plane or data_plane_base(rest.url)
        self.owns_rest = owns_rest  # a REST client opened for endpoints only (`--api graphql`)

    @property
    def own_requests(self) -> int:
        """Requests sent on a REST client of its own (0 when it shares the pod backend's)."""
        return self.rest.request_count if self.owns_rest else 0

    async def list_endpoints(self) -> dict[str, ActualEndpoint]:
        data = await self.rest._call("GET", "/v2/serverless", "ListEndpoints", idempotent=True)
        return parse_endpoints(data)

    async def get_endpoint(self, endpoint_id: str) -> ActualEndpoint | None:
        """One endpoint, or None when RunPod knows no such endpoint (404)."""
        try:
            data = await self.rest._call(
                "GET", f"/v2/serverless/{_segment(endpoint_id)}", "GetEndpoint", idempotent=True
            )
        except PodNotFoundError:
            return None
        return parse_endpoint(data)

    async def create_endpoint(
        self, name: str, spec: EndpointSpec, env: Mapping[str, str]
    ) -> ActualEndpoint:
        body = create_body(name, spec, env)
        data = await self.rest._call(
            "POST", "/v2/serverless", "CreateEndpoint", body=body, idempotent=False
        )
        return parse_endpoint(data)

    async def update_endpoint(
        self,
        endpoint_id: str,
        name: str,
        spec: EndpointSpec,
        env: Mapping[str, str],
        *,
        container: bool,
    ) -> ActualEndpoint:
        body = update_body(name, spec, env, container=container)
        data = await self.rest._call(
            "PATCH",
            f"/v2/serverless/{_segment(endpoint_id)}",
            "UpdateEndpoint",
            body=body,
            idempotent=False,
        )
        return parse_endpoint(data)

    async def delete_endpoint(self, endpoint_id: str) -> bool:
        """True if it went now, False if it was already gone (404)."""
        try:
            await self.rest._call(
                "DELETE",
                f"/v2/serverless/{_segment(endpoint_id)}",
                "DeleteEndpoint",
                idempotent=True,
            )
        except PodNotFoundError:
            return False
        return True

    async def health(self, endpoint_id: str) -> EndpointHealth | None:
        """`GET {data plane}/{id}/health`; None when the endpoint is unknown there (404)."""
        url = f"{self.data_plane}/{_segment(endpoint_id)}/health"
        rest = self.rest
        operation = "EndpointHealth"

        async def attempt(ends: float) -> object:
            status, headers, content = await rest._round_trip("GET", url, None, operation, ends)
            return rest._answer(status, headers, content, operation)

        try:
            data = await rest._with_retries(operation, attempt, idempotent=True)
        except PodNotFoundError:
            return None
        return parse_health(data)
