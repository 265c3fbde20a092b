"""The GraphQL documents podctl sends to RunPod, and the `variables` each one takes.

Pure. Every user value travels in `variables`, never interpolated into a document (RunPod's own
SDK builds documents with f-strings and breaks on a quote in an env value). Input type names are
those of runpodctl and the Pulumi provider (see reference/runpod-api.md, sections 2 and 3).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from reconciler.errors import PodctlError
from reconciler.model import CloudType
from reconciler.podops import PodCreate, PodEdit

# Every field the planner needs, in one selection set (list, get, and the pod-returning mutations).
# machine.gpuTypeId/secureCloud/dataCenterId come from third-party typings of RunPod's schema.
POD_FIELDS = """
      id name desiredStatus imageName env gpuCount costPerHr
      containerDiskInGb volumeInGb volumeMountPath ports podType
      uptimeSeconds lastStatusChange machineId dockerArgs vcpuCount memoryInGb networkVolumeId
      machine { podHostId gpuDisplayName gpuTypeId location secureCloud dataCenterId }
      runtime { uptimeInSeconds ports { ip isIpPublic privatePort publicPort type } }
"""

LIST_PODS = "query ListPods {\n  myself {\n    pods {" + POD_FIELDS + "    }\n  }\n}"

GET_POD = "query GetPod($podId: String!) {\n  pod(input: {podId: $podId}) {" + POD_FIELDS + "  }\n}"

CREATE_ON_DEMAND = (
    "mutation CreatePod($input: PodFindAndDeployOnDemandInput!) {\n"
    "  podFindAndDeployOnDemand(input: $input) {" + POD_FIELDS + "  }\n}"
)

CREATE_SPOT = (
    "mutation CreateSpotPod($input: PodRentInterruptableInput!) {\n"
    "  podRentInterruptable(input: $input) {" + POD_FIELDS + "  }\n}"
)

RESUME = (
    "mutation ResumePod($input: PodResumeInput!) {\n"
    "  podResume(input: $input) {" + POD_FIELDS + "  }\n}"
)

BID_RESUME = (
    "mutation BidResumePod($input: PodBidResumeInput!) {\n"
    "  podBidResume(input: $input) {" + POD_FIELDS + "  }\n}"
)

STOP = (
    "mutation StopPod($input: PodStopInput!) {\n"
    "  podStop(input: $input) { id desiredStatus lastStatusChange }\n}"
)

# podTerminate returns a scalar: no selection set
TERMINATE = "mutation TerminatePod($input: PodTerminateInput!) {\n  podTerminate(input: $input)\n}"

EDIT = (
    "mutation EditPod($input: PodEditJobInput!) {\n"
    "  podEditJob(input: $input) {" + POD_FIELDS + "  }\n}"
)

GPU_PRICES = """query GpuPrices($lowestPrice: GpuLowestPriceInput!) {
  gpuTypes {
    id displayName memoryInGb secureCloud communityCloud maxGpuCount
    lowestPrice(input: $lowestPrice) {
      gpuTypeId minimumBidPrice uninterruptablePrice stockStatus availableGpuCounts
    }
  }
}"""

# Both clouds in one request: two aliases of lowestPrice (gpuCount 1: prices are per GPU)
_PRICE_FIELDS = "gpuTypeId minimumBidPrice uninterruptablePrice stockStatus availableGpuCounts"
GPU_OFFERS = (
    "query GpuOffers($secure: GpuLowestPriceInput!, $community: GpuLowestPriceInput!) {\n"
    "  gpuTypes {\n"
    "    id displayName memoryInGb secureCloud communityCloud maxGpuCount\n"
    "    maxGpuCountSecureCloud maxGpuCountCommunityCloud\n"
    "    secure: lowestPrice(input: $secure) { " + _PRICE_FIELDS + " }\n"
    "    community: lowestPrice(input: $community) { " + _PRICE_FIELDS + " }\n"
    "  }\n}"
)
GPU_OFFERS_VARIABLES: dict[str, object] = {
    "secure": {"gpuCount": 1, "secureCloud": True},
    "community": {"gpuCount": 1, "secureCloud": False},
}

# gpuhunt's CPU catalogue query (runpod-api.md 3); prices need a data center: not read
CPU_FLAVORS = "query CpuFlavors {\n  cpuFlavors { id displayName minVcpu maxVcpu ramMultiplier }\n}"

# deployCpuPod (runpod-api.md 2.2: undocumented; runpod-python and dstack send it). Its input
# type's name is not known, so each field is its own typed variable (types as the Pulumi
# provider declares them for the on-demand input); a variable not sent leaves its field out.
_CPU_VARIABLES = (
    ("instanceId", "String!"),
    ("name", "String"),
    ("imageName", "String"),
    ("cloudType", "CloudTypeEnum"),
    ("containerDiskInGb", "Int"),
    ("ports", "String"),
    ("env", "[EnvironmentVariableInput]"),
    ("startSsh", "Boolean"),
    ("dockerArgs", "String"),
    ("dataCenterId", "String"),
    ("networkVolumeId", "String"),
    ("volumeMountPath", "String"),
    ("templateId", "String"),
    ("containerRegistryAuthId", "String"),
)
DEPLOY_CPU = (
    "mutation DeployCpuPod("
    + ", ".join(f"${name}: {kind}" for name, kind in _CPU_VARIABLES)
    + ") {\n  deployCpuPod(input: {"
    + ", ".join(f"{name}: ${name}" for name, _ in _CPU_VARIABLES)
    + "}) {"
    + POD_FIELDS
    + "  }\n}"
)

NETWORK_VOLUMES = (
    "query NetworkVolumes {\n  myself {\n    networkVolumes { id name size dataCenterId }\n  }\n}"
)

CLOUD_ENUM = {CloudType.SECURE: "SECURE", CloudType.COMMUNITY: "COMMUNITY", CloudType.ALL: "ALL"}


def env_input(env: Mapping[str, str]) -> list[dict[str, str]]:
    """Env as RunPod takes it on input: `[{key, value}]` (it reports `["K=V"]` back)."""
    return [{"key": key, "value": value} for key, value in env.items()]


def ports_input(ports: Sequence[str]) -> str:
    """Ports as RunPod takes them: one comma string, `"22/tcp,8888/http"`."""
    return ",".join(p.replace(" ", "") for p in ports)


def datetime_input(moment: datetime) -> str:
    """A GraphQL `DateTime`: ISO 8601 in UTC with a `Z` (as runpodctl sends it)."""
    if moment.tzinfo is None:
        raise ValueError("terminate_after must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def create_input(request: PodCreate) -> dict[str, object]:
    """The `input` of podFindAndDeployOnDemand (or podRentInterruptable when spot).

    Optional fields are left out rather than sent as null: unknown or null fields have broken
    real clients (runpod-plugins-official #56).
    """
    if request.cpu_flavor is not None:
        raise PodctlError(f"pod {request.name}: a CPU pod is created with cpu_variables()")
    fields: dict[str, object] = {
        "name": request.name,
        "imageName": request.image,
        "gpuTypeId": request.gpu_type_id,
        "gpuCount": request.gpu_count,
        "cloudType": CLOUD_ENUM[request.cloud],
        "containerDiskInGb": request.container_disk_gb,
        "volumeInGb": request.volume_gb,
        "volumeMountPath": request.volume_mount,
        "ports": ports_input(request.ports),
        "env": env_input(request.env),
        "startSsh": request.start_ssh,
        "supportPublicIp": request.support_public_ip,
        "dockerArgs": request.docker_args,
    }
    optional: dict[str, object] = {
        "bidPerGpu": request.bid_per_gpu,
        "terminateAfter": (
            datetime_input(request.terminate_after) if request.terminate_after else None
        ),
        "minVcpuCount": request.min_vcpu,
        "minMemoryInGb": request.min_memory_gb,
        "allowedCudaVersions": list(request.allowed_cuda_versions) or None,
        "dataCenterId": request.data_center_id,
        "networkVolumeId": request.network_volume_id,
        "containerRegistryAuthId": request.container_registry_auth_id,
        "templateId": request.template_id,
    }
    fields.update({key: value for key, value in optional.items() if value is not None})
    return fields


def cpu_variables(request: PodCreate, instance_id: str) -> dict[str, object]:
    """The variables of DEPLOY_CPU: `instanceId` `<flavor>-<vcpu>-<memory GB>`; no volume disk
    (a CPU pod has none: only a network volume mounts at volume_mount)."""
    fields: dict[str, object] = {
        "instanceId": instance_id,
        "name": request.name,
        "imageName": request.image,
        "cloudType": "SECURE",  # CPU pods run on secure cloud only (dstack sends nothing else)
        "containerDiskInGb": request.container_disk_gb,
        "ports": ports_input(request.ports),
        "env": env_input(request.env),
        "startSsh": request.start_ssh,
        "dockerArgs": request.docker_args,
    }
    optional: dict[str, object] = {
        "dataCenterId": request.data_center_id,
        "networkVolumeId": request.network_volume_id,
        "volumeMountPath": request.volume_mount if request.network_volume_id else None,
        "templateId": request.template_id,
        "containerRegistryAuthId": request.container_registry_auth_id,
    }
    fields.update({key: value for key, value in optional.items() if value is not None})
    return fields


def edit_input(pod_id: str, edit: PodEdit) -> dict[str, object]:
    """The whole `PodEditJobInput`: RunPod keeps what is null, so podctl sends every field."""
    return {
        "podId": pod_id,
        "imageName": edit.image,
        "containerDiskInGb": edit.container_disk_gb,
        "volumeInGb": edit.volume_gb,
        "volumeMountPath": edit.volume_mount,
        "env": env_input(edit.env),
        "ports": ports_input(edit.ports),
        "dockerArgs": edit.docker_args,
    }
