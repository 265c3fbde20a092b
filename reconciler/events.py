"""The typed progress events an apply emits (pure data): the renderer turns them into text."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

EVENTS_VERSION = 1  # bumped when a field changes meaning or goes; new fields do not bump it


@dataclass(frozen=True)
class Event:
    """Something that happened to one pod or job (`address`: "pod.NAME" or "job.NAME")."""

    kind: ClassVar[str] = "event"
    address: str

    def as_dict(self) -> dict[str, object]:
        """{"event": kind, "address": ..., the fields}: one JSON-lines object."""
        return {"event": self.kind, **dataclasses.asdict(self)}


@dataclass(frozen=True)
class PodCreating(Event):
    kind: ClassVar[str] = "pod_creating"
    gpu_type_id: str
    cloud: str


@dataclass(frozen=True)
class NoCapacity(Event):
    kind: ClassVar[str] = "no_capacity"
    gpu_type_id: str
    cloud: str


@dataclass(frozen=True)
class PodCreated(Event):
    kind: ClassVar[str] = "pod_created"
    pod_id: str
    gpu_type_id: str
    cloud: str


@dataclass(frozen=True)
class PodReady(Event):
    kind: ClassVar[str] = "pod_ready"
    pod_id: str
    ssh: str | None  # "HOST:PORT" when the pod has SSH


@dataclass(frozen=True)
class PodStopping(Event):
    kind: ClassVar[str] = "pod_stopping"
    pod_id: str


@dataclass(frozen=True)
class PodStopped(Event):
    kind: ClassVar[str] = "pod_stopped"
    pod_id: str
    why: str = ""  # e.g. "state: stopped" for a pod created stopped


@dataclass(frozen=True)
class PodTerminating(Event):
    kind: ClassVar[str] = "pod_terminating"
    pod_id: str
    why: str


@dataclass(frozen=True)
class PodTerminated(Event):
    kind: ClassVar[str] = "pod_terminated"
    pod_id: str
    already_gone: bool = False


@dataclass(frozen=True)
class PodResuming(Event):
    kind: ClassVar[str] = "pod_resuming"
    pod_id: str


@dataclass(frozen=True)
class PodUpdating(Event):
    kind: ClassVar[str] = "pod_updating"
    pod_id: str


@dataclass(frozen=True)
class Waiting(Event):
    """A change that cannot start until the changes it needs have ended."""

    kind: ClassVar[str] = "waiting"
    on: tuple[str, ...]


@dataclass(frozen=True)
class Transfer(Event):
    """An upload or a download of one `from -> to` entry starts (`done`: false) or ends."""

    kind: ClassVar[str] = "transfer"
    direction: str  # "upload" | "download"
    source: str
    target: str
    done: bool = False
    files: int = 0
    bytes: int = 0


@dataclass(frozen=True)
class JobStarted(Event):
    kind: ClassVar[str] = "job_started"
    pod_id: str
    attempt: int  # 1 for the first try


@dataclass(frozen=True)
class JobReattached(Event):
    """A run this job already has on its pod: followed (still running) or collected (ended)."""

    kind: ClassVar[str] = "job_reattached"
    pod_id: str
    ended: bool


@dataclass(frozen=True)
class JobRetrying(Event):
    kind: ClassVar[str] = "job_retrying"
    why: str
    delay_s: float
    attempt: int
    retries: int


@dataclass(frozen=True)
class LogLine(Event):
    kind: ClassVar[str] = "log"
    line: str


@dataclass(frozen=True)
class StillRunning(Event):
    """A change in progress, every heartbeat (what it does now, how long since it started)."""

    kind: ClassVar[str] = "still_running"
    elapsed_s: float
    phase: str = ""  # e.g. "creating", "waiting for SSH", "running"


@dataclass(frozen=True)
class Note(Event):
    """Anything else worth a line (a watchdog armed, a lost answer found); free text."""

    kind: ClassVar[str] = "note"
    text: str


@dataclass(frozen=True)
class ChangeFinished(Event):
    """One change of the plan ended: done, failed or skipped, with its duration."""

    kind: ClassVar[str] = "change_finished"
    action: str
    outcome: str  # done | failed | skipped
    duration_s: float
    message: str = ""
    pod_id: str | None = None
    exit_code: int | None = None  # run-job only, when the run ended with one


@dataclass(frozen=True)
class BatchProgress(Event):
    """An endpoint batch's lines by state, and how many finish per second."""

    kind: ClassVar[str] = "batch_progress"
    done: int
    running: int
    queued: int
    failed: int
    total: int
    per_s: float


EVENT_KINDS: tuple[type[Event], ...] = (
    PodCreating,
    NoCapacity,
    PodCreated,
    PodReady,
    PodStopping,
    PodStopped,
    PodTerminating,
    PodTerminated,
    PodResuming,
    PodUpdating,
    Waiting,
    Transfer,
    JobStarted,
    JobReattached,
    JobRetrying,
    LogLine,
    StillRunning,
    Note,
    ChangeFinished,
    BatchProgress,
)
