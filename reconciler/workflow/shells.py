"""The executor's Shells over real SSH: one connection per pod, host keys pinned on first use."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from reconciler.errors import PodctlError
from reconciler.model import ActualPod, ActualState

if TYPE_CHECKING:
    from reconciler.ssh import PodConnection, StackKey
    from reconciler.workflow.journal import LockfileJournal

Refresh = Callable[[str], Awaitable[ActualPod | None]]


class SharedListing:
    """`refresh` for many pods waiting on SSH at once: one `list_pods` serves every caller
    that asks within `max_age_s` (or while it is in flight), not one request per pod."""

    def __init__(
        self,
        list_pods: Callable[[], Awaitable[ActualState]],
        max_age_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.list_pods = list_pods
        self.max_age_s = max_age_s
        self.clock = clock
        self.requests = 0
        self._last: tuple[float, ActualState] | None = None
        self._lock = asyncio.Lock()

    async def pod(self, pod_id: str) -> ActualPod | None:
        async with self._lock:  # a caller that waited here finds the listing just made
            if self._last is None or self.clock() - self._last[0] >= self.max_age_s:
                self.requests += 1
                self._last = (self.clock(), await self.list_pods())
            return self._last[1].get(pod_id)


class SshShells:
    """Opens each pod's connection once (concurrent jobs share it); a failure is kept too."""

    def __init__(
        self,
        key: StackKey,
        journal: LockfileJournal,
        *,
        refresh: Refresh,
        timeout_s: float,
        initial_s: float = 1.0,
        max_s: float = 5.0,
    ) -> None:
        self.key = key
        self.journal = journal
        self.refresh = refresh
        self.timeout_s = timeout_s
        self.initial_s = initial_s
        self.max_s = max_s
        self._conns: dict[str, PodConnection] = {}
        self._failed: dict[str, PodctlError] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def open(self, pod: ActualPod) -> PodConnection:
        from reconciler.ssh import wait_ready

        async with self._locks.setdefault(pod.pod_id, asyncio.Lock()):
            if pod.pod_id in self._conns:
                return self._conns[pod.pod_id]
            if pod.pod_id in self._failed:
                raise self._failed[pod.pod_id]
            pinned = tuple(self.journal.lockfile.host_keys.get(pod.pod_id, ()))
            try:
                conn = await wait_ready(
                    pod,
                    self.key,
                    pinned=pinned,
                    timeout_s=self.timeout_s,
                    initial_s=self.initial_s,
                    max_s=self.max_s,
                    refresh=lambda: self.refresh(pod.pod_id),
                )
            except PodctlError as exc:
                self._failed[pod.pod_id] = exc
                raise
            if not pinned and conn.host_keys:
                self.journal.pinned(pod.pod_id, tuple(conn.host_keys))
            self._conns[pod.pod_id] = conn
            return conn

    async def aclose(self) -> None:
        conns, self._conns = list(self._conns.values()), {}
        for conn in conns:
            await conn.close()
