"""Turn RunPod's JSON answers into ActualPod / ActualState / GpuOffer or a typed ApiError.

Pure. Anything of the wrong shape becomes ApiResponseError: no KeyError or TypeError escapes.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping

from reconciler.errors import (
    ApiError,
    ApiResponseError,
    AuthError,
    CapacityError,
    PodNotFoundError,
    ResumeCapacityError,
    TransientApiError,
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

# podType values that mean a spot pod (RunPod spells it "interruptable")
_SPOT_POD_TYPES = frozenset({"INTERRUPTABLE", "BID"})
# whole numbers beyond a signed 64-bit integer are no count, size or port RunPod sends
_INT_LIMIT = 2**63
# an error message longer than this is cut (an HTML page or a stack trace is no message)
MESSAGE_LIMIT = 300


def decode(content: bytes) -> object:
    """The JSON value of an answer's body, or None when it is not JSON (or nested too deep)."""
    try:
        return json.loads(content)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return None


class _Obj:
    """A JSON object with typed accessors that raise ApiResponseError naming the path."""

    def __init__(self, value: object, path: str) -> None:
        if not isinstance(value, dict):
            raise ApiResponseError(f"RunPod answer: {path} is not an object")
        self.data: dict[str, object] = value
        self.path = path

    def _bad(self, key: str, what: str) -> ApiResponseError:
        return ApiResponseError(f"RunPod answer: {self.path}.{key} is not {what}")

    def str_(self, key: str) -> str:
        value = self.data.get(key)
        if not isinstance(value, str):
            raise self._bad(key, "a string")
        return value

    def opt_str(self, key: str) -> str | None:
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self._bad(key, "a string")
        return value

    def opt_int(self, key: str) -> int | None:
        value = self.data.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self._bad(key, "a number")
        if isinstance(value, float) and not value.is_integer():
            raise self._bad(key, "a whole number")
        if not -_INT_LIMIT < value < _INT_LIMIT:
            raise self._bad(key, "a whole number in range")
        return int(value)

    def opt_float(self, key: str) -> float | None:
        value = self.data.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self._bad(key, "a number")
        try:
            number = float(value)
        except OverflowError:  # an int beyond any float
            raise self._bad(key, "a finite number") from None
        if not math.isfinite(number):
            raise self._bad(key, "a finite number")
        return number

    def opt_bool(self, key: str) -> bool | None:
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, bool):
            raise self._bad(key, "a boolean")
        return value

    def opt_obj(self, key: str) -> _Obj | None:
        value = self.data.get(key)
        return None if value is None else _Obj(value, f"{self.path}.{key}")

    def obj(self, key: str) -> _Obj:
        return _Obj(self.data.get(key), f"{self.path}.{key}")

    def opt_list(self, key: str) -> list[object] | None:
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, list):
            raise self._bad(key, "a list")
        return value


JsonObject = _Obj  # the REST client reads its answers with the same typed accessors


def parse_env(items: list[object] | None, path: str) -> dict[str, str]:
    """RunPod's `["K=V", ...]` as a mapping; the value keeps any further `=` and newlines."""
    env: dict[str, str] = {}
    for item in items or ():
        if not isinstance(item, str):
            raise ApiResponseError(f"RunPod answer: {path}.env holds a non-string")
        key, _, value = item.partition("=")
        env[key] = value
    return env


def parse_ports(value: str | None) -> tuple[str, ...]:
    """`"8888/http, 22/tcp"` as `("8888/http", "22/tcp")`."""
    return tuple(p.strip() for p in (value or "").split(",") if p.strip())


def parse_ssh(runtime: _Obj | None) -> SshEndpoint | None:
    """The public mapping of private port 22, when the runtime has one."""
    if runtime is None:
        return None
    for index, item in enumerate(runtime.opt_list("ports") or ()):
        port = _Obj(item, f"{runtime.path}.ports[{index}]")
        if port.opt_int("privatePort") != 22 or port.opt_bool("isIpPublic") is not True:
            continue
        if (port.opt_str("type") or "tcp") != "tcp":
            continue
        host, public = port.opt_str("ip"), port.opt_int("publicPort")
        if host and public:
            return SshEndpoint(host=host, port=public)
    return None


