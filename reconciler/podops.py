"""What podctl asks of any pod backend: PodCreate (one placement) and PodEdit (in place).

Data only, in podctl's own words; each backend maps these to its wire (GraphQL's `input`,
REST v2's body), so the core never sees a backend's request types.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from reconciler.model import CloudType

# RunPod's REST API v2 makes no persistent volume below this (reference runpod-rest-v2.md 5.5);
# here so that a plan can refuse it before any backend is asked
REST_MIN_VOLUME_GB = 10


@dataclass(frozen=True)
class PodCreate:
    """A pod to create on one placement: an on-demand pod, or a spot pod when bid_per_gpu."""

    name: str
    image: str
    gpu_type_id: str
    gpu_count: int
    cloud: CloudType
    env: Mapping[str, str]
    ports: Sequence[str]
    container_disk_gb: int
    volume_gb: int
    volume_mount: str
    bid_per_gpu: float | None = None
    terminate_after: datetime | None = None
    start_ssh: bool = True
    support_public_ip: bool = True
    min_vcpu: int | None = None
    min_memory_gb: int | None = None
    allowed_cuda_versions: Sequence[str] = ()
    data_center_id: str | None = None
    network_volume_id: str | None = None
    docker_args: str = ""
    container_registry_auth_id: str | None = None  # a private image's registry credential
    template_id: str | None = None
    # a CPU pod: RunPod's CPU flavor id and its vCPUs (gpu_type_id then names the flavor)
    cpu_flavor: str | None = None
    vcpu_count: int | None = None

    @property
    def spot(self) -> bool:
        return self.bid_per_gpu is not None


@dataclass(frozen=True)
class PodEdit:
    """A pod's in-place change: every editable field, sent whole.

    `env` is the pod's whole env, podctl's markers included: REST v2 replaces the env map,
    and GraphQL keeps what is left out, so sending everything means the same on both.
    """

    image: str
    container_disk_gb: int
    volume_gb: int
    volume_mount: str
    env: Mapping[str, str]
    ports: Sequence[str]
    docker_args: str = ""
