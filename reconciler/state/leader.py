"""Leadership: which of several `podctl reconcile` processes of one stack acts (one lock).

The leader holds the stack's reconcile lock (a lock of its own, beside the stack's state
lock) for as long as it runs: a flock for a lockfile store, a session advisory lock for
PostgreSQL. Nothing is renewed by hand: the kernel or the server drops the lock with the
leader's process or connection, and a standby's next try takes it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from reconciler.errors import LockfileError, LockHeldError
from reconciler.state.port import StateStore

LEADER_SUFFIX = ".reconcile"  # `<stack>.reconcile`: not a stack name (those have no dots)


@dataclass
class Leadership:
    """The stack's reconcile lock: take it if free, say who holds it, notice it lost."""

    store: StateStore  # a store used only for its lock, never read or written
    alive: Callable[[], bool]  # whether the held lock is still held (its connection is up)

    @property
    def leading(self) -> bool:
        """Whether this process holds the lock now (False once its connection broke)."""
        if self.store.mode is None:
            return False
        if self.alive():
            return True
        self.store.release()
        return False

    def try_lead(self) -> dict[str, object] | None:
        """Take the lock if it is free: None when this process leads, else the holder."""
        if self.leading:
            return None
        try:
            self.store.acquire(timeout=0)
        except LockHeldError as exc:
            return dict(exc.holder) if exc.holder else {}
        return None

    def holder(self) -> dict[str, object]:
        try:
            return self.store.holder()
        except LockfileError:
            return {}

    def release(self) -> None:
        self.store.release()
