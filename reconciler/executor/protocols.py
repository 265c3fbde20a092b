"""The executor's ports: PodApi (RunPod calls), Journal (lockfile writes), Shells (SSH to pods)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Protocol

from reconciler.backends.runpod_graphql.documents import PodCreateRequest
from reconciler.jobs.remote import RemoteJob
from reconciler.model import (
    ActualPod,
    ActualState,
    JobRecord,
    PodRecord,
    PodStatus,
    WatchdogArming,
)


class PodApi(Protocol):
    """The RunPodClient methods the executor uses (the sandbox and fakes implement them too)."""

    async def list_pods(self) -> ActualState: ...

    async def create_pod(self, request: PodCreateRequest) -> ActualPod: ...

    async def resume_pod(self, pod_id: str, gpu_count: int | None = None) -> ActualPod: ...

    async def bid_resume_pod(
        self, pod_id: str, bid_per_gpu: float, gpu_count: int
    ) -> ActualPod: ...

    async def stop_pod(self, pod_id: str) -> PodStatus: ...

    async def terminate_pod(self, pod_id: str) -> bool: ...

    async def edit_pod(
        self,
        pod_id: str,
        *,
        image: str,
        container_disk_gb: int,
        volume_gb: int,
        volume_mount: str,
        env: Mapping[str, str],
        ports: Sequence[str],
        docker_args: str = "",
    ) -> ActualPod: ...


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
