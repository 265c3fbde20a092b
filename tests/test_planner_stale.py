"""stale_reasons: when a saved plan may no longer be applied."""

from __future__ import annotations

from dataclasses import replace

from reconciler.model import PodStatus
from reconciler.planner import plan, stale_reasons
from reconciler.plans import Plan
from tests.planner_fixtures import (
    OFFERS,
    SECRETS,
    actual,
    actual_pod,
    desired,
    lockfile,
    make_plan,
    pod_spec,
    record,
)

SPEC = pod_spec(image="img:2")
OLD = pod_spec()


def _saved() -> Plan:
    return make_plan(desired(SPEC), actual(actual_pod(OLD)), lockfile(("trainer", record(OLD))))


def test_same_inputs_are_not_stale():
    assert stale_reasons(_saved(), _saved()) == ()


def test_serial_moved():
    fresh = make_plan(
        desired(SPEC), actual(actual_pod(OLD)), lockfile(("trainer", record(OLD)), serial=4)
    )
    assert stale_reasons(_saved(), fresh) == (
        "the lockfile changed since the plan was made (serial 3 -> 4)",
    )


def test_first_plan_is_stale_once_a_lockfile_exists():
    first = make_plan(desired(SPEC), actual(), lockfile(lineage="", serial=0))
    after = make_plan(desired(SPEC), actual(), lockfile(lineage="lin-9", serial=1))
    assert stale_reasons(first, after) == (
        "the lockfile's lineage changed since the plan was made (none -> lin-9)",
    )


def test_spec_or_secret_moved():
    rec = lockfile(("trainer", record(OLD)))
    fresh = plan(
        desired(SPEC), actual(actual_pod(OLD)), rec, offers=OFFERS, secrets={"HF_TOKEN": "x"}
    )
    reasons = stale_reasons(_saved(), fresh)
    assert reasons[0] == "the spec (or a from_env value) changed since the plan was made"


def test_targets_differ():
    rec = lockfile(("trainer", record(OLD)))
    fresh = make_plan(
        desired(SPEC), actual(actual_pod(OLD)), rec, targets=frozenset({"pod.trainer"})
    )
    assert stale_reasons(_saved(), fresh) == (
        "the plan was made for targets all, not ['pod.trainer']",
    )


def test_touched_pod_moved():
    moved = actual_pod(OLD, status=PodStatus.EXITED)
    fresh = make_plan(desired(SPEC), actual(moved), lockfile(("trainer", record(OLD))))
    assert stale_reasons(_saved(), fresh) == (
        "pod.trainer: the pod changed since the plan was made "
        "(pod p1 (RUNNING) -> pod p1 (EXITED))",
        "a fresh plan differs: it would now also resume pod.trainer; it would no longer update "
        "pod.trainer",
    )


def test_touched_pod_changed_fields_same_status():
    moved = replace(actual_pod(OLD), docker_args="--x")
    fresh = make_plan(desired(SPEC), actual(moved), lockfile(("trainer", record(OLD))))
    assert stale_reasons(_saved(), fresh) == (
        "pod.trainer: the pod changed since the plan was made (pod p1 (RUNNING) was modified)",
    )


def test_a_pod_appeared_for_a_planned_create():
    saved = make_plan(desired(SPEC), actual())
    fresh = make_plan(desired(SPEC), actual(actual_pod(SPEC, pod_id="new")))
    assert stale_reasons(saved, fresh) == (
        "pod.trainer: the pod changed since the plan was made (no pod -> pod new (RUNNING))",
        "a fresh plan differs: it would no longer create pod.trainer",
    )


def test_untouched_pods_may_move():
    other = pod_spec("other")
    d = desired(SPEC, other)
    rec = lockfile(("trainer", record(OLD)), ("other", record(other, "p2")))
    saved = make_plan(d, actual(actual_pod(OLD), actual_pod(other, pod_id="p2")), rec)
    moved = replace(actual_pod(other, pod_id="p2"), uptime_s=999, cost_per_hr=0.7)
    fresh = make_plan(d, actual(actual_pod(OLD), moved), rec)
    assert stale_reasons(saved, fresh) == ()
    assert SECRETS


def test_a_job_whose_uploaded_files_changed_makes_the_plan_stale():
    from reconciler.model import JobSpec, Transfer

    job = JobSpec(name="prep", pod="trainer", run="prep", upload=(Transfer("/d", "/w/d"),))
    pods = actual(actual_pod(SPEC))
    rec = lockfile(("trainer", record(SPEC)))
    saved = make_plan(desired(SPEC, jobs=(job,)), pods, rec, job_uploads={"prep": "files-1"})
    same = make_plan(desired(SPEC, jobs=(job,)), pods, rec, job_uploads={"prep": "files-1"})
    moved = make_plan(desired(SPEC, jobs=(job,)), pods, rec, job_uploads={"prep": "files-2"})
    assert stale_reasons(saved, same) == ()
    assert stale_reasons(saved, moved) == (
        "job.prep: the job changed since the plan was made (its command, env, workdir, "
        "uploaded files or image)",
    )
