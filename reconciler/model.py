"""Data that flows between podctl's modules: the desired state a spec asks for.

Frozen dataclasses and string enums only; no I/O and no third-party imports. Later layers
(actual state from the API, recorded state from the lockfile, plans) add their types here too.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

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


class LifetimeAction(enum.Enum):
    """What podctl does to a pod once its max_lifetime has passed."""

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


AddressKind = Literal["pod", "job", "endpoint"]
ADDRESS_KINDS: tuple[AddressKind, ...] = ("pod", "job", "endpoint")
_KIND_OF: dict[str, AddressKind] = {kind: kind for kind in ADDRESS_KINDS}


@dataclass(frozen=True)
class Address:
    """What plans, events and the CLI call one resource: `pod.NAME`, `job.NAME`, `endpoint.NAME`.

    `pod_id` names a further pod under a pod's name (an orphan): `pod.NAME[POD_ID]`. Plans and
    events carry the text (`str(address)`), so the plan file format does not depend on this type.
    """

    kind: AddressKind
    name: str
    pod_id: str | None = None

    @classmethod
    def pod(cls, name: str, pod_id: str | None = None) -> Address:
        return cls("pod", name, pod_id)

    @classmethod
    def job(cls, name: str) -> Address:
        return cls("job", name)

    @classmethod
    def endpoint(cls, name: str) -> Address:
        return cls("endpoint", name)

    @classmethod
    def parse(cls, text: str) -> Address | None:
        """`pod.NAME`, `pod.NAME[POD_ID]`, `job.NAME` or `endpoint.NAME`; None for other text.

        The name is what follows the first dot, as given (an empty name stays empty: callers
        say what they expected).
        """
        kind, dot, rest = text.partition(".")
        known = _KIND_OF.get(kind)
        if known is None or not dot:
            return None
        name, bracket, pod_id = rest.partition("[")
        if known == "pod" and name and bracket and pod_id.endswith("]"):
            return cls(known, name, pod_id[:-1])
        return cls(known, rest)

    @classmethod
    def name_in(cls, text: str, kind: AddressKind) -> str | None:
        """What follows `KIND.` in text that addresses that kind (its `label`); else None.

        `pod.NAME[POD_ID]` gives `NAME[POD_ID]`, which names no pod of a spec: a lookup by
        name refuses it as it refuses any unknown name.
        """
        address = cls.parse(text)
        return address.label if address is not None and address.kind == kind else None

    @classmethod
    def strip(cls, text: str, kind: AddressKind) -> str:
        """`text` without its `KIND.` (a name given either way: `trainer` or `pod.trainer`)."""
        named = cls.name_in(text, kind)
        return text if named is None else named

    @property
    def label(self) -> str:
        """The address without its kind: `NAME`, or `NAME[POD_ID]`."""
        return self.name if self.pod_id is None else f"{self.name}[{self.pod_id}]"

    def __str__(self) -> str:
        return f"{self.kind}.{self.label}"


@dataclass(frozen=True)
class PodSpec:
    """One entry under `pods:`, with `defaults:` merged in and every default filled."""

    name: str
    image: str
    gpu_types: tuple[str, ...]  # ordered fallbacks, first preferred; () for a CPU pod
    gpu_count: int = 1  # 0 for a CPU pod
    cloud: CloudType = CloudType.SECURE
    spot_bid_per_gpu: float | None = None  # None: on-demand
    container_disk_gb: int = 20
    volume_gb: int = 20
    volume_mount: str = "/workspace"
    network_volume: str | None = None
    ports: tuple[str, ...] = ("22/tcp",)
    env: Mapping[str, EnvValue] = field(default_factory=dict)
    docker_args: str = ""
    registry: str | None = None  # a container registry credential's id, for a private image
    template: str | None = None  # a RunPod pod template's id
    min_vcpu: int | None = None
    min_memory_gb: int | None = None
    cuda: tuple[str, ...] = ()
    data_center: str | None = None
    state: PodState = PodState.RUNNING
    max_lifetime_s: int | None = None  # from its recorded creation; enforced by podctl
    lifetime_action: LifetimeAction = LifetimeAction.TERMINATE
    after_jobs: AfterJobs = AfterJobs.KEEP
    on_resume_failure: OnResumeFailure = OnResumeFailure.FAIL
    protect: bool = False
    # stop (idle_action) a running pod whose GPUs stayed idle, with no podctl job, this long
    idle_timeout_s: int | None = None
    idle_action: LifetimeAction = LifetimeAction.STOP
    stopped_ttl_s: int | None = None  # a pod left stopped this long is terminated
    on_failure: AfterJobs | None = None  # after a failed job; None: from after_jobs (below)
    cpu_flavor: str | None = None  # `cpu: {flavor, vcpu}`: a CPU pod (RunPod's flavor id)
    vcpu: int | None = None

    @property
    def is_cpu(self) -> bool:
        return self.cpu_flavor is not None

    @property
    def failure_action(self) -> AfterJobs:
        """What a failed job leaves: on_failure, else keep when after_jobs keeps, else stop.

        Stop, not terminate, by default: the volume keeps the failed run's files and log for a
        look, the GPUs stop billing, and stopped_ttl (if set) ends the stored volume later.
        """
        if self.on_failure is not None:
            return self.on_failure
        return AfterJobs.KEEP if self.after_jobs is AfterJobs.KEEP else AfterJobs.STOP

    @property
    def has_ssh(self) -> bool:
        return any(p.replace(" ", "") == "22/tcp" for p in self.ports)

    @property
    def address(self) -> str:
        return str(Address.pod(self.name))


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
        return str(Address.job(self.name))


@dataclass(frozen=True)
class JobPolicy:
    """An endpoint job's RunPod execution policy (sent as `policy`, in milliseconds)."""

    execution_timeout_s: int | None = None
    ttl_s: int | None = None
    low_priority: bool = False