def parse_pod(value: object, path: str = "pod") -> ActualPod:
    """One `Pod` object (with the POD_FIELDS selection) as an ActualPod."""
    pod = _Obj(value, path)
    env = parse_env(pod.opt_list("env"), path)
    machine = pod.opt_obj("machine")
    runtime = pod.opt_obj("runtime")
    secure = machine.opt_bool("secureCloud") if machine else None
    cloud = None if secure is None else (CloudType.SECURE if secure else CloudType.COMMUNITY)
    interruptible = (pod.opt_str("podType") or "") in _SPOT_POD_TYPES
    cost = pod.opt_float("costPerHr")
    gpu_count = pod.opt_int("gpuCount") or 0
    # [INF] a spot pod is billed at its bid, so cost / gpu count is the bid per GPU
    bid = cost / gpu_count if interruptible and cost is not None and gpu_count else None
    uptime = runtime.opt_int("uptimeInSeconds") if runtime else None
    volume_gb = pod.opt_int("volumeInGb")
    network = pod.opt_str("networkVolumeId") or None  # RunPod reports "" for none
    return ActualPod(
        pod_id=pod.str_("id"),
        name=pod.opt_str("name") or "",
        desired_status=PodStatus.parse(pod.opt_str("desiredStatus") or ""),
        image=pod.opt_str("imageName") or "",
        gpu_type_id=machine.opt_str("gpuTypeId") if machine else None,
        gpu_display_name=machine.opt_str("gpuDisplayName") if machine else None,
        gpu_count=gpu_count,
        cloud=cloud,
        interruptible=interruptible,
        bid_per_gpu=bid,
        container_disk_gb=pod.opt_int("containerDiskInGb"),
        # a pod on a network volume has no volume disk of its own (REST v2 reports no size):
        # None, so the planner compares no size on either API
        volume_gb=None if network else volume_gb,
        # a pod without a volume has no mount, whatever path RunPod echoes (as REST v2 says)
        volume_mount=None if volume_gb == 0 and not network else pod.opt_str("volumeMountPath"),
        ports=parse_ports(pod.opt_str("ports")),
        env=env,
        markers=PodMarkers.from_env(env),
        docker_args=pod.opt_str("dockerArgs") or "",
        vcpu_count=pod.opt_float("vcpuCount"),
        memory_gb=pod.opt_float("memoryInGb"),
        network_volume_id=network,
        cost_per_hr=cost,
        data_center_id=machine.opt_str("dataCenterId") if machine else None,
        location=machine.opt_str("location") if machine else None,
        machine_id=pod.opt_str("machineId"),
        pod_host_id=machine.opt_str("podHostId") if machine else None,
        ssh=parse_ssh(runtime),
        runtime_ready=runtime is not None,
        uptime_s=uptime if uptime is not None else pod.opt_int("uptimeSeconds"),
        last_status_change=pod.opt_str("lastStatusChange") or "",
    )


# RunPod lists a GPU type "unknown" (no such card can be rented): never an offer
UNKNOWN_GPU = "unknown"


def parse_pods(data: Mapping[str, object]) -> ActualState:
    """`data.myself.pods` as an ActualState."""
    if data.get("myself", False) is None:
        # RunPod answers `myself: null` (HTTP 200, no errors) to a key it does not know
        raise AuthError(
            "RunPod ListPods: the API key was refused (RunPod knows no account for it: "
            "`myself` is null); check RUNPOD_API_KEY or ~/.runpod/config.toml.",
            operation="ListPods",
        )
    myself = _Obj(data.get("myself"), "data.myself")
    items = myself.opt_list("pods")
    if items is None:
        raise ApiResponseError("RunPod answer: data.myself.pods is missing")
    pods = [parse_pod(item, f"data.myself.pods[{i}]") for i, item in enumerate(items)]
    return ActualState(pods={pod.pod_id: pod for pod in pods})


