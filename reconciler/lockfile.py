"""The recorded state on disk: LockfileStore (JSON, atomic writes, flock) and pure record helpers.

Stdlib only. A corrupt or unknown-format lockfile is refused and never overwritten.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self

from reconciler.errors import LockfileError, LockHeldError
from reconciler.model import (
    LOCKFILE_FORMAT_VERSION,
    CloudType,
    CreateIntent,
    JobRecord,
    JobStatus,
    Lockfile,
    PodRecord,
)

LockMode = Literal["shared", "exclusive"]

_RECOVERY_HINT = (
    "podctl will not overwrite it. Restore it from version control or a backup; or move it "
    "aside and run `podctl plan`: pods carry PODCTL_* markers, so podctl adopts them again."
)


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
        except (OSError, ValueError):
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
        os.ftruncate(fd, 0)
        os.pwrite(fd, data, 0)

    def _held_error(self, timeout: float) -> LockHeldError:
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

    def read(self) -> Lockfile:
        """The recorded state; an empty Lockfile when the file does not exist yet."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return Lockfile()
        except (OSError, UnicodeDecodeError) as exc:
            raise LockfileError(f"Cannot read the lockfile {self.path}: {exc}") from exc
        return loads(text, str(self.path))

    def write(self, lockfile: Lockfile, *, forbidden_values: Iterable[str] = ()) -> Lockfile:
        """Persist `lockfile` atomically under the exclusive lock; return what is on disk now.

        Mints the lineage on the first write and bumps the serial only when the content
        changed. `lockfile` must be the latest one read or written (same lineage and serial).
        Refuses to write any of `forbidden_values` (secrets the caller knows of).
        """
        if self._mode != "exclusive":
            raise LockfileError(f"{self.path}: writing the lockfile needs the exclusive lock")
        on_disk = self.read()
        exists = self.path.exists()
        if exists and (lockfile.lineage, lockfile.serial) != (on_disk.lineage, on_disk.serial):
            raise LockfileError(
                f"The lockfile {self.path} changed since it was read (lineage/serial "
                f"{on_disk.lineage}/{on_disk.serial}, not {lockfile.lineage}/{lockfile.serial})."
            )
        if exists and lockfile.same_content(on_disk):
            return on_disk
        new = replace(
            lockfile,
            format_version=LOCKFILE_FORMAT_VERSION,
            lineage=on_disk.lineage if exists else (lockfile.lineage or str(uuid.uuid4())),
            serial=(on_disk.serial if exists else lockfile.serial) + 1,
        )
        text = dumps(new)
        for secret in forbidden_values:
            if secret and (secret in text or json.dumps(secret)[1:-1] in text):
                raise LockfileError(
                    f"Refusing to write a secret value into the lockfile {self.path} "
                    "(a bug in podctl: please report it)."
                )
        atomic_write(self.path, text)
        return new


def atomic_write(path: Path, text: str, mode: int = 0o600) -> None:
    """Write a temp file beside `path`, fsync it, rename it over `path`, fsync the folder."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


# --- (de)serialisation ---------------------------------------------------------------------------


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def dumps(lockfile: Lockfile) -> str:
    """The lockfile's JSON text (stable key order, so diffs in version control stay small)."""
    document = {
        "format_version": lockfile.format_version,
        "lineage": lockfile.lineage,
        "serial": lockfile.serial,
        "stack": lockfile.stack,
        "pods": {
            name: {
                "pod_id": r.pod_id,
                "uid": r.uid,
                "fingerprint": r.fingerprint,
                "gpu_type_id": r.gpu_type_id,
                "cloud": r.cloud.value if r.cloud else None,
                "created_at": _time(r.created_at),
                "applied_at": _time(r.applied_at),
            }
            for name, r in sorted(lockfile.pods.items())
        },
        "jobs": {
            name: {
                "fingerprint": r.fingerprint,
                "pod_id": r.pod_id,
                "status": r.status.value,
                "exit_code": r.exit_code,
                "started_at": _time(r.started_at),
                "finished_at": _time(r.finished_at),
            }
            for name, r in sorted(lockfile.jobs.items())
        },
        "intents": [
            {"stack": i.stack, "pod": i.pod, "uid": i.uid, "since": _time(i.since)}
            for i in lockfile.intents
        ],
        "host_keys": {pod_id: list(keys) for pod_id, keys in sorted(lockfile.host_keys.items())},
    }
    return json.dumps(document, indent=2) + "\n"