@dataclass(frozen=True)
class EndpointJobSpec:
    """One entry under `jobs:` that is sent to a serverless endpoint instead of a pod.

    `inputs` holds each request's `input` as canonical JSON text: one for a single job, one
    per line of `inputs_file` for a batch. `endpoint` names an endpoint of the stack,
    `endpoint_id` an external one (exactly one is set).
    """

    name: str
    inputs: tuple[str, ...]
    endpoint: str | None = None
    endpoint_id: str | None = None
    batch: bool = False
    inputs_file: str | None = None
    policy: JobPolicy = field(default_factory=JobPolicy)
    webhook: str | None = None
    sync: bool = False
    stream: bool = False
    output: str | None = None  # absolute local path
    parallel: int = 32
    needs: tuple[str, ...] = ()
    timeout_s: int | None = None
    retries: int = 0
    rerun: Rerun = Rerun.ON_CHANGE

    @property
    def address(self) -> str:
        return f"job.{self.name}"

    @property
    def target(self) -> str:
        return f"endpoint.{self.endpoint}" if self.endpoint else f"endpoint id {self.endpoint_id}"


class BudgetAction(enum.Enum):
    """What a stack whose max_usd_total is reached does with its pods."""

    STOP = "stop"
    TERMINATE = "terminate"


@dataclass(frozen=True)
class Budget:
    """A stack's `budget:`: a ceiling on $/h after a plan, and on the total spent so far."""

    max_usd_per_hour: float | None = None
    max_usd_total: float | None = None
    action: BudgetAction = BudgetAction.STOP


@dataclass(frozen=True)
class DesiredState:
    """Everything a spec (one file or a folder of files, one stack) asks for."""

    stack: str
    pods: Mapping[str, PodSpec]
    jobs: Mapping[str, JobSpec]
    files: tuple[str, ...] = ()  # the spec files it was read from, in order
    warnings: tuple[Problem, ...] = ()  # problems that do not stop validate
    ssh_key: str | None = None  # `ssh_key:` (absolute), else podctl's key per stack
    state_url_env: str | None = None  # `state: {url_from_env: NAME}`: the store's URL variable
    budget: Budget = field(default_factory=Budget)
    endpoint_jobs: Mapping[str, EndpointJobSpec] = field(default_factory=dict)
    endpoints: Mapping[str, EndpointSpec] = field(default_factory=dict)  # serverless, by name


