"""RunPod REST v2 JSON as ActualPod / ActualState / GpuOffer, and its problem+json as typed errors.

Pure. A v2 `Pod` becomes the same ActualPod GraphQL builds for that pod in every field the
planner compares (reconciler/planner/fields.py), so switching `--api` plans no change. Anything of
the wrong shape is an ApiResponseError naming the path; unknown fields are ignored (the spec moves).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from reconciler.backends.runpod_graphql.wire import MESSAGE_LIMIT, JsonObject, printable
from reconciler.errors import (
    ApiError,
    ApiResponseError,
    AuthError,
    CapacityError,
    PodNotFoundError,
    ResumeCapacityError,
)
from reconciler.model import (
    ActualPod,
    ActualState,
    CloudType,
    GpuOffer,
    NetworkVolume,
    PodMarkers,
    PodStatus,
    SshEndpoint,
)

# v2 `status` is observed; GraphQL's `desiredStatus` is intent. A pod on its way up (or whose
# container failed) is one RunPod aims to run: RUNNING, as runpodctl maps it back.
STATUS = {
    "PROVISIONING": PodStatus.RUNNING,
    "STARTING": PodStatus.RUNNING,
    "RUNNING": PodStatus.RUNNING,
    "ERROR": PodStatus.RUNNING,
    "EXITED": PodStatus.EXITED,
    "TERMINATED": PodStatus.TERMINATED,
}
# v2 availability levels, spelled as GraphQL's stockStatus (what `podctl gpus` shows)
STOCK = {"HIGH": "High", "MEDIUM": "Medium", "LOW": "Low", "NONE": "None"}
CLOUDS = {"SECURE": CloudType.SECURE, "COMMUNITY": CloudType.COMMUNITY}
NO_CAPACITY = "no longer any instances available"
HOST_GPU_TAKEN = "not enough free gpus on the host machine"
MAX_LISTED_ERRORS = 10  # validation failures shown in one message


class NoFundsError(ApiError):
    """HTTP 402: the account's balance cannot pay for the pod; no other candidate will do."""


class PagedListError(ApiResponseError):
    """The list answer says more pages follow: podctl would miss pods, so it reads none."""


