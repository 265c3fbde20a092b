"""Workflow pieces without the network: secrets, spec and lockfile paths, the lockfile journal."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from reconciler.errors import LockfileError, PodctlError, UsageError
from reconciler.lockfile import LockfileStore
from reconciler.model import (
    ActualPod,
    ActualState,
    CloudType,
    DesiredState,
    JobRecord,
    JobSpec,
    JobStatus,
    Lockfile,
    PodMarkers,
    PodRecord,
    PodSpec,
    PodStatus,
    SecretRef,
)
from reconciler.workflow import Connection, default_spec_paths, resolve_secrets
from reconciler.workflow.context import check_stack, lockfile_path
from reconciler.workflow.journal import LockfileJournal

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _desired() -> DesiredState:
    pod = PodSpec(
        name="trainer",
        image="img",
        gpu_types=("X",),
        env={"HF_TOKEN": SecretRef("HF_TOKEN"), "KEY": SecretRef("W_KEY"), "A": "1"},
    )
    job = JobSpec(name="train", pod="trainer", run="true", env={"T": SecretRef("HF_TOKEN")})
    return DesiredState(
        stack="s", pods={"trainer": pod}, jobs={"train": job}, files=("/x/specs/a.yaml",)
    )


def test_missing_secrets_are_listed_together_with_where_they_are_used() -> None:
    with pytest.raises(PodctlError) as caught:
        resolve_secrets(_desired(), {"W_KEY": "v"})
    assert str(caught.value) == (
        "These environment variables are not set, and the spec reads them (from_env):\n"
        "  HF_TOKEN (used by pods.trainer.env.HF_TOKEN, jobs.train.env.T)\n"
        "Export them and run again; their values are never written anywhere."
    )
    assert resolve_secrets(_desired(), {"W_KEY": "v", "HF_TOKEN": "h", "OTHER": "o"}) == {
        "HF_TOKEN": "h",
        "W_KEY": "v",
    }


def test_default_spec_paths_prefer_podctl_yaml_then_specs(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"pass -f PATH"):
        default_spec_paths(tmp_path)
    (tmp_path / "specs").mkdir()
    assert default_spec_paths(tmp_path) == (tmp_path / "specs",)
    (tmp_path / "podctl.yaml").write_text("")
    assert default_spec_paths(tmp_path) == (tmp_path / "podctl.yaml",)


def test_lockfile_beside_the_first_spec_file_unless_given() -> None:
    assert lockfile_path(Connection(), _desired()) == Path("/x/specs/s.podctl.lock")
    assert lockfile_path(Connection(lockfile=Path("o.lock")), _desired()) == Path("o.lock")


def test_a_lockfile_of_another_stack_is_refused() -> None:
    with pytest.raises(LockfileError, match=r"belongs to stack 'other', not 's'"):
        check_stack(Lockfile(stack="other"), _desired(), Path("p"))


def _pod(pod_id: str, uid: str) -> ActualPod:
    env = PodMarkers("s", "trainer", uid).as_env()
    return ActualPod(
        pod_id=pod_id,
        name="s-trainer",
        desired_status=PodStatus.RUNNING,
        image="img",
        gpu_type_id="X",
        env=env,
        markers=PodMarkers.from_env(env),
    )


def _journal(tmp_path: Path, *pods: ActualPod, forbidden: tuple[str, ...] = ()) -> LockfileJournal:
    store = LockfileStore(tmp_path / "podctl.lock")
    store.acquire()
    actual = ActualState(pods={p.pod_id: p for p in pods})
    return LockfileJournal(
        store, store.read(), stack="s", actual=actual, forbidden=forbidden, clock=lambda: NOW
    )


def test_journal_writes_each_step_and_an_orphan_terminate_keeps_the_record(
    tmp_path: Path,
) -> None:
    journal = _journal(tmp_path, _pod("orphan", "lost-uid"))
    journal.intend("trainer", "lost-uid")
    journal.intend("trainer", "u1")
    assert len(journal.store.read().intents) == 2  # durable before the create is sent
    journal.created("trainer", PodRecord(pod_id="p1", uid="u1", fingerprint="f"))
    journal.terminated("trainer", "orphan")
    on_disk = journal.store.read()
    assert on_disk.pods["trainer"].pod_id == "p1"
    assert on_disk.intents == ()  # u1 settled by the create, lost-uid by the orphan's end
    assert on_disk.stack == "s"


def test_journal_touch_without_news_does_not_bump_the_serial(tmp_path: Path) -> None:
    journal = _journal(tmp_path, _pod("p1", "u1"))
    journal.touched("trainer", "p1", "f1")  # adopted: recorded from its markers
    first = journal.store.read()
    assert first.pods["trainer"] == PodRecord(
        pod_id="p1", uid="u1", fingerprint="f1", gpu_type_id="X", applied_at=NOW
    )
    journal.touched("trainer", "p1", "f1")
    journal.touched("trainer", "p1", None)
    assert journal.store.read().serial == first.serial


def test_journal_masks_a_secret_in_a_job_message_and_ignores_chance_matches(
    tmp_path: Path,
) -> None:
    journal = _journal(tmp_path, forbidden=("s3cret-value", "secure"))
    # `secure` (a from_env value) equals the recorded cloud by chance: no leak, still written
    journal.created("trainer", PodRecord("p1", "u1", "f", cloud=CloudType.SECURE))
    assert journal.store.read().pods["trainer"].cloud is CloudType.SECURE
    failed = JobRecord(
        fingerprint="f", pod_id="p1", status=JobStatus.FAILED, message="boom: s3cret-value"
    )
    journal.job_finished("train", failed)
    assert isinstance(journal.store, LockfileStore)
    text = journal.store.path.read_text()
    assert "s3cret-value" not in text
    assert journal.store.read().jobs["train"].message == "boom: ***"


def test_journal_does_not_trip_on_a_short_from_env_value(tmp_path: Path) -> None:
    journal = _journal(tmp_path, forbidden=("1", "s"))
    journal.intend("trainer", "u1")  # the text holds "1" and "s": still written
    assert journal.store.read().intents[0].uid == "u1"