# --- actual state: what RunPod reports --------------------------------------------------------

MARKER_STACK = "PODCTL_STACK"
MARKER_POD = "PODCTL_POD"
MARKER_UID = "PODCTL_UID"
# when podctl created the pod (ISO UTC): a pod adopted without its lockfile keeps its deadline
MARKER_CREATED = "PODCTL_CREATED"


def created_marker(env: Mapping[str, str]) -> datetime | None:
    """The PODCTL_CREATED time of a pod's env; None when absent or unreadable."""
    text = env.get(MARKER_CREATED)
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


class PodStatus(enum.Enum):
    """RunPod's `desiredStatus` (what RunPod aims for, not proof the container runs)."""

    CREATED = "CREATED"
    RUNNING = "RUNNING"
    RESTARTING = "RESTARTING"
    EXITED = "EXITED"
    PAUSED = "PAUSED"
    DEAD = "DEAD"
    TERMINATED = "TERMINATED"
    UNKNOWN = "UNKNOWN"  # a value this podctl does not know; shown, never acted on blindly

    @classmethod
    def parse(cls, value: str) -> PodStatus:
        try:
            return cls(value)
        except ValueError:
            return cls.UNKNOWN


@dataclass(frozen=True)
class PodMarkers:
    """The env markers podctl puts on each pod it creates: which stack, pod and creation."""

    stack: str
    pod: str
    uid: str

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> PodMarkers | None:
        """The markers found in a pod's env, or None unless all three are there."""
        stack, pod, uid = env.get(MARKER_STACK), env.get(MARKER_POD), env.get(MARKER_UID)
        if stack is None or pod is None or uid is None:
            return None
        return cls(stack=stack, pod=pod, uid=uid)

    def as_env(self) -> dict[str, str]:
        return {MARKER_STACK: self.stack, MARKER_POD: self.pod, MARKER_UID: self.uid}


@dataclass(frozen=True)
class SshEndpoint:
    """Where a pod's sshd answers: the public ip and port mapped to its private port 22."""

    host: str
    port: int


@dataclass(frozen=True)
class ActualPod:
    """One pod as RunPod reports it, normalised to podctl's units and shapes."""

    pod_id: str
    name: str
    desired_status: PodStatus
    image: str
    gpu_type_id: str | None = None  # e.g. "NVIDIA GeForce RTX 4090"
    gpu_display_name: str | None = None  # e.g. "RTX 4090"
    gpu_count: int = 0
    cpu_flavor: str | None = None  # a CPU pod's flavor, when the API says (REST v2 `cpu.id`)
    cloud: CloudType | None = None  # SECURE or COMMUNITY when RunPod says; never ALL
    interruptible: bool = False  # spot
    bid_per_gpu: float | None = None  # spot only, when known
    container_disk_gb: int | None = None
    volume_gb: int | None = None
    volume_mount: str | None = None
    ports: tuple[str, ...] = ()
    # env values may be secrets (HF_TOKEN...): kept out of repr so a log line cannot leak them
    env: Mapping[str, str] = field(default_factory=dict, repr=False)
    markers: PodMarkers | None = None
    docker_args: str = ""
    vcpu_count: float | None = None
    memory_gb: float | None = None
    network_volume_id: str | None = None
    cost_per_hr: float | None = None
    data_center_id: str | None = None
    location: str | None = None
    machine_id: str | None = None
    pod_host_id: str | None = None
    ssh: SshEndpoint | None = None  # None until the runtime maps a public port to 22
    runtime_ready: bool = False  # the container runs (`runtime` is set); SSH may still be closed
    container_failed: bool = False  # REST v2 says ERROR: the container failed for good
    uptime_s: int | None = None
    last_status_change: str = ""  # free text from RunPod
    # when the container last started, as REST v2's `startedAt` says (GraphQL has none): the
    # watchdog's restart check uses it instead of now - uptime (whole seconds, read late)
    started_at: datetime | None = None

    def belongs_to(self, stack: str, pod: str | None = None) -> bool:
        """Whether the markers name this stack (and this pod, when one is given)."""
        if self.markers is None or self.markers.stack != stack:
            return False
        return pod is None or self.markers.pod == pod


