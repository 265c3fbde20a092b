"""The planner's decision table, matching and adoption: desired x actual x recorded -> Plan."""

from __future__ import annotations

from dataclasses import replace

import pytest

from reconciler.model import CreateIntent, PodState, PodStatus
from reconciler.plans import Action, Observed
from tests.planner_fixtures import (
    T0,
    actual,
    actual_pod,
    desired,
    lockfile,
    make_plan,
    pod_spec,
    record,
)

R, X, N = PodStatus.RUNNING, PodStatus.EXITED, None

# (desired state, actual status or None, expected action, expected reason); always recorded
TABLE = [
    (PodState.RUNNING, N, Action.CREATE, "deleted outside podctl"),
    (PodState.RUNNING, R, Action.NOOP, "up to date"),
    (PodState.RUNNING, PodStatus.CREATED, Action.NOOP, "up to date"),
    (PodState.RUNNING, PodStatus.RESTARTING, Action.NOOP, "up to date"),
    (PodState.RUNNING, X, Action.RESUME, "stopped; state is running"),
    (PodState.RUNNING, PodStatus.PAUSED, Action.RESUME, "stopped; state is running"),
    (PodState.RUNNING, PodStatus.TERMINATED, Action.CREATE, "deleted outside podctl"),
    (PodState.RUNNING, PodStatus.DEAD, Action.CREATE, "deleted outside podctl"),
    (PodState.STOPPED, N, Action.NOOP, "not created: state is stopped"),
    (PodState.STOPPED, R, Action.STOP, "state is stopped"),
    (PodState.STOPPED, X, Action.NOOP, "stopped, as desired"),
    (PodState.ABSENT, N, Action.NOOP, "absent, as desired"),
    (PodState.ABSENT, R, Action.TERMINATE, "state is absent"),
    (PodState.ABSENT, X, Action.TERMINATE, "state is absent"),
    (PodState.ABSENT, PodStatus.TERMINATED, Action.NOOP, "absent, as desired"),
    (PodState.RUNNING, PodStatus.UNKNOWN, Action.NOOP, "status UNKNOWN: no action"),
]


@pytest.mark.parametrize(("state", "status", "action", "reason"), TABLE)
def test_decision_table(state, status, action, reason):
    spec = pod_spec(state=state)
    pods = () if status is None else (actual_pod(spec, status=status),)
    p = make_plan(desired(spec), actual(*pods), lockfile(("trainer", record(spec))))
    (change,) = p.changes
    assert (change.action, change.reason) == (action, reason)


def test_deleted_outside_podctl_is_created_again():
    spec = pod_spec()
    p = make_plan(desired(spec), actual(), lockfile(("trainer", record(spec))))
    (change,) = p.changes
    assert (change.action, change.reason) == (Action.CREATE, "deleted outside podctl")
    assert change.observed == Observed(None, "", "")


def test_new_pod_without_record_says_new():
    p = make_plan(desired(pod_spec()), actual())
    assert p.changes[0].reason == "new"
    assert p.has_changes


def test_unknown_status_is_a_plan_warning():
    spec = pod_spec()
    pod = actual_pod(spec, status=PodStatus.UNKNOWN)
    p = make_plan(desired(spec), actual(pod), lockfile(("trainer", record(spec))))
    assert p.warnings == (
        "pod.trainer: RunPod reports status UNKNOWN for pod p1; podctl takes no action until "
        "it is known",
    )
    assert not p.has_changes


def test_stopped_and_not_created_is_a_plan_note():
    p = make_plan(desired(pod_spec(state=PodState.STOPPED)), actual())
    assert p.notes == ("pod.trainer: not created: state is stopped",)


def test_converged_stack_has_no_changes():
    spec = pod_spec()
    p = make_plan(desired(spec), actual(actual_pod(spec)), lockfile(("trainer", record(spec))))
    assert not p.has_changes
    assert p.errors == () and p.warnings == ()
    assert p.changes[0].observed is not None and p.changes[0].observed.pod_id == "p1"


def test_adopted_by_markers_without_lockfile():
    spec = pod_spec()
    p = make_plan(desired(spec), actual(actual_pod(spec, pod_id="p9")))
    (change,) = p.changes
    assert (change.action, change.pod_id) == (Action.NOOP, "p9")
    assert change.reason == "adopted by markers; up to date"


def test_pods_of_other_stacks_and_unmarked_pods_are_never_touched():
    spec = pod_spec()
    other = actual_pod(spec, pod_id="o1", stack="other")
    unmarked = replace(actual_pod(spec, pod_id="u1"), markers=None, env={})
    p = make_plan(desired(), actual(other, unmarked))
    assert p.changes == ()


