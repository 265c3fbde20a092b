"""The planner's max_lifetime rule: deadlines from the record, jobs, adopted pods, next deadline."""

from __future__ import annotations

from datetime import timedelta

from reconciler.model import JobSpec, LifetimeAction, PodStatus
from reconciler.planner.lifetime import is_lifetime_end, next_deadline
from reconciler.plans import Action, Change, Plan
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

HOUR = 3600


def _pod(plan_: Plan, address: str = "pod.trainer") -> Change:
    return next(c for c in plan_.changes if c.address == address)


def test_before_the_deadline_nothing_happens_after_it_the_pod_is_terminated() -> None:
    spec = pod_spec(max_lifetime_s=2 * HOUR)
    d = desired(spec)
    a = actual(actual_pod(spec))
    r = lockfile(("trainer", record(spec, created_at=T0)))
    before = make_plan(d, a, r, now=T0 + timedelta(hours=1, minutes=59))
    assert not before.has_changes
    after = make_plan(d, a, r, now=T0 + timedelta(hours=2))
    change = _pod(after)
    assert change.action is Action.TERMINATE
    assert change.reason == "max_lifetime 2h reached at 2026-01-01T02:00:00+00:00"
    assert is_lifetime_end(change.reason)


def test_lifetime_action_stop_and_a_stopped_pod_stays_stopped() -> None:
    spec = pod_spec(max_lifetime_s=HOUR, lifetime_action=LifetimeAction.STOP)
    r = lockfile(("trainer", record(spec, created_at=T0)))
    late = T0 + timedelta(hours=5)
    running = make_plan(desired(spec), actual(actual_pod(spec)), r, now=late)
    assert _pod(running).action is Action.STOP
    stopped = make_plan(
        desired(spec), actual(actual_pod(spec, status=PodStatus.EXITED)), r, now=late
    )
    assert not stopped.has_changes  # not resumed
    assert any("raise max_lifetime past its age to resume it" in n for n in stopped.notes)


def test_a_terminated_pod_with_its_record_is_not_created_again() -> None:
    spec = pod_spec(max_lifetime_s=HOUR)
    r = lockfile(("trainer", record(spec, created_at=T0)))
    p = make_plan(desired(spec), actual(), r, now=T0 + timedelta(hours=2))
    assert not p.has_changes
    assert any("podctl state rm pod.trainer" in n for n in p.notes)
    # raised past its age: a new pod
    longer = pod_spec(max_lifetime_s=3 * HOUR)
    p = make_plan(desired(longer), actual(), r, now=T0 + timedelta(hours=2))
    assert _pod(p).action is Action.CREATE


def test_jobs_of_an_expired_pod_and_their_dependants_do_not_run() -> None:
    spec = pod_spec(max_lifetime_s=HOUR)
    other = pod_spec("other")
    jobs = (
        JobSpec(name="train", pod="trainer", run="train"),
        JobSpec(name="report", pod="other", run="report", needs=("train",)),
        JobSpec(name="side", pod="other", run="side"),
    )
    d = desired(spec, other, jobs=jobs)
    a = actual(actual_pod(spec), actual_pod(other, pod_id="p2", uid="u2"))
    r = lockfile(
        ("trainer", record(spec, created_at=T0)),
        ("other", record(other, pod_id="p2", uid="u2", created_at=T0)),
    )
    p = make_plan(d, a, r, now=T0 + timedelta(hours=2))
    runs = sorted(c.job or "" for c in p.changes if c.action is Action.RUN_JOB)
    assert runs == ["side"]
    assert _pod(p).action is Action.TERMINATE


def test_a_pod_without_a_recorded_creation_gets_a_warning() -> None:
    spec = pod_spec(max_lifetime_s=HOUR)
    p = make_plan(desired(spec), actual(actual_pod(spec)), lockfile(), now=T0)
    assert any("max_lifetime is not enforced on pod p1" in w for w in p.warnings)


def test_next_deadline_is_the_nearest_ahead() -> None:
    a, b = pod_spec("a", max_lifetime_s=HOUR), pod_spec("b", max_lifetime_s=3 * HOUR)
    r = lockfile(("a", record(a, created_at=T0)), ("b", record(b, pod_id="p2", created_at=T0)))
    assert next_deadline([a, b], r, T0) == T0 + timedelta(hours=1)
    assert next_deadline([a, b], r, T0 + timedelta(hours=1)) == T0 + timedelta(hours=3)
    assert next_deadline([a, b], r, T0 + timedelta(hours=3)) is None