def parse_env(value: object, path: str) -> dict[str, str]:
    """v2's env object `{"K": "V"}` (GraphQL sends `["K=V"]`)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ApiResponseError(f"RunPod answer: {path}.env is not an object")
    env: dict[str, str] = {}
    for key, item in value.items():
        if not isinstance(item, str):
            raise ApiResponseError(
                f"RunPod answer: {path}.env.{printable(str(key))[:60]} is not a string"
            )
        env[key] = item
    return env


def parse_ports(pod: JsonObject) -> tuple[str, ...]:
    items = pod.opt_list("ports") or []
    if not all(isinstance(p, str) for p in items):
        raise ApiResponseError(f"RunPod answer: {pod.path}.ports holds a non-string")
    return tuple(p.strip() for p in items if isinstance(p, str) and p.strip())


def parse_ssh(pod: JsonObject) -> SshEndpoint | None:
    """`ssh.direct`: the public mapping of 22/tcp (null until the running pod has one)."""
    ssh = pod.opt_obj("ssh")
    direct = ssh.opt_obj("direct") if ssh is not None else None
    if direct is None:
        return None
    host, port = direct.opt_str("host"), direct.opt_int("port")
    return SshEndpoint(host=host, port=port) if host and port and 0 < port < 65536 else None


def _mounts(pod: JsonObject) -> tuple[int | None, str | None, str | None]:
    """(volume GB, mount path, network volume id) from `mounts`.

    No mount at all is a pod made with volume 0 (GraphQL reports volumeInGb 0); a network
    volume has no size of its own (None: the planner then accepts what the spec says).
    """
    mounts = pod.opt_obj("mounts")
    persistent = mounts.opt_obj("persistent") if mounts is not None else None
    network = (mounts.opt_list("network") if mounts is not None else None) or []
    if persistent is not None:
        return persistent.opt_int("size"), persistent.opt_str("path"), None
    if network:
        first = JsonObject(network[0], f"{pod.path}.mounts.network[0]")
        return None, first.opt_str("path"), first.opt_str("volumeId")
    return 0, None, None


def parse_pod(value: object, path: str = "pod") -> ActualPod:
    """One v2 `Pod` as an ActualPod."""
    pod = JsonObject(value, path)
    env = parse_env(pod.data.get("env"), path)
    gpu = pod.opt_obj("gpu")
    cpu = pod.opt_obj("cpu")  # 5.1: CPU pods carry `cpu` instead of `gpu`
    runtime = pod.opt_obj("runtime")
    status = pod.opt_str("status") or ""
    ssh = pod.opt_obj("ssh")
    proxy = ssh.opt_obj("proxy") if ssh is not None else None
    volume_gb, mount, network_volume = _mounts(pod)
    cloud = pod.opt_str("cloud")
    return ActualPod(
        pod_id=pod.str_("id"),
        name=pod.opt_str("name") or "",
        desired_status=STATUS.get(status, PodStatus.UNKNOWN),
        image=pod.opt_str("image") or "",
        gpu_type_id=gpu.opt_str("id") if gpu is not None else None,
        gpu_count=(gpu.opt_int("count") or 0) if gpu is not None else 0,
        cpu_flavor=cpu.opt_str("id") if cpu is not None else None,
        vcpu_count=cpu.opt_float("vcpuCount") if cpu is not None else None,
        memory_gb=cpu.opt_float("memory") if cpu is not None else None,
        cloud=CLOUDS.get(cloud) if cloud is not None else None,
        interruptible=False,  # v2 has no spot pods
        container_disk_gb=pod.opt_int("disk"),
        volume_gb=volume_gb,
        volume_mount=mount,
        ports=parse_ports(pod),
        env=env,
        markers=PodMarkers.from_env(env),
        docker_args=pod.opt_str("args") or "",
        network_volume_id=network_volume,
        cost_per_hr=pod.opt_float("cost"),
        data_center_id=pod.opt_str("dataCenterId"),
        # the proxy's `<podId>-<hex>` routing token is the old machine.podHostId
        pod_host_id=proxy.opt_str("username") if proxy is not None else None,
        ssh=parse_ssh(pod),
        runtime_ready=status == "RUNNING",
        container_failed=status == "ERROR",
        uptime_s=runtime.opt_int("uptime") if runtime is not None else None,
        started_at=parse_time(pod.opt_str("startedAt"), f"{path}.startedAt"),
    )


def parse_time(text: str | None, path: str) -> datetime | None:
    """An RFC 3339 time (`2026-03-13T20:00:00Z`, 5.1 `startedAt`) as an aware datetime."""
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ApiResponseError(
            f"RunPod answer: {path} is not an RFC 3339 time: {printable(text)[:40]!r}"
        ) from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _next_page(body: JsonObject) -> bool:
    """Whether the answer says a further page exists (the spec has none; later clients page)."""
    page = body.data.get("pagination")
    if isinstance(page, dict) and (
        page.get("hasNextPage") is True or page.get("nextCursor") not in (None, "")
    ):
        return True
    return any(body.data.get(k) not in (None, "") for k in ("nextCursor", "cursor", "next"))


def parse_pods(value: object) -> ActualState:
    """`{"pods": [Pod...]}` as an ActualState."""
    body = JsonObject(value, "answer")
    items = body.opt_list("pods")
    if items is None:
        raise ApiResponseError("RunPod answer: `pods` is missing (is this REST v2?)")
    if _next_page(body):
        raise PagedListError(
            "RunPod's pod list says more pages follow, and podctl reads pods in one unpaged "
            "request (as RunPod's REST v2 reference defines it): planning on part of the pods "
            "could create a duplicate or miss an orphan, so nothing was planned. Use --api graphql "
            "until podctl supports paged lists."
        )
    pods = [parse_pod(item, f"pods[{i}]") for i, item in enumerate(items)]
    return ActualState(pods={pod.pod_id: pod for pod in pods})


def parse_gpu_offers(
    value: object, cloud: CloudType, wanted: frozenset[str] | None
) -> dict[str, GpuOffer]:
    """`{"gpus": [GpuType...]}` (with include=AVAILABILITY for this cloud) as offers on it.

    A type the cloud does not offer (`secure`/`community` false) is left out, as GraphQL does.
    """
    body = JsonObject(value, "answer")
    items = body.opt_list("gpus")
    if items is None:
        raise ApiResponseError("RunPod answer: `gpus` is missing")
    key = "secure" if cloud is CloudType.SECURE else "community"
    offers: dict[str, GpuOffer] = {}
    for index, item in enumerate(items):
        gpu = JsonObject(item, f"gpus[{index}]")
        gpu_id = gpu.str_("id")
        if (wanted is not None and gpu_id not in wanted) or gpu_id == "unknown":
            continue
        offered = gpu.opt_bool(key)
        if offered is False:
            continue
        price = gpu.opt_obj("price")
        counts = gpu.opt_obj("maxCount")
        level = gpu.opt_str("availability")
        offers[gpu_id] = GpuOffer(
            gpu_type_id=gpu_id,
            display_name=gpu.opt_str("name") or gpu_id,
            memory_gb=gpu.opt_int("memory"),
            secure_cloud=gpu.opt_bool("secure"),
            community_cloud=gpu.opt_bool("community"),
            max_gpu_count=counts.opt_int(key) if counts is not None else None,
            on_demand_price=price.opt_float(key) if price is not None else None,
            stock_status=STOCK.get(level, printable(level)[:20]) if level is not None else None,
            cuda_versions=_cuda_versions(gpu),
            data_centers=_data_centers(gpu),
        )
    return dict(sorted(offers.items()))


def parse_cpu_offers(value: object) -> dict[str, GpuOffer]:
    """`{"cpus": [CpuType...]}` (6.2, with include=AVAILABILITY) as offers on secure cloud,
    priced per vCPU, with each flavor's vCPU range."""
    body = JsonObject(value, "answer")
    items = body.opt_list("cpus")
    if items is None:
        raise ApiResponseError("RunPod answer: `cpus` is missing")
    offers: dict[str, GpuOffer] = {}
    for index, item in enumerate(items):
        cpu = JsonObject(item, f"cpus[{index}]")
        flavor = cpu.str_("id")
        vcpu = cpu.opt_obj("vcpu")
        price = cpu.opt_obj("price")
        level = cpu.opt_str("availability")
        low = vcpu.opt_int("min") if vcpu is not None else None
        high = vcpu.opt_int("max") if vcpu is not None else None
        offers[flavor] = GpuOffer(
            gpu_type_id=flavor,
            display_name=cpu.opt_str("name") or flavor,
            secure_cloud=True,
            community_cloud=False,
            on_demand_price=price.opt_float("securePerVcpu") if price is not None else None,
            stock_status=STOCK.get(level, printable(level)[:20]) if level is not None else None,
            vcpu_range=(low or 1, high or low or 1),
        )
    return dict(sorted(offers.items()))