def parse_cpu_flavors(data: Mapping[str, object]) -> dict[str, tuple[GpuOffer, float | None]]:
    """`data.cpuFlavors` as offers on secure cloud (no price: GraphQL prices them per data
    center), each with its RAM GB per vCPU."""
    items = data.get("cpuFlavors")
    if not isinstance(items, list):
        raise ApiResponseError("RunPod answer: data.cpuFlavors is not a list")
    out: dict[str, tuple[GpuOffer, float | None]] = {}
    for index, item in enumerate(items):
        flavor = _Obj(item, f"data.cpuFlavors[{index}]")
        flavor_id = flavor.str_("id")
        low, high = flavor.opt_int("minVcpu"), flavor.opt_int("maxVcpu")
        offer = GpuOffer(
            gpu_type_id=flavor_id,
            display_name=flavor.opt_str("displayName") or flavor_id,
            secure_cloud=True,
            community_cloud=False,
            vcpu_range=(low or 1, high or low or 1),
        )
        out[flavor_id] = (offer, flavor.opt_float("ramMultiplier"))
    return dict(sorted(out.items()))


def parse_volumes(data: Mapping[str, object]) -> dict[str, NetworkVolume]:
    """`data.myself.networkVolumes` by id (`dataCenterId`: REST v2's `dataCenter`)."""
    myself = _Obj(data.get("myself"), "data.myself")
    items = myself.opt_list("networkVolumes") or []
    volumes = []
    for index, item in enumerate(items):
        volume = _Obj(item, f"data.myself.networkVolumes[{index}]")
        volumes.append(
            NetworkVolume(
                volume_id=volume.str_("id"),
                name=volume.opt_str("name") or "",
                size_gb=volume.opt_int("size"),
                data_center=volume.opt_str("dataCenterId"),
            )
        )
    return {v.volume_id: v for v in volumes}


def parse_gpu_offers(data: Mapping[str, object], wanted: frozenset[str]) -> dict[str, GpuOffer]:
    """`data.gpuTypes` with `lowestPrice`, keeping the wanted GPU type ids."""
    items = data.get("gpuTypes")
    if not isinstance(items, list):
        raise ApiResponseError("RunPod answer: data.gpuTypes is not a list")
    offers: dict[str, GpuOffer] = {}
    for index, item in enumerate(items):
        gpu = _Obj(item, f"data.gpuTypes[{index}]")
        gpu_id = gpu.str_("id")
        if gpu_id not in wanted or gpu_id == UNKNOWN_GPU:
            continue
        price = gpu.opt_obj("lowestPrice")
        counts = price.opt_list("availableGpuCounts") if price else None
        if counts is not None and not all(
            isinstance(c, int) and not isinstance(c, bool) for c in counts
        ):
            raise ApiResponseError(
                f"RunPod answer: {gpu.path}.lowestPrice.availableGpuCounts is not a list of "
                "whole numbers"
            )
        offers[gpu_id] = GpuOffer(
            gpu_type_id=gpu_id,
            display_name=gpu.opt_str("displayName") or gpu_id,
            memory_gb=gpu.opt_int("memoryInGb"),
            secure_cloud=gpu.opt_bool("secureCloud"),
            community_cloud=gpu.opt_bool("communityCloud"),
            max_gpu_count=gpu.opt_int("maxGpuCount"),
            on_demand_price=price.opt_float("uninterruptablePrice") if price else None,
            minimum_bid_price=price.opt_float("minimumBidPrice") if price else None,
            stock_status=price.opt_str("stockStatus") if price else None,
            available_gpu_counts=tuple(c for c in counts or () if isinstance(c, int)),
        )
    return offers


