"""Data that flows between podctl's modules: the desired state a spec asks for.

Frozen dataclasses and string enums only; no I/O and no third-party imports. Later layers
(actual state from the API, recorded state from the lockfile, plans) add their types here too.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

from reconciler.errors import Problem


class CloudType(enum.Enum):
    """Where RunPod may place a pod; the values are the spec's words."""

    SECURE = "secure"
    COMMUNITY = "community"
    ALL = "all"


class PodState(enum.Enum):
    """The state a spec asks a pod to be in."""

    RUNNING = "running"
    STOPPED = "stopped"
    ABSENT = "absent"


class AfterJobs(enum.Enum):
    """What happens to a pod once all its jobs succeeded."""

    KEEP = "keep"
    STOP = "stop"
    TERMINATE = "terminate"


class OnResumeFailure(enum.Enum):
    """What to do when a stopped pod cannot resume because its host has no free GPU."""

    WAIT = "wait"
    RECREATE = "recreate"
    FAIL = "fail"


class Rerun(enum.Enum):
    """When a job whose run is already recorded runs again."""

    ON_CHANGE = "on-change"
    ALWAYS = "always"
    NEVER = "never"


@dataclass(frozen=True)
class SecretRef:
    """An env value read from the environment of podctl at plan/apply time; never written."""

    from_env: str


EnvValue = str | SecretRef


@dataclass(frozen=True)
class Transfer:
    """One upload (local -> pod) or download (pod -> local) of a file or folder."""

    source: str
    target: str


@dataclass(frozen=True)
class PodSpec:
    """One entry under `pods:`, with `defaults:` merged in and every default filled."""

    name: str
    image: str
    gpu_types: tuple[str, ...]  # ordered fallbacks, first preferred
    gpu_count: int = 1
    cloud: CloudType = CloudType.SECURE
    spot_bid_per_gpu: float | None = None  # None: on-demand
    container_disk_gb: int = 20
    volume_gb: int = 20
    volume_mount: str = "/workspace"
    network_volume: str | None = None
    ports: tuple[str, ...] = ("22/tcp",)
    env: Mapping[str, EnvValue] = field(default_factory=dict)
    docker_args: str = ""
    min_vcpu: int | None = None
    min_memory_gb: int | None = None
    cuda: tuple[str, ...] = ()
    data_center: str | None = None
    state: PodState = PodState.RUNNING
    max_lifetime_s: int | None = None
    after_jobs: AfterJobs = AfterJobs.KEEP
    on_resume_failure: OnResumeFailure = OnResumeFailure.FAIL
    protect: bool = False

    @property
    def address(self) -> str:
        return f"pod.{self.name}"


@dataclass(frozen=True)
class JobSpec:
    """One entry under `jobs:`, with every default filled."""

    name: str
    pod: str
    run: str
    env: Mapping[str, EnvValue] = field(default_factory=dict)
    workdir: str | None = None
    upload: tuple[Transfer, ...] = ()
    download: tuple[Transfer, ...] = ()
    needs: tuple[str, ...] = ()
    timeout_s: int | None = None
    retries: int = 0
    rerun: Rerun = Rerun.ON_CHANGE
    parallel: bool = False

    @property
    def address(self) -> str:
        return f"job.{self.name}"


@dataclass(frozen=True)
class DesiredState:
    """Everything a spec (one file or a folder of files, one stack) asks for."""

    stack: str
    pods: Mapping[str, PodSpec]
    jobs: Mapping[str, JobSpec]
    files: tuple[str, ...] = ()  # the spec files it was read from, in order
    warnings: tuple[Problem, ...] = ()  # problems that do not stop validate
