"""The state one apply shares between its changes: API, journal, limits, readiness, events."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import ParamSpec

from reconciler.errors import PodctlError
from reconciler.executor.protocols import Journal, PodApi
from reconciler.executor.readiness import Readiness
from reconciler.model import ActualPod, ActualState, DesiredState, PodSpec
from reconciler.plans import Change, Placement, Plan

OnEvent = Callable[[str], None]
Fingerprint = Callable[[PodSpec], str]
P = ParamSpec("P")


class ChangeFailed(PodctlError):
    """One change did not work; the message is what the summary shows."""


@dataclass
class Landed:
    """The pod a create made, and the fallback it landed on."""

    pod: ActualPod
    placement: Placement


@dataclass
class StepContext:
    """Everything a change needs; journal writes go one at a time through `write`."""

    plan: Plan
    desired: DesiredState
    api: PodApi
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
    journal_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def event(self, change: Change, text: str) -> None:
        self.on_event(f"{change.address}: {text}")

    async def write(self, fn: Callable[P, None], *args: P.args, **kwargs: P.kwargs) -> None:
        """One journal write at a time; durable when this returns."""
        async with self.journal_lock:
            fn(*args, **kwargs)
