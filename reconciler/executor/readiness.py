"""Readiness: wait until pods run (`runtime` set, 22/tcp mapped), ONE list_pods per poll round."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from reconciler.errors import ApiError, PodctlError
from reconciler.executor.ports import PodBackend
from reconciler.model import ActualPod, PodStatus

Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]


class NotReadyError(PodctlError):
    """A pod did not become ready in time; the message says what was missing."""


@dataclass(frozen=True)
class PollPolicy:
    """Backoff between poll rounds: `initial_s`, times `factor` each round, capped at `max_s`."""

    initial_s: float = 1.0
    max_s: float = 5.0
    factor: float = 1.5


def is_ready(pod: ActualPod, needs_ssh: bool) -> bool:
    return pod.runtime_ready and (pod.ssh is not None or not needs_ssh)


def why_not_ready(pod: ActualPod | None, needs_ssh: bool) -> str:
    """One sentence per cause, so a user knows where to look."""
    if pod is None:
        return "the pod disappeared (terminated outside podctl: console, another tool, or the pod)"
    if pod.container_failed:
        return (
            f"RunPod reports the container of {pod.pod_id} in ERROR, an unrecoverable error (an "
            "image that cannot start, or a failing command?); `podctl --api rest logs pod.NAME` "
            "shows its log"
        )
    if pod.desired_status not in (PodStatus.RUNNING, PodStatus.CREATED, PodStatus.RESTARTING):
        return f"the pod is {pod.desired_status.value}, not RUNNING"
    if not pod.runtime_ready:
        return (
            "the container never started (runtime still empty: an image that cannot be pulled, "
            "or a host/CUDA mismatch)"
        )
    if needs_ssh:
        return "no public port maps to 22/tcp (is 22/tcp in ports, and is a public IP available?)"
    return "unknown"


@dataclass
class _Waiter:
    pod_id: str
    needs_ssh: bool
    deadline: float
    future: asyncio.Future[ActualPod]
    last: ActualPod | None = None


@dataclass
class Readiness:
    """Shared poller: every pod that waits is checked by the same `list_pods` each round."""

    api: PodBackend
    policy: PollPolicy = field(default_factory=PollPolicy)
    sleep: Sleep = asyncio.sleep
    clock: Clock = time.monotonic
    _waiters: list[_Waiter] = field(default_factory=list)
    _task: asyncio.Task[None] | None = None
    polls: int = 0

    async def wait(self, pod: ActualPod, *, needs_ssh: bool, timeout_s: float) -> ActualPod:
        """Return the pod once ready; raise NotReadyError (with the cause) after timeout_s."""
        if is_ready(pod, needs_ssh):
            return pod
        future: asyncio.Future[ActualPod] = asyncio.get_running_loop().create_future()
        self._waiters.append(
            _Waiter(pod.pod_id, needs_ssh, self.clock() + timeout_s, future, last=pod)
        )
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._poll_loop())
        return await future

    async def _poll_loop(self) -> None:
        interval = self.policy.initial_s
        while self._waiters:
            await self.sleep(interval)
            interval = min(interval * self.policy.factor, self.policy.max_s)
            self.polls += 1
            try:
                actual = await self.api.list_pods()
            except ApiError as exc:
                self._give_up_expired(f"; the last poll failed: {exc}")
                continue
            for waiter in list(self._waiters):
                pod = actual.get(waiter.pod_id)
                waiter.last = pod
                if pod is not None and is_ready(pod, waiter.needs_ssh):
                    self._settle(waiter, pod)
                elif pod is None or pod.container_failed:  # neither comes right by waiting
                    self._fail(waiter, why_not_ready(pod, waiter.needs_ssh))
            self._give_up_expired("")

    def _give_up_expired(self, suffix: str) -> None:
        now = self.clock()
        for waiter in list(self._waiters):
            if now >= waiter.deadline:
                self._fail(waiter, why_not_ready(waiter.last, waiter.needs_ssh) + suffix)

    def _settle(self, waiter: _Waiter, pod: ActualPod) -> None:
        self._waiters.remove(waiter)
        if not waiter.future.done():
            waiter.future.set_result(pod)

    def _fail(self, waiter: _Waiter, reason: str) -> None:
        self._waiters.remove(waiter)
        if not waiter.future.done():
            waiter.future.set_exception(NotReadyError(reason))

    async def aclose(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