@dataclass(frozen=True)
class ActualState:
    """Every pod of the account, as one `myself { pods }` query saw them, keyed by pod id."""

    pods: Mapping[str, ActualPod]
    # serverless endpoints of the account by id; listed only for a stack that has (or had) one
    endpoints: Mapping[str, ActualEndpoint] = field(default_factory=dict)

    def get(self, pod_id: str) -> ActualPod | None:
        return self.pods.get(pod_id)

    def of_stack(self, stack: str) -> tuple[ActualPod, ...]:
        """Pods whose markers name this stack, ordered by pod id (deterministic)."""
        return tuple(p for _, p in sorted(self.pods.items()) if p.belongs_to(stack))

    def find_by_markers(self, stack: str, pod: str) -> tuple[ActualPod, ...]:
        """Pods whose markers name this stack and pod (more than one means orphans)."""
        return tuple(p for _, p in sorted(self.pods.items()) if p.belongs_to(stack, pod))

    def find_by_uid(self, uid: str) -> ActualPod | None:
        for pod in self.pods.values():
            if pod.markers is not None and pod.markers.uid == uid:
                return pod
        return None


@dataclass(frozen=True)
class GpuOffer:
    """A GPU type's price and stock for a given count and cloud, from `gpuTypes { lowestPrice }`."""

    gpu_type_id: str
    display_name: str
    memory_gb: int | None = None
    secure_cloud: bool | None = None
    community_cloud: bool | None = None
    max_gpu_count: int | None = None
    on_demand_price: float | None = None  # per GPU per hour (`uninterruptablePrice`)
    minimum_bid_price: float | None = None  # per GPU per hour, spot
    stock_status: str | None = None  # High / Medium / Low / None; a hint, not a promise
    available_gpu_counts: tuple[int, ...] = ()
    cuda_versions: tuple[str, ...] = ()  # with free capacity now (REST v2's catalog only)
    # a CPU flavor's (min, max) vCPUs (REST v2's CPU catalog; its price is then per vCPU);
    # None: a GPU type
    vcpu_range: tuple[int, int] | None = None
    # the data centers with it in stock (REST v2's catalog `dataCenters`); () when not known
    data_centers: tuple[str, ...] = ()


@dataclass(frozen=True)
class NetworkVolume:
    """A network volume of the account: a pod that mounts it runs in its data center."""

    volume_id: str
    name: str = ""
    size_gb: int | None = None
    data_center: str | None = None


# --- recorded state: what the lockfile holds ---------------------------------------------------

LOCKFILE_FORMAT_VERSION = 1