def parse_gpu_offers_by_cloud(
    data: Mapping[str, object], wanted: frozenset[str] | None
) -> dict[CloudType, dict[str, GpuOffer]]:
    """`data.gpuTypes` with the `secure` and `community` lowestPrice aliases, by cloud.

    `wanted` None keeps every GPU type. A type with no price on a cloud is still listed there
    (prices None), unless RunPod says the cloud does not offer it.
    """
    items = data.get("gpuTypes")
    if not isinstance(items, list):
        raise ApiResponseError("RunPod answer: data.gpuTypes is not a list")
    ids = frozenset(
        str(item.get("id"))
        for item in items
        if isinstance(item, dict) and item.get("id") and item.get("id") != UNKNOWN_GPU
    )
    keep = ids if wanted is None else wanted
    result: dict[CloudType, dict[str, GpuOffer]] = {}
    for cloud, alias in ((CloudType.SECURE, "secure"), (CloudType.COMMUNITY, "community")):
        most = (
            "maxGpuCountSecureCloud" if cloud is CloudType.SECURE else "maxGpuCountCommunityCloud"
        )
        renamed = [
            {
                **item,
                "lowestPrice": item.get(alias),
                # the cloud's own maximum per pod, when RunPod gives it, else the overall one
                "maxGpuCount": item.get(most)
                if item.get(most) is not None
                else item.get("maxGpuCount"),
            }
            if isinstance(item, dict)
            else item
            for item in items
        ]
        offers = parse_gpu_offers({"gpuTypes": renamed}, keep)
        result[cloud] = {
            gpu_id: offer
            for gpu_id, offer in sorted(offers.items())
            if (offer.secure_cloud if cloud is CloudType.SECURE else offer.community_cloud)
            is not False
        }
    return result


# --- GraphQL errors ---------------------------------------------------------------------------


def errors_of(payload: object) -> tuple[dict[str, object], ...]:
    if not isinstance(payload, dict):
        return ()
    errors = payload.get("errors")
    if not isinstance(errors, list):
        return ()
    return tuple(e if isinstance(e, dict) else {"message": str(e)} for e in errors)


def printable(text: str) -> str:
    """Server text safe inside an error message: control and bidi characters as `\\x1b` escapes.

    A server's message could otherwise rewrite the user's terminal (ESC sequences), hide text
    (CR, backspace) or reorder it (bidi overrides).
    """
    return "".join(
        ch if ch.isprintable() or ch == " " else ch.encode("unicode_escape").decode("ascii")
        for ch in text
    )


def first_message(errors: tuple[dict[str, object], ...]) -> str:
    """`errors[0].message`, printable and cut to MESSAGE_LIMIT characters; "" when none."""
    if not errors:
        return ""
    message = errors[0].get("message")
    if not isinstance(message, str):
        return ""
    message = printable(message.strip())
    if len(message) > MESSAGE_LIMIT:
        return f"{message[:MESSAGE_LIMIT]}… ({len(message):,} characters in all)"
    return message


def classify(
    message: str, errors: tuple[dict[str, object], ...], status: int, operation: str
) -> ApiError:
    """Map a GraphQL error to the type that tells the caller what to do."""
    lowered = message.lower()
    extensions = errors[0].get("extensions") if errors else None
    code = extensions.get("code") if isinstance(extensions, dict) else None
    text = f"RunPod {operation}: {message or 'unknown error'}"
    if "no longer any instances available" in lowered:
        return CapacityError(text, errors=errors, status_code=status, operation=operation)
    if "not enough free gpus on the host machine" in lowered:
        return ResumeCapacityError(text, errors=errors, status_code=status, operation=operation)
    if "pod not found" in lowered:
        return PodNotFoundError(text, errors=errors, status_code=status, operation=operation)
    if "something went wrong" in lowered or code == "INTERNAL_SERVER_ERROR":
        return TransientApiError(text, errors=errors, status_code=status, operation=operation)
    if lowered.strip(". ") in ("unauthorized", "forbidden") or code in ("UNAUTHENTICATED",):
        return AuthError(text, errors=errors, status_code=status, operation=operation)
    return ApiError(text, errors=errors, status_code=status, operation=operation)