def parse_volume(value: object, path: str = "networkVolume") -> NetworkVolume:
    """One `NetworkVolume` (7): `dataCenter` (GraphQL's `dataCenterId`)."""
    volume = JsonObject(value, path)
    return NetworkVolume(
        volume_id=volume.str_("id"),
        name=volume.opt_str("name") or "",
        size_gb=volume.opt_int("size"),
        data_center=volume.opt_str("dataCenter"),
    )


def parse_volumes(value: object) -> dict[str, NetworkVolume]:
    """`{"networkVolumes": [NetworkVolume...]}` by id."""
    body = JsonObject(value, "answer")
    items = body.opt_list("networkVolumes")
    if items is None:
        raise ApiResponseError("RunPod answer: `networkVolumes` is missing")
    volumes = [parse_volume(v, f"networkVolumes[{i}]") for i, v in enumerate(items)]
    return {v.volume_id: v for v in volumes}


def _data_centers(gpu: JsonObject) -> tuple[str, ...]:
    """The data centers listed with stock (`availability` not NONE; 6.1 `dataCenters`)."""
    found: list[str] = []
    for index, item in enumerate(gpu.opt_list("dataCenters") or ()):
        entry = JsonObject(item, f"{gpu.path}.dataCenters[{index}]")
        dc = entry.opt_str("id")
        if dc and entry.opt_str("availability") != "NONE":
            found.append(printable(dc)[:40])
    return tuple(found)