class JobStatus(enum.Enum):
    """What the lockfile knows about a job's last run."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass(frozen=True)
class WatchdogArming:
    """The on-pod watchdog as last armed over SSH: its config, and the container it runs in.

    `container_started` is the container's start as the API reports it (now - uptime): a later
    start, or another `status_change`, means the container restarted and the watchdog died.
    """

    config: str  # deadline, action, URL, idle settings: what the arming sent
    container_started: datetime
    status_change: str = ""  # RunPod's lastStatusChange then: a stop, resume or reset moves it


@dataclass(frozen=True)
class PodRecord:
    """A pod podctl created (or adopted), as recorded after the mutation succeeded."""

    pod_id: str
    uid: str  # the PODCTL_UID marker of this creation
    fingerprint: str  # hash of the pod spec it was created from
    gpu_type_id: str | None = None  # the fallback that landed
    cloud: CloudType | None = None
    created_at: datetime | None = None
    applied_at: datetime | None = None
    # env keys podctl ever filled from from_env on this pod (names, never values): their old
    # values stay masked in plans even after the spec makes the key a plain value
    secret_env: tuple[str, ...] = ()
    stopped_at: datetime | None = None  # when podctl stopped it (or first saw it stopped)
    watchdog: WatchdogArming | None = None


@dataclass(frozen=True)
class JobRecord:
    """The last run of a job podctl knows about.

    `inputs` holds a hash per input (run, env, workdir, upload, image) so a plan can say which
    one changed; from_env values enter it only as salted hashes. RUNNING is written before the
    job starts (write-ahead): the next apply reattaches or collects instead of starting again.
    """

    fingerprint: str
    pod_id: str
    status: JobStatus
    exit_code: int | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    inputs: Mapping[str, str] = field(default_factory=dict)
    message: str = ""  # why it failed (exit code, download error...), for status and plans


@dataclass(frozen=True)
class CreateIntent:
    """Written before a create: if its answer is lost, the uid marker finds the pod again."""

    stack: str
    pod: str
    uid: str
    since: datetime


@dataclass(frozen=True)
class Lockfile:
    """The recorded state of one stack: what podctl did, so plans are reviewable and idempotent.

    `lineage` is minted once (uuid4) on the first write; `serial` grows by one on every write
    that changes the content. Never holds a secret.
    """

    stack: str = ""
    lineage: str = ""
    serial: int = 0
    format_version: int = LOCKFILE_FORMAT_VERSION
    pods: Mapping[str, PodRecord] = field(default_factory=dict)  # key: pod name
    jobs: Mapping[str, JobRecord] = field(default_factory=dict)  # key: job name
    intents: tuple[CreateIntent, ...] = ()
    host_keys: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # key: pod id
    endpoints: Mapping[str, EndpointRecord] = field(default_factory=dict)  # key: endpoint name

    def same_content(self, other: Lockfile) -> bool:
        """Equal apart from lineage and serial (what decides whether a write bumps the serial)."""
        return (
            self.stack == other.stack
            and self.format_version == other.format_version
            and dict(self.pods) == dict(other.pods)
            and dict(self.jobs) == dict(other.jobs)
            and self.intents == other.intents
            and dict(self.host_keys) == dict(other.host_keys)
            and dict(self.endpoints) == dict(other.endpoints)
        )


# --- serverless endpoints: desired, actual, recorded -------------------------------------------

MARKER_ENDPOINT = "PODCTL_ENDPOINT"  # with PODCTL_STACK: the env markers of a podctl endpoint


class EndpointState(enum.Enum):
    """The state a spec asks an endpoint to be in."""

    PRESENT = "present"
    ABSENT = "absent"


class Flashboot(enum.Enum):
    """RunPod's FlashBoot setting (REST v2 `flashboot`); the values are the spec's words."""

    OFF = "off"
    ON = "flashboot"
    PRIORITY = "priority"

    @property
    def wire(self) -> str:
        return {"off": "OFF", "flashboot": "FLASHBOOT", "priority": "PRIORITY_FLASHBOOT"}[
            self.value
        ]


@dataclass(frozen=True)
class CpuFlavor:
    """One CPU flavor a CPU endpoint's workers may run on (REST v2 `cpu[]`)."""

    flavor: str  # e.g. "cpu3c"
    vcpu: int  # a power of two, at least 2


