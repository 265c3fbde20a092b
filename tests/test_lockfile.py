"""LockfileStore on a real disk: round trips, serial/lineage, atomicity, refusal, flock."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest

from reconciler.errors import LockfileError, LockHeldError
from reconciler.lockfile import (
    LockfileStore,
    clear_intent,
    dumps,
    forget_pod,
    loads,
    record_host_keys,
    record_intent,
    record_job,
    record_pod,
)
from reconciler.model import CloudType, JobRecord, JobStatus, Lockfile, PodRecord

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
T1 = datetime(2026, 3, 1, 12, 5, 0, tzinfo=UTC)


def sample() -> Lockfile:
    lf = Lockfile(stack="llm-eval")
    lf = record_intent(lf, stack="llm-eval", pod="trainer", uid="u-1", since=T0)
    lf = record_intent(lf, stack="llm-eval", pod="eval", uid="u-2", since=T0)
    lf = record_pod(
        lf,
        "trainer",
        PodRecord(
            pod_id="abc123",
            uid="u-1",
            fingerprint="sha256:aa",
            gpu_type_id="NVIDIA GeForce RTX 4090",
            cloud=CloudType.SECURE,
            created_at=T0,
            applied_at=T1,
        ),
    )
    lf = record_job(
        lf,
        "train",
        JobRecord(
            fingerprint="sha256:bb",
            pod_id="abc123",
            status=JobStatus.SUCCEEDED,
            exit_code=0,
            started_at=T0,
            finished_at=T1,
        ),
    )
    return record_host_keys(lf, "abc123", ["ssh-ed25519 AAAAC3Nz host"])


@pytest.fixture
def store(tmp_path: Path) -> LockfileStore:
    return LockfileStore(tmp_path / "podctl.lock", command="pytest")


def test_missing_file_reads_as_empty(store: LockfileStore) -> None:
    assert store.read() == Lockfile()
    assert not store.path.exists()


def test_round_trip_mints_lineage_and_serial_one(store: LockfileStore) -> None:
    with store:
        written = store.write(sample())
    assert written.serial == 1 and len(written.lineage) == 36
    again = store.read()
    assert again == written
    assert again.pods["trainer"].created_at == T0
    assert again.intents[0].uid == "u-2"  # u-1 was settled by record_pod
    assert again.host_keys == {"abc123": ("ssh-ed25519 AAAAC3Nz host",)}


def test_serial_bumps_only_on_change_and_lineage_is_kept(store: LockfileStore) -> None:
    with store:
        first = store.write(sample())
        mtime = store.path.stat().st_mtime_ns
        same = store.write(first)
        assert same.serial == 1 and store.path.stat().st_mtime_ns == mtime
        changed = store.write(clear_intent(first, "u-2"))
    assert changed.serial == 2 and changed.lineage == first.lineage
    assert store.read().intents == ()


def test_writing_a_stale_copy_is_refused(store: LockfileStore) -> None:
    with store:
        first = store.write(sample())
        store.write(clear_intent(first, "u-2"))
        with pytest.raises(LockfileError, match="changed since it was read"):
            store.write(forget_pod(first, "trainer"))
    assert "trainer" in store.read().pods


def test_file_mode_is_0600_and_sidecar_too(store: LockfileStore) -> None:
    old_umask = os.umask(0o022)
    try:
        with store:
            store.write(sample())
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.lock_path.stat().st_mode) == 0o600


def test_write_needs_the_exclusive_lock(store: LockfileStore) -> None:
    with pytest.raises(LockfileError, match="exclusive lock"):
        store.write(sample())
    with store.lock(shared=True), pytest.raises(LockfileError, match="exclusive lock"):
        store.write(sample())
    assert not store.path.exists()


def test_failed_write_leaves_the_old_file_intact(
    store: LockfileStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    with store:
        first = store.write(sample())
    before = store.path.read_bytes()

    def broken_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("reconciler.lockfile.store.os.fsync", broken_fsync)
    with store, pytest.raises(OSError, match="No space"):
        store.write(forget_pod(first, "trainer"))
    assert store.path.read_bytes() == before
    assert sorted(p.name for p in store.path.parent.iterdir()) == [
        "podctl.lock",
        "podctl.lock.lock",
    ]


def test_failed_rename_leaves_the_old_file_intact(
    store: LockfileStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    with store:
        first = store.write(sample())
    before = store.path.read_bytes()

    def broken_replace(src: str, dst: str) -> None:
        raise OSError(5, "I/O error")

    monkeypatch.setattr("reconciler.lockfile.store.os.replace", broken_replace)
    with store, pytest.raises(OSError):
        store.write(forget_pod(first, "trainer"))
    assert store.path.read_bytes() == before
    assert len(list(store.path.parent.iterdir())) == 2  # no temp file left behind


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "corrupt"),
        ("[]", "corrupt"),
        ('{"format_version": 99}', "newer podctl"),
        ('{"format_version": "1"}', "cannot read"),
        ('{"format_version": 1, "serial": "3"}', "serial"),
        ('{"format_version": 1, "pods": {"t": {"pod_id": 5}}}', "pods.t.pod_id"),
        (
            '{"format_version": 1, "jobs": {"j": {"fingerprint": "f", "pod_id": "p", '
            '"status": "exploded"}}}',
            "jobs.j.status",
        ),
        (
            '{"format_version": 1, "intents": [{"stack": "s", "pod": "p", "uid": "u", '
            '"since": "yesterday"}]}',
            "intents[0].since",
        ),
        ('{"format_version": 1, "host_keys": {"p": "ssh-ed25519 A"}}', "host_keys.p"),
    ],
)
def test_corrupt_or_unknown_version_is_refused_and_untouched(
    store: LockfileStore, content: str, message: str
) -> None:
    store.path.write_text(content)
    with pytest.raises(LockfileError, match=re.escape(message)) as info:
        store.read()
    assert isinstance(info.value, LockfileError) and not isinstance(info.value, LockHeldError)
    with store, pytest.raises(LockfileError):
        store.write(sample())
    assert store.path.read_text() == content


def test_corrupt_message_gives_a_recovery_hint(store: LockfileStore) -> None:
    store.path.write_text("{")
    with pytest.raises(LockfileError, match="adopts them again"):
        store.read()


def test_dumps_is_stable_json() -> None:
    text = dumps(sample())
    assert json.loads(text)["format_version"] == 1
    assert loads(text) == sample()
    assert dumps(loads(text)) == text


def test_a_known_secret_is_never_written(store: LockfileStore) -> None:
    secret = 'hf_TOPSECRET"quoted'
    run = JobRecord(fingerprint="f", pod_id="p", status=JobStatus.FAILED, message=f"{secret}!")
    leaky = record_job(sample(), "leaky", run)
    with store, pytest.raises(LockfileError, match=r"secret value .*\(jobs\.leaky\.message;"):
        store.write(leaky, forbidden_values=[secret, ""])
    assert not store.path.exists()
    with store:
        store.write(sample(), forbidden_values=[secret])
    assert "TOPSECRET" not in store.path.read_text()


def test_record_helpers_are_pure() -> None:
    base = sample()
    snapshot = dumps(base)
    gone = forget_pod(base, "trainer")
    assert "trainer" not in gone.pods and "abc123" not in gone.host_keys
    assert dumps(base) == snapshot


# --- locking --------------------------------------------------------------------------------

HOLDER = textwrap.dedent(
    """
    import sys, time
    from reconciler.lockfile import LockfileStore
    store = LockfileStore(sys.argv[1], command="podctl apply -f specs/")
    with store.lock(shared=sys.argv[2] == "shared"):
        print("locked", flush=True)
        time.sleep(float(sys.argv[3]))
    """
)


@contextmanager
def hold_lock(
    path: Path, mode: str = "exclusive", seconds: float = 30.0
) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the lock (flock is per open file description and process)."""
    with subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path), mode, str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    ) as child:
        try:
            assert child.stdout is not None
            assert child.stdout.readline().strip() == "locked"
            yield child
        finally:
            child.kill()
            child.wait()


