"""The pod record's `secret_env` (env keys filled from from_env): format, journal, masking."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reconciler.errors import LockfileError
from reconciler.lockfile import LockfileStore, dumps, loads
from reconciler.model import ActualPod, ActualState, Lockfile, PodRecord, PodSpec, PodStatus
from reconciler.planner.diff import field_changes
from reconciler.plans import SENSITIVE
from reconciler.workflow.journal import LockfileJournal

OLD_LOCKFILE = {
    "format_version": 1,
    "lineage": "l",
    "serial": 3,
    "stack": "s",
    "pods": {"trainer": {"pod_id": "p1", "uid": "u1", "fingerprint": "f"}},
}


def test_a_lockfile_without_the_field_reads_as_no_names_and_writes_back_unchanged() -> None:
    lockfile = loads(json.dumps(OLD_LOCKFILE))
    assert lockfile.pods["trainer"].secret_env == ()
    assert "secret_env" not in dumps(lockfile)


def test_the_names_round_trip_sorted_and_a_wrong_type_is_corrupt() -> None:
    record = PodRecord("p1", "u1", "f", secret_env=("B", "A"))
    text = dumps(Lockfile(stack="s", pods={"trainer": record}))
    assert json.loads(text)["pods"]["trainer"]["secret_env"] == ["A", "B"]
    assert loads(text).pods["trainer"].secret_env == ("A", "B")
    bad = json.loads(json.dumps(OLD_LOCKFILE))
    bad["pods"]["trainer"]["secret_env"] = "HF_TOKEN"
    with pytest.raises(LockfileError, match=r"pods\.trainer\.secret_env is not a list"):
        loads(json.dumps(bad), "x.lock")


def test_the_journal_adds_names_and_never_forgets_them(tmp_path: Path) -> None:
    store = LockfileStore(tmp_path / "s.podctl.lock")
    store.acquire()
    actual = ActualState(pods={})
    first = LockfileJournal(
        store, store.read(), stack="s", actual=actual, secret_env={"trainer": ["HF_TOKEN"]}
    )
    first.created("trainer", PodRecord("p1", "u1", "f"))
    assert store.read().pods["trainer"].secret_env == ("HF_TOKEN",)
    serial = store.read().serial
    # the spec no longer reads HF_TOKEN from_env, and now reads WANDB_KEY
    later = LockfileJournal(
        store, store.read(), stack="s", actual=actual, secret_env={"trainer": ["WANDB_KEY"]}
    )
    later.touched("trainer", "p1", None)
    assert store.read().pods["trainer"].secret_env == ("HF_TOKEN", "WANDB_KEY")
    assert store.read().serial == serial + 1
    later.touched("trainer", "p1", None)  # nothing new: the serial stays
    assert store.read().serial == serial + 1


def test_the_old_value_of_a_once_secret_key_is_masked() -> None:
    spec = PodSpec(name="trainer", image="img", gpu_types=("X",), env={"HF_TOKEN": "later"})
    pod = ActualPod(
        pod_id="p1",
        name="s-trainer",
        desired_status=PodStatus.RUNNING,
        image="img",
        env={"HF_TOKEN": "hf_SUPERSECRET"},
    )
    (shown,) = [
        f
        for f in field_changes(spec, pod, {}, drift=False, filled=("HF_TOKEN",))
        if f.path == "env.HF_TOKEN"
    ]
    assert (shown.before, shown.after) == (SENSITIVE, "later")
    (unmasked,) = [f for f in field_changes(spec, pod, {}, drift=False) if f.path == "env.HF_TOKEN"]
    assert unmasked.before == "hf_SUPERSECRET"  # what the lockfile's names prevent


def test_a_secret_inside_a_key_name_is_no_reason_to_refuse(tmp_path: Path) -> None:
    store = LockfileStore(tmp_path / "s.podctl.lock")
    store.acquire()
    journal = LockfileJournal(
        store,
        store.read(),
        stack="s",
        actual=ActualState(pods={}),
        forbidden=("SECRET",),  # the value of from_env MY_SECRET is the word SECRET
        secret_env={"trainer": ["MY_SECRET"]},
    )
    journal.created("trainer", PodRecord("p1", "u1", "f"))
    assert store.read().pods["trainer"].secret_env == ("MY_SECRET",)