def test_removed_from_the_spec_is_terminated():
    spec = pod_spec()
    p = make_plan(desired(), actual(actual_pod(spec)))
    (change,) = p.changes
    assert (change.address, change.action, change.reason) == (
        "pod.trainer",
        Action.TERMINATE,
        "removed from the spec",
    )
    assert change.cost_before == 0.69 and change.cost_after == 0.0


def test_recorded_unmarked_pod_removed_from_the_spec_is_terminated():
    spec = pod_spec()
    imported = replace(actual_pod(spec, pod_id="imp"), markers=None, env={})
    p = make_plan(desired(), actual(imported), lockfile(("trainer", record(spec, "imp"))))
    assert [(c.pod_id, c.action) for c in p.changes] == [("imp", Action.TERMINATE)]


def test_orphans_are_terminated_and_the_recorded_pod_kept():
    spec = pod_spec()
    kept = actual_pod(spec, pod_id="p2", uid="u2")
    orphan = actual_pod(spec, pod_id="p1", uid="u1")
    p = make_plan(
        desired(spec), actual(kept, orphan), lockfile(("trainer", record(spec, "p2", "u2")))
    )
    assert [(c.address, c.action, c.pod_id) for c in p.changes] == [
        ("pod.trainer", Action.NOOP, "p2"),
        ("pod.trainer[p1]", Action.TERMINATE, "p1"),
    ]
    assert p.changes[1].reason == (
        "orphan: another pod with this stack's markers for pod.trainer (a create whose answer "
        "was lost)"
    )


def test_lost_create_answer_adopts_the_newest_intent():
    spec = pod_spec()
    old = actual_pod(spec, pod_id="p1", uid="u-old")
    new = actual_pod(spec, pod_id="p2", uid="u-new")
    intents = (
        CreateIntent(stack="demo", pod="trainer", uid="u-old", since=T0),
        CreateIntent(stack="demo", pod="trainer", uid="u-new", since=T0.replace(hour=5)),
    )
    p = make_plan(desired(spec), actual(old, new), lockfile(intents=intents))
    assert [(c.action, c.pod_id) for c in p.changes] == [
        (Action.NOOP, "p2"),
        (Action.TERMINATE, "p1"),
    ]
    assert p.changes[0].reason == "adopted by markers; up to date"


def test_intent_uid_wins_over_lower_pod_id():
    spec = pod_spec()
    stray = actual_pod(spec, pod_id="a", uid="u-stray")
    mine = actual_pod(spec, pod_id="b", uid="u-mine")
    intents = (CreateIntent(stack="demo", pod="trainer", uid="u-mine", since=T0),)
    p = make_plan(desired(spec), actual(stray, mine), lockfile(intents=intents))
    assert p.changes[0].pod_id == "b"


def test_changes_are_sorted_by_pod_name():
    a, b, c = pod_spec("a"), pod_spec("b"), pod_spec("c")
    p = make_plan(desired(c, a), actual(actual_pod(b, pod_id="pb")))
    assert [ch.address for ch in p.changes] == ["pod.a", "pod.b", "pod.c"]


def test_removed_pod_with_unknown_status_is_held_with_a_warning():
    pod = actual_pod(pod_spec("old"), status=PodStatus.UNKNOWN)
    p = make_plan(desired(), actual(pod))
    (change,) = p.changes
    assert (change.action, change.reason) == (
        Action.NOOP,
        "removed from the spec; status UNKNOWN: no action",
    )
    assert p.warnings == (
        "pod.old: RunPod reports status UNKNOWN for pod p1; podctl does not terminate it until "
        "it is known (removed from the spec)",
    )


def test_destroy_with_targets_terminates_only_the_target():
    a, b = pod_spec("a"), pod_spec("b")
    pods = actual(actual_pod(a, pod_id="pa"), actual_pod(b, pod_id="pb", uid="ub"))
    p = make_plan(desired(a, b), pods, destroy=True, targets=frozenset({"pod.b"}))
    assert [(c.address, c.action) for c in p.changes] == [("pod.b", Action.TERMINATE)]


def test_a_record_pointing_at_another_pods_pod_is_ignored():
    b = pod_spec("b")
    pod = actual_pod(b, pod_id="p1")
    p = make_plan(desired(b), actual(pod), lockfile(("a", record(pod_spec("a"), "p1"))))
    assert [(c.address, c.action, c.pod_id) for c in p.changes] == [("pod.b", Action.NOOP, "p1")]
