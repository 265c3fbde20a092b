"""The state one apply shares between its changes: API, journal, limits, readiness, events."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, ParamSpec

from reconciler.errors import PodctlError
from reconciler.events import Event, Note
from reconciler.executor.ports import Journal, PodBackend, Shells
from reconciler.executor.readiness import Readiness
from reconciler.model import ActualPod, ActualState, DesiredState, JobRecord, PodSpec
from reconciler.plans import Change, Placement, Plan

if TYPE_CHECKING:
    from reconciler.executor.endpoint_jobs import EndpointJobs
    from reconciler.executor.watchdog import WatchdogWiring

OnEvent = Callable[[Event], None]
OnJobLine = Callable[[str, str], None]  # (job, line): a line of a job's log as it streams
Fingerprint = Callable[[PodSpec], str]
P = ParamSpec("P")


class ChangeFailed(PodctlError):
    """One change did not work; the message is what the summary shows."""

    def __init__(self, message: str, *, job_exit: int | None = None) -> None:
        super().__init__(message)
        self.job_exit = job_exit  # the exit code of a job's run that ended with one


@dataclass
class Landed:
    """The pod a create made, and the fallback it landed on."""

    pod: ActualPod
    placement: Placement


@dataclass
class StepContext:
    """Everything a change needs; journal writes go through `write`."""

    plan: Plan
    desired: DesiredState
    api: PodBackend
    journal: Journal
    secrets: Mapping[str, str]
    on_event: OnEvent
    timeout_s: float
    readiness: Readiness
    actual: ActualState | None
    public_key: str | None
    now: Callable[[], datetime]
    semaphore: asyncio.Semaphore
    fingerprint: Fingerprint
    shells: Shells | None = None
    recorded_jobs: Mapping[str, JobRecord] = field(default_factory=dict)
    job_inputs: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # for the ledger
    on_job_line: OnJobLine | None = None
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    # pod name -> the pod as this apply last saw it ready (creates, resumes, updates)
    ready: dict[str, ActualPod] = field(default_factory=dict)
    created: set[str] = field(default_factory=set)  # pods (by name) this apply created
    pod_locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    watchdog: WatchdogWiring | None = None  # arm the on-pod max_lifetime watchdog
    endpoint_jobs: EndpointJobs | None = None  # runs jobs sent to serverless endpoints

    def pod_lock(self, pod: str) -> asyncio.Lock:
        """One job at a time per pod (unless a job says `parallel: true`)."""
        return self.pod_locks.setdefault(pod, asyncio.Lock())

    def pod_id_of(self, change: Change) -> str | None:
        """The pod a change acts on: the plan's id, else the one this apply created for it."""
        if change.pod_id is not None:
            return change.pod_id
        ready = self.ready.get(change.pod)
        return ready.pod_id if ready is not None else None

    def event(self, change: Change, text: str) -> None:
        """A free-text note about `change` (typed events go through `emit`)."""
        self.on_event(Note(change.address, text))

    def emit(self, event: Event) -> None:
        self.on_event(event)

    async def write(self, fn: Callable[P, None], *args: P.args, **kwargs: P.kwargs) -> None:
        """A journal write, durable when this returns (writes made together share one)."""
        await self.journal.commit(lambda: fn(*args, **kwargs))
