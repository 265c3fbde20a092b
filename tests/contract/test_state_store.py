"""The StateStore contract: every store (the lockfile, PostgreSQL) passes these same tests."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from reconciler.errors import LockfileError, LockHeldError
from reconciler.lockfile import dumps, record_job, record_pod
from reconciler.model import JobRecord, JobStatus, Lockfile, PodRecord
from reconciler.state import StateLost, StateSettings, StateStore, open_store
from tests.postgres import PgServer, pg_server, pg_url

__all__ = ["pg_server", "pg_url"]

STACK = "contract"
WHEN = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)

HOLDER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from reconciler.state import StateSettings, is_postgres_url, open_store
    location = sys.argv[1] if is_postgres_url(sys.argv[1]) else Path(sys.argv[1])
    store = open_store(StateSettings(location, stack=sys.argv[2], command="podctl apply (holder)"))
    with store.lock(shared=sys.argv[3] == "shared"):
        print("locked", getattr(store, "backend_pid", None) or 0, flush=True)
        sys.stdin.read()  # until the test closes our stdin (or kills us)
    """
)


@dataclass
class Kind:
    """One StateStore implementation under test: where its state lives, and its server."""

    location: str | Path
    pg: PgServer | None = None

    def open(self, **kwargs: object) -> StateStore:
        return open_store(StateSettings(self.location, stack=STACK, **kwargs))  # type: ignore[arg-type]

    def gone(self, backend_pid: int) -> None:
        """Wait (bounded) until the server has noticed a killed holder's connection is gone."""
        if self.pg is None:
            return  # the kernel drops a dead process's flock as it exits
        for _ in range(300):
            rows = self.pg.sql("SELECT 1 FROM pg_stat_activity WHERE pid = %s", backend_pid)
            if not rows:
                return
            time.sleep(0.05)
        raise AssertionError(f"the server kept backend {backend_pid} of a killed holder")


@pytest.fixture(params=["lockfile", "postgres"])
def kind(request: pytest.FixtureRequest, tmp_path: Path) -> Kind:
    if request.param == "lockfile":
        return Kind(tmp_path / f"{STACK}.podctl.lock")
    url = request.getfixturevalue("pg_url")
    return Kind(url, request.getfixturevalue("pg_server"))


@contextmanager
def holding(kind: Kind, mode: str = "exclusive") -> Iterator[tuple[subprocess.Popen[str], int]]:
    """Another process holding the lock; yields it and its server backend pid (0: none)."""
    with subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(kind.location), STACK, mode],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as child:
        try:
            assert child.stdout is not None
            word, backend = child.stdout.readline().split()
            assert word == "locked"
            yield child, int(backend)
        finally:
            child.kill()
            child.wait()


def sample(base: Lockfile) -> Lockfile:
    record = PodRecord(pod_id="p1", uid="u1", fingerprint="f1", created_at=WHEN, applied_at=WHEN)
    job = JobRecord(
        fingerprint="j1", pod_id="p1", status=JobStatus.SUCCEEDED, exit_code=0, started_at=WHEN
    )
    lockfile = record_pod(replace(base, stack=STACK), "trainer", record)
    return replace(record_job(lockfile, "train", job), host_keys={"p1": ("ssh-ed25519 AAAA",)})


def test_read_of_an_absent_state_is_empty(kind: Kind) -> None:
    store = kind.open()
    assert store.read() == Lockfile()
    assert not store.exists()


def test_write_then_read_round_trips(kind: Kind) -> None:
    store = kind.open()
    with store.lock():
        written = store.write(sample(store.read()))
    assert written.serial == 1 and written.lineage
    again = kind.open().read()
    assert dumps(again) == dumps(written)
    assert again.pods["trainer"].pod_id == "p1" and again.jobs["train"].exit_code == 0
    with store.lock():
        same = store.write(again)  # unchanged content: no new serial
        assert same.serial == 1
        bumped = store.write(replace(again, host_keys={}))
    assert bumped.serial == 2 and bumped.lineage == written.lineage


