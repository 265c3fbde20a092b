"""LockfileStore: the lockfile on disk, its atomic writes and its flock sidecar. Stdlib only."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Literal, Self

from reconciler.atomic import atomic_write
from reconciler.errors import LockfileError, LockHeldError
from reconciler.lockfile.codec import RECOVERY_HINT, EncodeCache, dumps, loads
from reconciler.model import LOCKFILE_FORMAT_VERSION, Lockfile

LockMode = Literal["shared", "exclusive"]
HOLDER_RETRIES, HOLDER_RETRY_S = 5, 0.02  # reading a holder that is being written


def secret_fields(lockfile: Lockfile, secrets: Iterable[str]) -> list[str]:
    """The fields of `lockfile` that hold one of `secrets` (from_env values), by path.

    Only the field that can carry env-derived text is compared: job messages (free text from
    a run). The lockfile holds no env value; the rest are podctl's own enums, hashes, ids,
    times and the spec's names; comparing a secret with them only finds chance matches (a
    secret `secure` is no leak in `cloud: secure`, nor `SECRET` in a key `MY_SECRET`), and a
    refusal then would strand a pod already billing.
    """
    values = [s for s in secrets if s]
    if not values:
        return []
    texts = [(f"jobs.{name}.message", r.message) for name, r in lockfile.jobs.items()]
    return sorted({path for path, text in texts if any(v in text for v in values)})


def next_version(
    lockfile: Lockfile,
    known: Lockfile,
    *,
    stored: bool,
    what: str,
    forbidden_values: Iterable[str],
) -> Lockfile | None:
    """The compare-and-swap rule every store writes by: the version to store, or None.

    `known` is what the store holds (`stored` False: nothing yet). A `lockfile` not read from
    that version is refused; the same content is None (nothing to write); else the lineage is
    minted on the first write and the serial bumped. `what` names the store in messages.
    """
    if stored and (lockfile.lineage, lockfile.serial) != (known.lineage, known.serial):
        raise LockfileError(
            f"The {what} changed since it was read (lineage/serial "
            f"{known.lineage}/{known.serial}, not {lockfile.lineage}/{lockfile.serial})."
        )
    if stored and lockfile.same_content(known):
        return None
    new = replace(
        lockfile,
        format_version=LOCKFILE_FORMAT_VERSION,
        lineage=known.lineage if stored else (lockfile.lineage or str(uuid.uuid4())),
        serial=(known.serial if stored else lockfile.serial) + 1,
    )
    where = secret_fields(new, forbidden_values)
    if where:
        raise LockfileError(
            f"Refusing to write a secret value into the {what} "
            f"({', '.join(where)}; a bug in podctl: please report it)."
        )
    return new


class LockfileStore:
    """One lockfile on disk and its `<lockfile>.lock` sidecar, which carries the flock.

    `with store.lock():` takes the exclusive lock (apply), `with store.lock(shared=True):` the
    shared one (plan); `with store:` is the exclusive lock too. A second holder fails at once
    with LockHeldError naming the holder, or waits up to `lock_timeout` seconds. The kernel drops
    a flock when its process dies, so there are no stale locks.
    """

    def __init__(
        self,
        path: Path | str,
        *,
        lock_timeout: float = 0.0,
        command: str | None = None,
        poll_interval: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.path = Path(path)
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        self.lock_timeout = lock_timeout
        self.command = command if command is not None else " ".join(sys.argv[:2])
        self.poll_interval = poll_interval
        self._clock = clock
        self._sleep = sleep
        self._fd: int | None = None
        self._mode: LockMode | None = None
        self._known: tuple[tuple[int, int, int, int], Lockfile] | None = None  # (stat, content)
        self._encoded = EncodeCache()  # a rewrite encodes only the records that changed

    def __repr__(self) -> str:
        return f"LockfileStore({str(self.path)!r}, locked={self._mode!r})"

    # --- locking ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def lock(self, *, shared: bool = False, timeout: float | None = None) -> Iterator[Self]:
        """Hold the shared (plan) or exclusive (apply) lock for the `with` block."""
        self.acquire(shared=shared, timeout=timeout)
        try:
            yield self
        finally:
            self.release()

    def __enter__(self) -> Self:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    @property
    def where(self) -> str:
        return str(self.path)

    def exists(self) -> bool:
        return self.path.exists()

    def newer_format(self) -> bool:
        """Whether the file says it was written by a newer podctl (a later format_version)."""
        try:
            version = json.loads(self.path.read_text(encoding="utf-8")).get("format_version")
        except (OSError, ValueError, AttributeError, RecursionError):
            return False
        return isinstance(version, int) and version > LOCKFILE_FORMAT_VERSION

    @property
    def mode(self) -> LockMode | None:
        """The lock this store holds now, if any."""
        return self._mode

    def acquire(self, *, shared: bool = False, timeout: float | None = None) -> None:
        if self._fd is not None:
            raise LockfileError(f"{self.path}: this store already holds the {self._mode} lock")
        timeout = self.lock_timeout if timeout is None else timeout
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        operation = (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB
        deadline = self._clock() + max(timeout, 0.0)
        try:
            while True:
                try:
                    fcntl.flock(fd, operation)
                    break
                except OSError as exc:
                    if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                        raise
                if self._clock() >= deadline:
                    raise self._held_error(timeout)
                self._sleep(min(self.poll_interval, max(deadline - self._clock(), 0.0)))
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        self._mode = "shared" if shared else "exclusive"
        self._write_holder(fd)

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd, self._mode = self._fd, None, None
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def holder(self) -> dict[str, object]:
        """Who last took the lock, as written into the sidecar ({} when unknown)."""
        try:
            text = self.lock_path.read_text(encoding="utf-8")
            info = json.loads(text)
        except (OSError, ValueError, RecursionError):
            return {}
        return info if isinstance(info, dict) else {}

    def _write_holder(self, fd: int) -> None:
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "command": self.command,
            "mode": self._mode,
            "since": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        data = (json.dumps(info) + "\n").encode()
        # over the old text, then cut to length: a reader never finds the file empty
        os.pwrite(fd, data, 0)
        os.ftruncate(fd, len(data))

    def _held_error(self, timeout: float) -> LockHeldError:
        holder = self.holder()
        for _ in range(HOLDER_RETRIES):  # taken a moment ago: its holder is being written
            if holder:
                break
            self._sleep(HOLDER_RETRY_S)
            holder = self.holder()
        who = (
            f"pid {holder.get('pid', '?')} on {holder.get('host', '?')} "
            f"({holder.get('command') or 'unknown command'}, {holder.get('mode', '?')} lock) "
            f"since {holder.get('since', '?')}"
            if holder
            else "another process"
        )
        waited = f" after waiting {timeout:g}s" if timeout > 0 else ""
        return LockHeldError(
            f"The lockfile {self.path} is locked by {who}{waited}. Wait for it to finish, "
            "or pass --lock-timeout SECONDS to wait for it.",
            holder=holder,
        )

    # --- reading and writing ------------------------------------------------------------------

    def _stat_key(self) -> tuple[int, int, int, int] | None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)

    def _on_disk(self) -> Lockfile:
        """What the file holds: the copy this store last read or wrote while the file is
        unchanged since (same inode, size and mtime), else read and parsed again."""
        key = self._stat_key()
        if key is not None and self._known is not None and self._known[0] == key:
            return self._known[1]
        return self.read()

    def read(self) -> Lockfile:
        """The recorded state; an empty Lockfile when the file does not exist yet."""
        key = self._stat_key()
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return Lockfile()
        except UnicodeDecodeError:
            raise LockfileError(
                f"The lockfile {self.path} is corrupt: it is not UTF-8 text. {RECOVERY_HINT}"
            ) from None
        except OSError as exc:
            raise LockfileError(f"Cannot read the lockfile {self.path}: {exc}") from exc
        lockfile = loads(text, str(self.path))
        if key is not None and key == self._stat_key():
            self._known = (key, lockfile)
        return lockfile

    def write(self, lockfile: Lockfile, *, forbidden_values: Iterable[str] = ()) -> Lockfile:
        """Persist `lockfile` atomically under the exclusive lock; return what is on disk now.

        Mints the lineage on the first write and bumps the serial only when the content
        changed. `lockfile` must be the latest one read or written (same lineage and serial).
        Refuses a lockfile holding one of `forbidden_values` (secrets the caller knows of) in
        a field env-derived text can reach (`secret_fields`).
        """
        if self._mode != "exclusive":
            raise LockfileError(f"{self.path}: writing the lockfile needs the exclusive lock")
        on_disk = self._on_disk()
        new = next_version(
            lockfile,
            on_disk,
            stored=self.path.exists(),
            what=f"lockfile {self.path}",
            forbidden_values=forbidden_values,
        )
        if new is None:
            return on_disk
        atomic_write(self.path, dumps(new, self._encoded))
        key = self._stat_key()
        self._known = (key, new) if key is not None else None
        return new

    def move_aside(self, now: datetime | None = None) -> Path:
        """Rename the (unreadable) lockfile to `<name>.corrupt-<UTC timestamp>`; never deletes.

        Needs the exclusive lock. Returns the new path; a name already taken gets a suffix.
        """
        if self._mode != "exclusive":
            raise LockfileError(f"{self.path}: moving the lockfile aside needs the exclusive lock")
        stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
        target = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        n = 1
        while target.exists():
            n += 1
            target = self.path.with_name(f"{self.path.name}.corrupt-{stamp}-{n}")
        os.rename(self.path, target)
        return target