def test_second_locker_gets_lock_held_error_naming_the_holder(store: LockfileStore) -> None:
    with hold_lock(store.path) as child:
        started = time.monotonic()
        with pytest.raises(LockHeldError) as info, store:
            pass
        assert time.monotonic() - started < 1.0  # fails at once
        assert info.value.holder["pid"] == child.pid
        assert info.value.holder["command"] == "podctl apply -f specs/"
        message = str(info.value)
        assert f"pid {child.pid}" in message and "podctl apply -f specs/" in message
        assert "--lock-timeout" in message
        with pytest.raises(LockHeldError), store.lock(shared=True):
            pass
    with store:  # the kernel dropped the dead holder's lock
        assert store.mode == "exclusive"


def test_waits_up_to_the_timeout_then_gets_the_lock(tmp_path: Path) -> None:
    path = tmp_path / "podctl.lock"
    with hold_lock(path, seconds=0.5):
        store = LockfileStore(path, lock_timeout=10.0, poll_interval=0.05)
        started = time.monotonic()
        with store:
            waited = time.monotonic() - started
        assert 0.2 < waited < 5.0


def test_wait_gives_up_after_the_timeout(tmp_path: Path) -> None:
    path = tmp_path / "podctl.lock"
    with hold_lock(path):
        store = LockfileStore(path, poll_interval=0.05)
        started = time.monotonic()
        with pytest.raises(LockHeldError, match=r"after waiting 0\.4s"):
            store.acquire(timeout=0.4)
        assert 0.35 < time.monotonic() - started < 3.0
        assert store.mode is None


def test_shared_locks_coexist_and_block_an_exclusive_one(tmp_path: Path) -> None:
    path = tmp_path / "podctl.lock"
    plan_a, plan_b, apply = LockfileStore(path), LockfileStore(path), LockfileStore(path)
    with plan_a.lock(shared=True), plan_b.lock(shared=True):
        assert plan_a.mode == plan_b.mode == "shared"
        with pytest.raises(LockHeldError):
            apply.acquire()
    with apply, pytest.raises(LockHeldError):  # a second open file description is refused
        plan_a.acquire(shared=True)
    assert plan_a.mode is None and apply.mode is None


def test_lock_is_not_reentrant_on_one_store(store: LockfileStore) -> None:
    with store, pytest.raises(LockfileError, match="already holds"):
        store.acquire()


def test_corrupt_message_names_state_rebuild(store: LockfileStore) -> None:
    store.path.write_text("")  # truncated to nothing
    with pytest.raises(LockfileError, match=re.escape("run `podctl state rebuild -f SPEC`")):
        store.read()


def test_move_aside_keeps_the_file_under_a_timestamped_name(store: LockfileStore) -> None:
    from datetime import UTC, datetime

    store.path.write_text("{")
    with pytest.raises(LockfileError, match="exclusive lock"):
        store.move_aside()
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    with store:
        first = store.move_aside(when)
        store.path.write_text("[")
        second = store.move_aside(when)
    assert first.name == f"{store.path.name}.corrupt-20260102T030405Z"
    assert second.name == f"{store.path.name}.corrupt-20260102T030405Z-2"
    assert (first.read_text(), second.read_text()) == ("{", "[")
    assert not store.path.exists()
