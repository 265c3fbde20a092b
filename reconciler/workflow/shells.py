"""The executor's Shells over real SSH: one connection per pod, host keys pinned on first use."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from reconciler.errors import PodctlError
from reconciler.model import ActualPod

if TYPE_CHECKING:
    from reconciler.ssh import PodConnection, StackKey
    from reconciler.workflow.journal import LockfileJournal

Refresh = Callable[[str], Awaitable[ActualPod | None]]


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