def _cuda_versions(gpu: JsonObject) -> tuple[str, ...]:
    """The CUDA versions with free capacity now (`available: false` = offered but full)."""
    found: list[str] = []
    for index, item in enumerate(gpu.opt_list("cudaVersions") or ()):
        entry = JsonObject(item, f"{gpu.path}.cudaVersions[{index}]")
        version = entry.opt_str("version")
        if version and entry.opt_bool("available") is not False:
            found.append(printable(version)[:20])
    return tuple(found)


# --- problem+json errors ---------------------------------------------------------------------


def _cut(text: str) -> str:
    text = printable(text.strip())
    if len(text) > MESSAGE_LIMIT:
        return f"{text[:MESSAGE_LIMIT]}… ({len(text):,} characters in all)"
    return text


def problem(payload: object) -> tuple[str, str, tuple[str, ...]]:
    """(title, detail, errors) of an RFC 9457 body, printable and cut; empty when absent.

    A v1 body (`{"error": ...}` or `{"message": ...}`) gives its text as the detail.
    """
    if not isinstance(payload, dict):
        return "", "", ()
    title = payload.get("title")
    detail = payload.get("detail")
    if not isinstance(detail, str):
        legacy = payload.get("error", payload.get("message"))
        detail = legacy if isinstance(legacy, str) else ""
    items = payload.get("errors")
    errors = tuple(_cut(e) for e in items if isinstance(e, str)) if isinstance(items, list) else ()
    return (_cut(title) if isinstance(title, str) else ""), _cut(detail), errors


def as_errors(detail: str, errors: tuple[str, ...]) -> tuple[dict[str, object], ...]:
    """The problem in ApiError's `errors` shape: the detail first, then each failure."""
    return tuple({"message": m} for m in (detail, *errors) if m)


def describe(status: int, title: str, detail: str, errors: tuple[str, ...]) -> str:
    """`HTTP 422 Unprocessable Entity: Request validation failed. ($: missing property 'x')`."""
    text = f"HTTP {status}" + (f" {title}" if title else "")
    if detail:
        text += f": {detail}"
    if errors:
        shown = "; ".join(errors[:MAX_LISTED_ERRORS])
        more = len(errors) - MAX_LISTED_ERRORS
        text += f" ({shown}" + (f"; and {more} more" if more > 0 else "") + ")"
    return text


def classify(
    status: int, title: str, detail: str, errors: tuple[str, ...], operation: str
) -> ApiError:
    """A 4xx problem as the typed error that tells the caller what to do (never retried).

    400 "no longer any instances available" is a CapacityError (the next candidate); 402 stops
    (NoFundsError); 404 is PodNotFoundError; every other 400 and each 422 is a request problem.
    """
    lowered = detail.lower()
    text = f"RunPod {operation}: {describe(status, title, detail, errors)}"
    kind: type[ApiError] = ApiError
    if status == 400 and NO_CAPACITY in lowered:
        kind = CapacityError
    elif status in (400, 409) and HOST_GPU_TAKEN in lowered:
        kind = ResumeCapacityError
    elif status == 402:
        kind = NoFundsError
        text += (
            "; the RunPod account has no funds for this pod: add credit "
            "(https://www.runpod.io/console/user/billing) and run again"
        )
    elif status in (401, 403):
        kind = AuthError
        text += (
            "; the API key was refused"
            + (
                ", or it has no access to this (a read-only or restricted key)"
                if status == 403
                else ""
            )
            + ": check RUNPOD_API_KEY or ~/.runpod/config.toml."
        )
    elif status == 404:
        kind = PodNotFoundError
    elif status == 422:
        text += "; RunPod refused the request as invalid: podctl does not retry it"
    return kind(text, errors=as_errors(detail, errors), status_code=status, operation=operation)


def is_v1(payload: object) -> bool:
    """A `{"error": ...}` body is REST v1's shape: the URL points at v1, not v2."""
    return isinstance(payload, Mapping) and "error" in payload and "title" not in payload
