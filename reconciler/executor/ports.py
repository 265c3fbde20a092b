"""The executor's ports: PodBackend (a pod API), Journal (recorded state writes), Shells (SSH).

Backend-neutral: PodBackend speaks podctl's own PodCreate/PodEdit; which API serves it (GraphQL,
REST v2, the executor's test fake) is the composition root's choice (reconciler.cli.wiring).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Protocol, Self

from reconciler.jobs.remote import RemoteJob
from reconciler.model import (
    ActualEndpoint,
    ActualPod,
    ActualState,
    CloudType,
    EndpointHealth,
    EndpointSpec,
    GpuOffer,
    JobRecord,
    NetworkVolume,
    PodRecord,
    PodStatus,
    WatchdogArming,
)
from reconciler.podops import PodCreate, PodEdit

OnLine = Callable[[str], None]


class PodBackend(Protocol):
    """What podctl asks of a pod API; every implementation passes tests/contract/.

    Errors are reconciler.errors' ApiError family: CapacityError (no instance on this
    placement now), ResumeCapacityError, PodNotFoundError, TransientApiError (maybe_processed
    says whether a mutation may have happened), AuthError.
    """

    async def list_pods(self) -> ActualState:
        """Every pod of the account, in one request."""

    async def get_pod(self, pod_id: str) -> ActualPod | None:
        """One pod, or None when the API knows no such pod."""

    async def create_pod(self, request: PodCreate) -> ActualPod:
        """Create on this one placement (CapacityError when it has no instance now)."""

    async def edit_pod(self, pod_id: str, edit: PodEdit) -> ActualPod:
        """Change a pod in place; its env is replaced whole (markers included)."""

    async def resume_pod(self, pod_id: str, gpu_count: int | None = None) -> ActualPod:
        """Start a stopped on-demand pod on its machine."""

    async def bid_resume_pod(self, pod_id: str, bid_per_gpu: float, gpu_count: int) -> ActualPod:
        """Start a stopped spot pod again at this bid."""

    async def stop_pod(self, pod_id: str) -> PodStatus:
        """Stop a pod (already stopped is no error); returns its desired status."""

    async def terminate_pod(self, pod_id: str) -> bool:
        """True if the pod went now, False if it was already gone."""

    async def gpu_offers(
        self, gpu_type_ids: Sequence[str] | None = None
    ) -> dict[CloudType, dict[str, GpuOffer]]:
        """Per-GPU price and stock on each cloud (None: every GPU type)."""

    async def cpu_offers(self) -> dict[str, GpuOffer]:
        """Each CPU flavor's offer (keyed by flavor id; secure cloud only)."""

    async def network_volumes(self) -> dict[str, NetworkVolume]:
        """The account's network volumes by id, in one request."""

    async def pod_logs(
        self, pod_id: str, on_line: OnLine, *, follow: bool = False, tail: int = 100
    ) -> int:
        """The pod's container log, line by line; returns the lines printed."""


class BackendSession(PodBackend, Protocol):
    """A connected PodBackend as the workflow holds it: named, counted, masking, closable."""

    @property
    def api_name(self) -> str:
        """What `--api` names: "graphql" or "rest"."""

    @property
    def request_count(self) -> int:
        """Requests sent so far (what benchmarks and apply summaries count)."""

    @property
    def graphql_url(self) -> str:
        """Where GraphQL lives on this base URL (the on-pod watchdog calls it)."""

    def hide(self, values: Iterable[str]) -> None:
        """Mask these values (from_env secrets) in every message from now on."""

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def aclose(self) -> None: ...


