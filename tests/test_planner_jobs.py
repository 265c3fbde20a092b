"""The planner's job table: which jobs run, why, in which order, and what they wait for."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from reconciler.model import AfterJobs, JobSpec, JobStatus, Lockfile, PodSpec, Rerun, SecretRef
from reconciler.plans import Action, Plan, plan_to_dict
from tests.planner_fixtures import (
    actual,
    actual_pod,
    desired,
    lockfile,
    make_plan,
    pod_spec,
    record,
    succeeded,
)

SPEC = pod_spec()
PREP = JobSpec(name="prep", pod="trainer", run="prep")
TRAIN = JobSpec(name="train", pod="trainer", run="train", needs=("prep",))
EVAL = JobSpec(name="eval", pod="trainer", run="eval", needs=("train",))
OTHER = JobSpec(name="other", pod="trainer", run="other")
JOBS = (PREP, TRAIN, EVAL, OTHER)


def _runs(p: Plan) -> list[tuple[str, str]]:
    return [(c.address, c.reason) for c in p.changes if c.action is Action.RUN_JOB]


def _all_done(jobs: tuple[JobSpec, ...] = JOBS, spec: PodSpec = SPEC, **kw: Any) -> Lockfile:
    return lockfile(
        ("trainer", record(spec)), jobs={j.name: succeeded(j, spec) for j in jobs}, **kw
    )


def test_new_jobs_run_in_needs_order_on_the_running_pod():
    p = make_plan(
        desired(SPEC, jobs=JOBS), actual(actual_pod(SPEC)), lockfile(("trainer", record(SPEC)))
    )
    assert _runs(p) == [
        ("job.prep", "new"),
        ("job.train", "new"),
        ("job.eval", "new"),
        ("job.other", "new"),
    ]
    by = {c.address: c for c in p.changes}
    assert by["job.eval"].depends_on == ("job.train",)
    assert by["job.prep"].depends_on == ()  # the pod runs already: nothing to wait for
    assert by["job.prep"].pod_id == "p1" and by["job.prep"].fingerprint
    assert p.has_changes


def test_all_recorded_succeeded_is_converged():
    p = make_plan(desired(SPEC, jobs=JOBS), actual(actual_pod(SPEC)), _all_done())
    assert not p.has_changes


def test_changing_one_job_reruns_it_and_its_dependants_only():
    changed = replace(TRAIN, run="train --epochs 3")
    p = make_plan(
        desired(SPEC, jobs=(PREP, changed, EVAL, OTHER)), actual(actual_pod(SPEC)), _all_done()
    )
    assert _runs(p) == [("job.train", "changed: run"), ("job.eval", "needs job.train, which runs")]


def test_changed_inputs_are_named():
    new = replace(PREP, env={"A": "1"}, workdir="/tmp")
    p = make_plan(desired(SPEC, jobs=(new,)), actual(actual_pod(SPEC)), _all_done((PREP,)))
    assert _runs(p) == [("job.prep", "changed: env, workdir")]
    uploads = {"prep": "digest-2"}
    p = make_plan(
        desired(SPEC, jobs=(PREP,)),
        actual(actual_pod(SPEC)),
        _all_done((PREP,)),
        job_uploads=uploads,
    )
    assert _runs(p) == [("job.prep", "changed: upload")]


def test_a_new_image_changes_the_jobs_and_updates_the_pod():
    spec = replace(SPEC, image="img:2")
    p = make_plan(desired(spec, jobs=(PREP,)), actual(actual_pod(SPEC)), _all_done((PREP,)))
    assert [(c.address, c.action) for c in p.actionable] == [
        ("pod.trainer", Action.UPDATE),
        ("job.prep", Action.RUN_JOB),
    ]
    assert p.actionable[1].reason == "changed: image"
    assert p.actionable[1].depends_on == ("pod.trainer",)


def test_failed_unfinished_always_and_never():
    rec = _all_done()
    jobs = dict(rec.jobs)
    jobs["prep"] = replace(jobs["prep"], status=JobStatus.FAILED, exit_code=3)
    jobs["other"] = replace(jobs["other"], status=JobStatus.RUNNING)
    p = make_plan(desired(SPEC, jobs=JOBS), actual(actual_pod(SPEC)), replace(rec, jobs=jobs))
    assert _runs(p) == [
        ("job.prep", "failed before (exit 3)"),
        ("job.train", "needs job.prep, which runs"),
        ("job.eval", "needs job.train, which runs"),
        ("job.other", "unfinished: podctl stopped while it ran; reattach or collect it"),
    ]
    always = replace(OTHER, rerun=Rerun.ALWAYS)
    never = replace(PREP, rerun=Rerun.NEVER, run="prep v2")
    p = make_plan(
        desired(SPEC, jobs=(never, always)), actual(actual_pod(SPEC)), _all_done((PREP, OTHER))
    )
    assert _runs(p) == [("job.other", "rerun: always")]
    assert p.warnings == (
        "job.other has `rerun: always`: every apply (and every reconcile round) runs it again",
    )


def test_a_replaced_pod_reruns_its_jobs_but_not_never_ones():
    spec = replace(SPEC, gpu_count=2)
    jobs = (PREP, replace(OTHER, rerun=Rerun.NEVER))
    p = make_plan(desired(spec, jobs=jobs), actual(actual_pod(SPEC)), _all_done(jobs, SPEC))
    assert p.changes[0].action is Action.REPLACE
    assert _runs(p) == [("job.prep", "its pod is replaced: a new disk")]
    assert p.changes[1].pod_id is None  # the new pod's id is known only once created


def test_after_jobs_terminate_runs_then_terminates_and_totals_end_at_zero():
    spec = replace(SPEC, after_jobs=AfterJobs.TERMINATE)
    p = make_plan(desired(spec, jobs=(PREP, TRAIN)), actual(), lockfile())
    assert [(c.address, c.action.value) for c in p.actionable] == [
        ("pod.trainer", "create"),
        ("job.prep", "run-job"),
        ("job.train", "run-job"),
        ("pod.trainer", "terminate"),
    ]
    assert p.actionable[-1].depends_on == ("job.prep", "job.train")
    assert p.total_cost_after == 0.0
    done = make_plan(
        desired(spec, jobs=(PREP, TRAIN)),
        actual(),
        lockfile(jobs={"prep": succeeded(PREP, spec), "train": succeeded(TRAIN, spec)}),
    )
    assert not done.has_changes  # converged: not brought back just to sit idle


def test_destroy_and_targets_leave_jobs_out():
    p = make_plan(
        desired(SPEC, jobs=JOBS),
        actual(actual_pod(SPEC)),
        lockfile(("trainer", record(SPEC))),
        destroy=True,
    )
    assert _runs(p) == []
    two = pod_spec("two")
    other = JobSpec(name="o2", pod="two", run="x")
    p = make_plan(
        desired(SPEC, two, jobs=(PREP, other)),
        actual(actual_pod(SPEC), actual_pod(two, pod_id="p2")),
        lockfile(("trainer", record(SPEC)), ("two", record(two, pod_id="p2"))),
        targets=frozenset({"pod.two"}),
    )
    assert _runs(p) == [("job.o2", "new")]


def test_a_secret_changes_the_fingerprint_but_never_shows():
    job = replace(PREP, env={"TOKEN": SecretRef("HF_TOKEN")})
    a = make_plan(
        desired(SPEC, jobs=(job,)),
        actual(actual_pod(SPEC)),
        lockfile(),
        secrets={"HF_TOKEN": "s3cret-value-1"},
    )
    b = make_plan(
        desired(SPEC, jobs=(job,)),
        actual(actual_pod(SPEC)),
        lockfile(),
        secrets={"HF_TOKEN": "s3cret-value-2"},
    )
    assert a.changes[-1].fingerprint != b.changes[-1].fingerprint
    assert "s3cret" not in json.dumps(plan_to_dict(a))
