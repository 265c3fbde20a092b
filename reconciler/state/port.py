"""The StateStore protocol, the settings that open one, and the runner's local state folder."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Protocol

from reconciler.model import Lockfile

LockMode = Literal["shared", "exclusive"]


class StateLost(Exception):
    """A write could not be made safely: the store's connection (so its lock) is gone, or
    another writer got in. Deliberately not a PodctlError, so it passes the executor's
    per-change handling and stops the whole run; the workflow reports it as a LockfileError.
    """


class StateStore(Protocol):
    """Where the recorded state lives: read, compare-and-swap write, and a lock with a holder.

    `read()` of an absent state is an empty Lockfile. `write()` needs the exclusive lock and
    the Lockfile last read or written (same lineage and serial): any other is refused with a
    LockfileError, so a stale writer never overwrites a newer state. `lock()` fails at once
    with LockHeldError naming the holder (pid, host, command, since), or waits up to the
    timeout; a holder that dies frees the lock.
    """

    @property
    def where(self) -> str:
        """The store as a user may see it (a path, or a URL without credentials, and stack)."""
        ...

    @property
    def mode(self) -> LockMode | None: ...

    def lock(
        self, *, shared: bool = False, timeout: float | None = None
    ) -> AbstractContextManager[Any]: ...

    def acquire(self, *, shared: bool = False, timeout: float | None = None) -> None: ...

    def release(self) -> None: ...

    def holder(self) -> dict[str, object]: ...

    def exists(self) -> bool:
        """Whether a state was ever written (readable or not)."""
        ...

    def newer_format(self) -> bool:
        """Whether the stored document was written by a newer podctl (never rebuilt over)."""
        ...

    def read(self) -> Lockfile: ...

    def write(self, lockfile: Lockfile, *, forbidden_values: Iterable[str] = ()) -> Lockfile: ...

    def move_aside(self, now: datetime | None = None) -> Path | str:
        """Keep an unreadable state under another name (never deleted); where it went."""
        ...


@dataclass(frozen=True)
class StateSettings:
    """What opens a store: a lockfile path or a `postgresql://` URL, the stack, lock waits."""

    location: str | Path
    stack: str = ""
    lock_timeout: float = 0.0
    command: str = "podctl"
    poll_interval: float = 0.1
    sleep: Callable[[float], None] | None = field(default=None, compare=False)


@dataclass(frozen=True)
class LocalState:
    """The runner's own files, kept out of the store: the stack's SSH key and its job logs.

    For a lockfile store they sit beside the lockfile (`<stack>.podctl.id_ed25519`,
    `<stack>.podctl.logs/`); the composition decides the folder for other stores. With a
    shared store each runner keeps its own logs, but all must use one key (`shared`).
    """

    folder: Path
    stem: str  # `<stack>.podctl`
    shared: bool = False  # the store is shared (PostgreSQL): podctl never makes a key here

    @classmethod
    def beside(cls, lockfile: Path) -> LocalState:
        """`quickstart.podctl.lock` -> folder of the lockfile, stem `quickstart.podctl`."""
        return cls(lockfile.parent, lockfile.name.removesuffix(".lock"))

    @property
    def ssh_key(self) -> Path:
        return self.folder / f"{self.stem}.id_ed25519"

    @property
    def job_logs(self) -> Path:
        return self.folder / f"{self.stem}.logs"