class EndpointBackend(Protocol):
    """RunPod's serverless control plane (REST v2 `/v2/serverless`) and each endpoint's
    `/health`: the REST client's EndpointClient, the sandbox behind it, test fakes."""

    async def list_endpoints(self) -> dict[str, ActualEndpoint]: ...

    async def get_endpoint(self, endpoint_id: str) -> ActualEndpoint | None: ...

    async def create_endpoint(
        self, name: str, spec: EndpointSpec, env: Mapping[str, str]
    ) -> ActualEndpoint:
        """Create `spec` named `name` with this env (markers and secrets filled in)."""

    async def update_endpoint(
        self,
        endpoint_id: str,
        name: str,
        spec: EndpointSpec,
        env: Mapping[str, str],
        *,
        container: bool,
    ) -> ActualEndpoint:
        """Update it to `spec`; the container fields (image, env...) only with `container`."""

    async def delete_endpoint(self, endpoint_id: str) -> bool: ...

    async def health(self, endpoint_id: str) -> EndpointHealth | None: ...

    @property
    def own_requests(self) -> int:
        """Requests sent on a client of its own (0 when it shares the pod backend's)."""


class BillingBackend(Protocol):
    """What RunPod billed each pod so far (REST v2 `/v2/billing/pods`)."""

    async def pod_costs(self, since: datetime | None) -> dict[str, float]:
        """Pod id -> USD billed since `since`, in one request."""


class Journal(Protocol):
    """Where the executor records what it did, write-ahead; each call is durable on return.

    The executor calls these inside `commit`, right after each mutation, so an outcome already
    recorded survives any later failure or interrupt.
    """

    async def commit(self, record: Callable[[], None]) -> None:
        """Run `record` (calls of the methods below); return once its changes are durable.

        Commits made while a write is under way may share one write (group commit).
        """

    def intend(self, pod: str, uid: str) -> None:
        """Before a create: the uid marker the new pod will carry."""

    def create_failed(self, uid: str) -> None:
        """The create with this uid surely did not happen (e.g. no capacity): drop its intent."""

    def created(self, pod: str, record: PodRecord) -> None:
        """A create answered: the pod's record (settles the intent of record.uid)."""

    def touched(self, pod: str, pod_id: str, fingerprint: str | None) -> None:
        """A pod was resumed, stopped, updated or adopted as is.

        `fingerprint` None keeps the recorded one (a stop does not apply the spec).
        """

    def terminated(self, pod: str, pod_id: str) -> None:
        """A pod is gone: forget it if it is the one recorded for `pod` (and its intent)."""

    def stopped(
        self, pod: str, pod_id: str, at: datetime | None, *, keep_earlier: bool = False
    ) -> None:
        """The pod stopped at `at` (None: it runs again), for stopped_ttl.

        `keep_earlier`: a stop podctl only saw (not made) keeps an earlier recorded time.
        """

    def armed(self, pod: str, pod_id: str, arming: WatchdogArming | None) -> None:
        """The pod's watchdog as armed over SSH (None: not known to be armed)."""

    def job_started(self, job: str, record: JobRecord) -> None:
        """Before a job starts on its pod (write-ahead): a crash after this reattaches."""

    def job_finished(self, job: str, record: JobRecord) -> None:
        """A job ended (succeeded with its results downloaded, or failed)."""


class Transferred(Protocol):
    """What an upload or download moved."""

    @property
    def files(self) -> int: ...

    @property
    def bytes(self) -> int: ...

    @property
    def skipped(self) -> int: ...

    @property
    def warnings(self) -> tuple[str, ...]: ...

    @property
    def landed(self) -> str: ...


class PodShell(Protocol):
    """One SSH connection to one pod (reused for all its jobs and files)."""

    async def run(
        self, command: str, *, stdin: str | None = None, timeout_s: float | None = None
    ) -> tuple[int, str, str]: ...

    async def start_job(
        self,
        run_dir: str,
        command: str,
        *,
        env: Mapping[str, str],
        workdir: str | None,
        timeout_s: int | None,
    ) -> RemoteJob: ...

    async def job_status(self, run_dir: str) -> RemoteJob: ...

    async def follow_log(
        self, run_dir: str, on_line: Callable[[str], None], *, offset: int = 0
    ) -> RemoteJob: ...

    async def upload(self, local: Path, remote_path: str) -> Transferred: ...

    async def download(self, remote_path: str, local: Path | str) -> Transferred: ...


class Shells(Protocol):
    """Opens (once per pod, then reuses) an SSH connection; pins host keys on first use."""

    async def open(self, pod: ActualPod) -> PodShell: ...

    async def aclose(self) -> None: ...