@dataclass(frozen=True)
class EndpointSpec:
    """One entry under `endpoints:`, with every default filled (podctl sends every field)."""

    name: str
    image: str | None = None  # None only with a template
    template: str | None = None  # a serverless template's id: resolved once by RunPod at create
    gpu_pools: tuple[str, ...] = ()  # pool ids (ADA_24...); empty for a CPU endpoint
    gpu_count: int = 1
    gpu_exclude: tuple[str, ...] = ()  # GPU type ids subtracted from the pools
    cuda: tuple[str, ...] = ()  # allowed CUDA versions (empty: any)
    cpu: tuple[CpuFlavor, ...] = ()  # non-empty: a CPU endpoint
    workers_min: int = 0
    workers_max: int = 3
    idle_timeout_s: int | None = 5  # None with request-count scaling (RunPod refuses it there)
    queue_delay_s: float | None = 4.0  # scaling: queue delay (seconds) ...
    request_count: int | None = None  # ... or request count (exactly one is set)
    execution_timeout_s: int = 600
    flashboot: Flashboot = Flashboot.OFF
    env: Mapping[str, EnvValue] = field(default_factory=dict)
    network_volumes: tuple[str, ...] = ()
    data_centers: tuple[str, ...] = ()
    disk_gb: int = 20
    docker_args: str = ""
    registry: str | None = None
    state: EndpointState = EndpointState.PRESENT
    protect: bool = False

    @property
    def address(self) -> str:
        return f"endpoint.{self.name}"

    @property
    def is_cpu(self) -> bool:
        return bool(self.cpu)


@dataclass(frozen=True)
class EndpointMarkers:
    """The env markers on an endpoint podctl created: which stack and endpoint name."""

    stack: str
    endpoint: str

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> EndpointMarkers | None:
        stack, endpoint = env.get(MARKER_STACK), env.get(MARKER_ENDPOINT)
        if not stack or not endpoint:
            return None
        return cls(stack=stack, endpoint=endpoint)

    def as_env(self) -> dict[str, str]:
        return {MARKER_STACK: self.stack, MARKER_ENDPOINT: self.endpoint}


@dataclass(frozen=True)
class ActualEndpoint:
    """One endpoint as REST v2 `/v2/serverless` reports it, in podctl's units (seconds)."""

    endpoint_id: str
    name: str
    image: str = ""
    gpu_pools: tuple[str, ...] = ()
    gpu_count: int | None = None
    gpu_exclude: tuple[str, ...] = ()
    cuda: tuple[str, ...] = ()
    cpu: tuple[CpuFlavor, ...] = ()
    workers_min: int = 0
    workers_max: int = 0
    idle_timeout_s: int | None = None
    queue_delay_s: float | None = None
    request_count: int | None = None
    execution_timeout_s: float = 0.0  # RunPod's `timeout` is milliseconds
    flashboot: str = "OFF"  # RunPod's word; may be one podctl does not know
    env: Mapping[str, str] = field(default_factory=dict, repr=False)  # may hold secrets
    network_volumes: tuple[str, ...] = ()
    data_centers: tuple[str, ...] = ()
    disk_gb: int | None = None
    docker_args: str = ""
    registry: str | None = None
    markers: EndpointMarkers | None = None
    created_at: str = ""

    @property
    def is_cpu(self) -> bool:
        return bool(self.cpu)

    def belongs_to(self, stack: str, endpoint: str | None = None) -> bool:
        if self.markers is None or self.markers.stack != stack:
            return False
        return endpoint is None or self.markers.endpoint == endpoint


@dataclass(frozen=True)
class EndpointHealth:
    """`GET /v2/{id}/health` on the data plane: workers and jobs, as counts."""

    workers_idle: int = 0
    workers_running: int = 0
    jobs_in_queue: int = 0
    jobs_in_progress: int = 0
    jobs_completed: int = 0
    jobs_failed: int = 0
    jobs_retried: int = 0


@dataclass(frozen=True)
class EndpointRecord:
    """An endpoint podctl created (or adopted or imported), as recorded after the mutation."""

    endpoint_id: str
    fingerprint: str  # hash of the endpoint spec last applied ("" for an import)
    workers_max: int | None = None  # the workers.max podctl last set (to name RunPod's drift)
    created_at: datetime | None = None
    applied_at: datetime | None = None
    secret_env: tuple[str, ...] = ()  # env keys podctl filled from from_env (names only)
