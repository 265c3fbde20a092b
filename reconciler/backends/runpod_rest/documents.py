"""The JSON bodies podctl sends to RunPod's REST v2: a PodCreate as `POST /v2/pods`, a PodEdit.

Pure. v2 refuses any field it does not define (422), so only its own names are sent: one GPU
type per create (podctl walks the fallback chain), no `cloud: ALL`, no spot, no min vCPU/RAM, no
public-IP flag, no terminateAfter (reference runpod-rest-v2.md 5.5, 5.10).
"""

from __future__ import annotations

from collections.abc import Sequence

from reconciler.errors import PodctlError
from reconciler.model import MARKER_POD, MARKER_STACK, MARKER_UID, CloudType
from reconciler.podops import REST_MIN_VOLUME_GB, PodCreate, PodEdit

CLOUD = {CloudType.SECURE: "SECURE", CloudType.COMMUNITY: "COMMUNITY"}
MIN_VOLUME_GB = REST_MIN_VOLUME_GB  # v2's floor for a persistent mount
SPOT_NEEDS_GRAPHQL = (
    "spot pods need --api graphql: RunPod's REST API v2 has no spot (interruptible) pods"
)


def ports_body(ports: Sequence[str]) -> list[str]:
    return [p.replace(" ", "") for p in ports]


def create_body(request: PodCreate) -> dict[str, object]:
    """The body of `POST /v2/pods` for this one placement (one GPU type, one cloud)."""
    if request.spot:
        raise PodctlError(f"pod {request.name}: {SPOT_NEEDS_GRAPHQL}.")
    cloud = CLOUD.get(request.cloud)
    if cloud is None:  # the executor places each create on one cloud
        raise PodctlError(f"pod {request.name}: a v2 create needs one cloud, not {request.cloud}")
    machine: dict[str, object]
    if request.cpu_flavor is not None:  # 5.5 `cpu`: flavor + vCPUs; memory comes with it
        machine = {"cpu": {"id": request.cpu_flavor, "vcpuCount": request.vcpu_count}}
    else:
        gpu: dict[str, object] = {"id": request.gpu_type_id, "count": request.gpu_count}
        if request.allowed_cuda_versions:
            gpu["allowedCudaVersions"] = list(request.allowed_cuda_versions)
        machine = {"gpu": gpu}
    body: dict[str, object] = {
        "name": request.name,
        "image": request.image,
        **machine,
        "cloud": cloud,
        "disk": request.container_disk_gb,
        "ports": ports_body(request.ports),
        "env": dict(request.env),
        "startSsh": request.start_ssh,
    }
    if request.docker_args:
        body["args"] = request.docker_args
    if request.container_registry_auth_id:
        body["registry"] = request.container_registry_auth_id
    if request.template_id:
        body["templateId"] = request.template_id
    if request.network_volume_id:
        body["mounts"] = {
            "network": [{"volumeId": request.network_volume_id, "path": request.volume_mount}]
        }
    elif request.volume_gb > 0 and request.cpu_flavor is None:  # 5.5: none on CPU pods
        if request.volume_gb < MIN_VOLUME_GB:
            raise PodctlError(
                f"pod {request.name}: disk.volume_gb {request.volume_gb} is below the "
                f"{MIN_VOLUME_GB} GB RunPod's REST API v2 makes; set it to 0 or at least "
                f"{MIN_VOLUME_GB}."
            )
        body["mounts"] = {"persistent": {"size": request.volume_gb, "path": request.volume_mount}}
    if request.data_center_id:
        body["dataCenterIds"] = [request.data_center_id]
    return body


def edit_body(edit: PodEdit) -> dict[str, object]:
    """The body of `PATCH /v2/pods/{id}`.

    v2 replaces the whole env map, so it must carry podctl's markers (else the pod would no
    longer be found as the stack's). Mounts are left out: their size and path are replace-only
    fields in podctl, and v2 refuses a kind the pod was not created with.
    """
    missing = [k for k in (MARKER_STACK, MARKER_POD, MARKER_UID) if k not in edit.env]
    if missing:
        raise PodctlError(
            "an in-place edit must re-send podctl's markers (v2 replaces the whole env); "
            f"missing: {', '.join(missing)}"
        )
    return {
        "image": edit.image,
        "disk": edit.container_disk_gb,
        "env": dict(edit.env),
        "ports": ports_body(edit.ports),
        "args": edit.docker_args,
    }
