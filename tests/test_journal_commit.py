"""The lockfile journal's group commit: fewer writes, each commit durable when it returns."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from reconciler.errors import LockfileError
from reconciler.executor import PollPolicy, execute
from reconciler.lockfile import LockfileStore
from reconciler.model import ActualPod, ActualState, Lockfile, PodRecord, PodStatus
from reconciler.plans import Action, ApplyResult, Plan
from reconciler.podops import PodCreate
from reconciler.workflow.journal import LockfileJournal
from tests.executor_fakes import FakeApi, change, desired, plan, spec

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
FAST = PollPolicy(initial_s=0.001, max_s=0.002)


class CountingStore(LockfileStore):
    """A LockfileStore that counts its writes and can be told to refuse the next one."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.writes, self.refuse = 0, 0

    def write(self, lockfile: Lockfile, **kw: Any) -> Lockfile:
        if self.refuse:
            self.refuse -= 1
            raise LockfileError("refused for the test")
        self.writes += 1
        return super().write(lockfile, **kw)


@dataclass
class CheckingApi(FakeApi):
    """Checks, as each create is sent, that the lockfile on disk holds its intent."""

    store: LockfileStore | None = None
    unrecorded: list[str] = field(default_factory=list)

    async def create_pod(self, request: PodCreate) -> ActualPod:
        assert self.store is not None
        uid = dict(request.env)["PODCTL_UID"]
        if uid not in {i.uid for i in self.store.read().intents}:
            self.unrecorded.append(uid)
        return await super().create_pod(request)


def journal_for(store: LockfileStore, actual: ActualState | None = None) -> LockfileJournal:
    store.acquire()
    return LockfileJournal(
        store, store.read(), stack="st", actual=actual or ActualState(pods={}), clock=lambda: NOW
    )


def run(the_plan: Plan, api: FakeApi, journal: LockfileJournal, *pods: Any) -> ApplyResult:
    return asyncio.run(
        execute(
            the_plan,
            desired(*pods),
            api,
            journal,
            secrets={},
            poll=FAST,
            parallelism=10,
            actual=journal.actual,
            now=lambda: NOW,
            fingerprint=lambda s: f"fp-{s.name}",
        )
    )


def test_parallel_creates_share_writes_and_each_intent_is_on_disk_before_its_create(
    tmp_path: Path,
) -> None:
    store = CountingStore(tmp_path / "st.podctl.lock")
    journal = journal_for(store)
    api = CheckingApi(store=store)
    pods = [spec(f"p{i:02d}") for i in range(40)]
    result = run(plan(*(change(p, Action.CREATE) for p in pods)), api, journal, *pods)
    assert result.ok
    assert api.unrecorded == []  # write-ahead: no create was sent before its intent was durable
    on_disk = LockfileStore(store.path).read()
    assert sorted(on_disk.pods) == [p.name for p in pods]
    assert on_disk.intents == ()
    assert store.writes < 40  # one intent and one record each would be 80


def test_adopting_many_pods_is_one_write(tmp_path: Path) -> None:
    api = FakeApi()
    pods = [spec(f"p{i:03d}") for i in range(300)]
    seen = [api.add(f"id{i}", "st", p.name, PodStatus.RUNNING) for i, p in enumerate(pods)]
    store = CountingStore(tmp_path / "st.podctl.lock")
    journal = journal_for(store, ActualState(pods={p.pod_id: p for p in seen}))
    noops = [change(p, Action.NOOP, pod_id=f"id{i}") for i, p in enumerate(pods)]
    assert run(plan(*noops), api, journal, *pods).ok
    assert store.writes == 1
    on_disk = LockfileStore(store.path).read()
    assert on_disk.pods["p299"].pod_id == "id299" and len(on_disk.pods) == 300


def test_a_refused_write_fails_its_commits_and_the_next_commit_writes_the_change(
    tmp_path: Path,
) -> None:
    store = CountingStore(tmp_path / "st.podctl.lock")
    journal = journal_for(store)

    async def scenario() -> None:
        store.refuse = 1
        with pytest.raises(LockfileError, match="refused for the test"):
            await journal.commit(lambda: journal.intend("a", "u-a"))
        await journal.commit(lambda: journal.intend("b", "u-b"))

    asyncio.run(scenario())
    assert [i.uid for i in LockfileStore(store.path).read().intents] == ["u-a", "u-b"]


def test_a_direct_call_writes_at_once_and_keeps_the_serial_in_step(tmp_path: Path) -> None:
    store = CountingStore(tmp_path / "st.podctl.lock")
    journal = journal_for(store)

    async def scenario() -> None:
        await journal.commit(lambda: journal.intend("a", "u-a"))
        journal.created("a", PodRecord(pod_id="p1", uid="u-a", fingerprint="f"))  # direct
        await journal.commit(lambda: journal.intend("b", "u-b"))

    asyncio.run(scenario())
    on_disk = LockfileStore(store.path).read()
    assert (on_disk.serial, store.writes) == (3, 3)
    assert journal.lockfile.serial == 3 and journal.lockfile.same_content(on_disk)


def test_one_commit_adopting_a_stopped_pod_records_both_facts(tmp_path: Path) -> None:
    api = FakeApi()
    seen = api.add("id1", "st", "box", PodStatus.EXITED)
    store = CountingStore(tmp_path / "st.podctl.lock")
    journal = journal_for(store, ActualState(pods={"id1": seen}))

    def record() -> None:
        journal.touched("box", "id1", "fp-box")
        journal.stopped("box", "id1", NOW, keep_earlier=True)
        journal.touched("box", "id1", "fp-box")  # nothing new: the record stays

    asyncio.run(journal.commit(record))
    on_disk = LockfileStore(store.path).read().pods["box"]
    assert (on_disk.pod_id, on_disk.uid, on_disk.fingerprint) == ("id1", "uid-id1", "fp-box")
    assert on_disk.stopped_at == NOW and store.writes == 1
    assert journal.lockfile.pods["box"] == on_disk