@pytest.mark.parametrize("first_write", [True, False])
def test_a_stale_write_is_refused_by_serial(kind: Kind, first_write: bool) -> None:
    a, b = kind.open(), kind.open()
    if not first_write:
        with a.lock():
            a.write(sample(a.read()))
    stale = b.read()
    with a.lock():
        newer = a.write(replace(sample(a.read()), host_keys={"p2": ("k",)}))
    # a lockfile refuses it as a LockfileError; PostgreSQL's fenced UPDATE as StateLost, which
    # stops a whole apply (another writer got in, so the lock cannot be trusted)
    with b.lock(), pytest.raises((LockfileError, StateLost), match="changed") as info:
        b.write(replace(sample(stale), jobs={}))
    assert f"{newer.serial}" in str(info.value) or "serial" in str(info.value)
    assert dumps(kind.open().read()) == dumps(newer)  # nothing was overwritten


def test_writing_needs_the_exclusive_lock(kind: Kind) -> None:
    store = kind.open()
    with pytest.raises(LockfileError, match="exclusive lock"):
        store.write(sample(Lockfile()))
    with store.lock(shared=True), pytest.raises(LockfileError, match="exclusive lock"):
        store.write(sample(Lockfile()))
    assert not kind.open().exists()


def test_a_held_lock_fails_the_second_locker_naming_the_holder(kind: Kind) -> None:
    store = kind.open()
    with holding(kind) as (child, _):
        with pytest.raises(LockHeldError) as info:
            store.acquire()
        message = str(info.value)
        assert f"pid {child.pid}" in message and "podctl apply (holder)" in message
        assert "--lock-timeout" in message and "since " in message
        assert info.value.holder["pid"] == child.pid
        with pytest.raises(LockHeldError):
            store.acquire(shared=True)
        assert store.mode is None


def test_shared_locks_coexist_and_keep_out_the_exclusive_one(kind: Kind) -> None:
    with holding(kind, "shared"):
        with kind.open().lock(shared=True) as store:
            assert store.mode == "shared"
        with pytest.raises(LockHeldError):
            kind.open().acquire()


def test_the_lock_timeout_waits_for_the_holder(kind: Kind) -> None:
    with holding(kind) as (child, _):
        waits: list[float] = []

        def sleep(seconds: float) -> None:  # the holder finishes while we wait
            waits.append(seconds)
            if len(waits) == 1:
                assert child.stdin is not None
                child.stdin.close()
                child.wait()

        store = kind.open(lock_timeout=60.0, poll_interval=0.01, sleep=sleep)
        with store.lock():
            assert store.mode == "exclusive"
        assert waits  # it did not get the lock at once: it waited, then took it


def test_the_lock_timeout_gives_up_naming_the_holder(kind: Kind) -> None:
    with holding(kind) as (child, _):
        store = kind.open(poll_interval=0.01, sleep=lambda _s: None)
        ticks = iter(range(1000))
        store._clock = lambda: float(next(ticks))  # type: ignore[attr-defined]
        with pytest.raises(LockHeldError, match=r"after waiting 3s") as info:
            store.acquire(timeout=3)
        assert f"pid {child.pid}" in str(info.value)


def test_release_frees_the_lock(kind: Kind) -> None:
    a, b = kind.open(), kind.open()
    a.acquire()
    assert a.mode == "exclusive"
    a.release()
    assert a.mode is None
    with b.lock():
        assert b.mode == "exclusive"
    a.release()  # releasing twice is harmless


def test_a_crashed_holders_lock_is_free_again(kind: Kind) -> None:
    with holding(kind) as (child, backend):
        with pytest.raises(LockHeldError):
            kind.open().acquire()
        child.kill()  # SIGKILL: no cleanup of any kind runs in the holder
        child.wait()
        kind.gone(backend)
        with kind.open().lock(timeout=0) as store:
            assert store.mode == "exclusive"
            store.write(sample(store.read()))
    assert kind.open().read().pods["trainer"].pod_id == "p1"


def test_a_corrupt_state_is_moved_aside_never_deleted(kind: Kind) -> None:
    store = kind.open()
    with store.lock():
        store.write(sample(store.read()))
        moved = store.move_aside()
    assert not kind.open().exists() and kind.open().read() == Lockfile()
    assert "corrupt-" in str(moved)