class _Reader:
    """Typed access to the parsed JSON; every mismatch is a LockfileError with the path."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, what: str) -> LockfileError:
        return LockfileError(
            f"The lockfile {self.source} is corrupt: {where} {what}. {_RECOVERY_HINT}"
        )

    def obj(self, value: object, where: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(where, "is not an object")
        return value

    def str_(self, value: object, where: str, *, optional: bool = False) -> Any:
        if value is None and optional:
            return None
        if not isinstance(value, str):
            raise self.fail(where, "is not a string")
        return value

    def int_(self, value: object, where: str, *, optional: bool = False) -> Any:
        if value is None and optional:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(where, "is not an integer")
        return value

    def time(self, value: object, where: str, *, optional: bool = True) -> datetime | None:
        text = self.str_(value, where, optional=optional)
        if text is None:
            return None
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            raise self.fail(where, "is not an ISO 8601 time") from None

    def enum(self, enum_type: Any, value: object, where: str, *, optional: bool = False) -> Any:
        text = self.str_(value, where, optional=optional)
        if text is None:
            return None
        try:
            return enum_type(text)
        except ValueError:
            raise self.fail(where, f"has an unknown value {text!r}") from None


def loads(text: str, source: str = "lockfile") -> Lockfile:
    """Parse and validate a lockfile's JSON text; LockfileError (with a recovery hint) if bad."""
    r = _Reader(source)
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise r.fail("its JSON", f"does not parse ({exc})") from None
    top = r.obj(raw, "the document")
    version = top.get("format_version")
    if version != LOCKFILE_FORMAT_VERSION:
        newer = isinstance(version, int) and version > LOCKFILE_FORMAT_VERSION
        why = "was written by a newer podctl: upgrade podctl" if newer else "has no known format"
        raise LockfileError(
            f"The lockfile {source} has format_version {version!r}, which this podctl "
            f"(format {LOCKFILE_FORMAT_VERSION}) cannot read; it {why}. It was left untouched."
        )
    pods = {
        r.str_(name, "a pod name"): PodRecord(
            pod_id=r.str_(p.get("pod_id"), f"pods.{name}.pod_id"),
            uid=r.str_(p.get("uid"), f"pods.{name}.uid"),
            fingerprint=r.str_(p.get("fingerprint"), f"pods.{name}.fingerprint"),
            gpu_type_id=r.str_(p.get("gpu_type_id"), f"pods.{name}.gpu_type_id", optional=True),
            cloud=r.enum(CloudType, p.get("cloud"), f"pods.{name}.cloud", optional=True),
            created_at=r.time(p.get("created_at"), f"pods.{name}.created_at"),
            applied_at=r.time(p.get("applied_at"), f"pods.{name}.applied_at"),
        )
        for name, value in r.obj(top.get("pods", {}), "pods").items()
        for p in [r.obj(value, f"pods.{name}")]
    }
    jobs = {
        r.str_(name, "a job name"): JobRecord(
            fingerprint=r.str_(j.get("fingerprint"), f"jobs.{name}.fingerprint"),
            pod_id=r.str_(j.get("pod_id"), f"jobs.{name}.pod_id"),
            status=r.enum(JobStatus, j.get("status"), f"jobs.{name}.status"),
            exit_code=r.int_(j.get("exit_code"), f"jobs.{name}.exit_code", optional=True),
            started_at=r.time(j.get("started_at"), f"jobs.{name}.started_at"),
            finished_at=r.time(j.get("finished_at"), f"jobs.{name}.finished_at"),
        )
        for name, value in r.obj(top.get("jobs", {}), "jobs").items()
        for j in [r.obj(value, f"jobs.{name}")]
    }
    raw_intents = top.get("intents", [])
    if not isinstance(raw_intents, list):
        raise r.fail("intents", "is not a list")
    intents = []
    for index, value in enumerate(raw_intents):
        i = r.obj(value, f"intents[{index}]")
        since = r.time(i.get("since"), f"intents[{index}].since", optional=False)
        assert since is not None
        intents.append(
            CreateIntent(
                stack=r.str_(i.get("stack"), f"intents[{index}].stack"),
                pod=r.str_(i.get("pod"), f"intents[{index}].pod"),
                uid=r.str_(i.get("uid"), f"intents[{index}].uid"),
                since=since,
            )
        )
    host_keys: dict[str, tuple[str, ...]] = {}
    for pod_id, keys in r.obj(top.get("host_keys", {}), "host_keys").items():
        if not isinstance(keys, list):
            raise r.fail(f"host_keys.{pod_id}", "is not a list")
        host_keys[pod_id] = tuple(r.str_(k, f"host_keys.{pod_id}[]") for k in keys)
    return Lockfile(
        stack=r.str_(top.get("stack", ""), "stack"),
        lineage=r.str_(top.get("lineage", ""), "lineage"),
        serial=r.int_(top.get("serial", 0), "serial"),
        format_version=version,
        pods=pods,
        jobs=jobs,
        intents=tuple(intents),
        host_keys=host_keys,
    )


# --- pure record helpers: Lockfile -> Lockfile ---------------------------------------------------


def record_intent(
    lockfile: Lockfile, *, stack: str, pod: str, uid: str, since: datetime
) -> Lockfile:
    """Before a create: remember its uid, so a lost answer can be found by its marker."""
    intent = CreateIntent(stack=stack, pod=pod, uid=uid, since=since)
    kept = tuple(i for i in lockfile.intents if i.uid != uid)
    return replace(lockfile, stack=lockfile.stack or stack, intents=(*kept, intent))


def clear_intent(lockfile: Lockfile, uid: str) -> Lockfile:
    """After a create failed for sure (or its pod was found): forget the intent."""
    return replace(lockfile, intents=tuple(i for i in lockfile.intents if i.uid != uid))


def record_pod(lockfile: Lockfile, name: str, record: PodRecord) -> Lockfile:
    """After a create, adopt, resume or edit: the pod record; its create intent is settled."""
    pods = {**lockfile.pods, name: record}
    return clear_intent(replace(lockfile, pods=pods), record.uid)


def forget_pod(lockfile: Lockfile, name: str) -> Lockfile:
    """After a terminate: drop the pod's record and its pinned host keys."""
    record = lockfile.pods.get(name)
    pods = {k: v for k, v in lockfile.pods.items() if k != name}
    keys = dict(lockfile.host_keys)
    if record is not None:
        keys.pop(record.pod_id, None)
    return replace(lockfile, pods=pods, host_keys=keys)


def record_job(lockfile: Lockfile, name: str, record: JobRecord) -> Lockfile:
    return replace(lockfile, jobs={**lockfile.jobs, name: record})


def record_host_keys(lockfile: Lockfile, pod_id: str, keys: Iterable[str]) -> Lockfile:
    """Pin a pod's SSH host keys (on first use)."""
    return replace(lockfile, host_keys={**lockfile.host_keys, pod_id: tuple(keys)})
