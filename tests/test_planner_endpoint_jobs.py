"""Which endpoint jobs a plan runs, and why: new, unfinished, changed, failed, and requests
that may have run (unknown, lost), which only `rerun: always` sends again."""

from __future__ import annotations

from datetime import UTC, datetime

from reconciler.jobs.endpoint_ledger import DONE, FAILED, PENDING, UNKNOWN, Summary
from reconciler.model import DesiredState, EndpointJobSpec, JobRecord, JobStatus, Lockfile, Rerun
from reconciler.planner.endpoint_jobs import endpoint_job_changes
from reconciler.plans import Action

NOW = datetime(2026, 12, 7, tzinfo=UTC)


def desired(**job: object) -> DesiredState:
    spec = EndpointJobSpec(name="b", inputs=("1", "2", "3"), endpoint_id="ep", batch=True)
    fields = {**spec.__dict__, **job}
    return DesiredState(stack="s", pods={}, jobs={}, endpoint_jobs={"b": EndpointJobSpec(**fields)})


def recorded(status: JobStatus, fingerprint: str = "fp") -> Lockfile:
    record = JobRecord(fingerprint=fingerprint, pod_id="ep", status=status, started_at=NOW)
    return Lockfile(stack="s", jobs={"b": record})


def plan(
    state: DesiredState, lock: Lockfile, summary: Summary, print_: str = "fp"
) -> tuple[list[str], list[str]]:
    found = endpoint_job_changes(state, lock, {"b": print_}, {"b": {}}, {"b": summary}, ())
    assert all(c.action is Action.RUN_JOB and c.pod == "endpoint_id.ep" for c in found.changes)
    return [c.reason for c in found.changes], list(found.warnings)


def test_new_and_converged() -> None:
    assert plan(desired(), Lockfile(stack="s"), Summary(3, {PENDING: 3})) == (["new"], [])
    done = Summary(3, {DONE: 3})
    assert plan(desired(), recorded(JobStatus.SUCCEEDED), done) == ([], [])


def test_unfinished_reattaches_by_id() -> None:
    summary = Summary(3, {DONE: 1, "sent": 2})
    reasons, _ = plan(desired(), recorded(JobStatus.RUNNING), summary)
    assert reasons == [
        "unfinished: podctl stopped while it ran; reattaches to 2 request(s) by id, "
        "not sending them again"
    ]


def test_changed_inputs_keep_done_lines() -> None:
    lock = Lockfile(
        stack="s",
        jobs={
            "b": JobRecord(
                fingerprint="old", pod_id="ep", status=JobStatus.SUCCEEDED, inputs={"input": "x"}
            )
        },
    )
    found = endpoint_job_changes(
        desired(),
        lock,
        {"b": "new"},
        {"b": {"input": "y"}},
        {"b": Summary(3, {DONE: 2, PENDING: 1})},
        (),
    )
    assert [c.reason for c in found.changes] == ["changed: input (2 line(s) already done are kept)"]


def test_unknown_lines_are_not_sent_again_and_the_plan_warns() -> None:
    summary = Summary(3, {DONE: 2, UNKNOWN: 1}, unknown_lines=(3,))
    reasons, warnings = plan(desired(), recorded(JobStatus.FAILED), summary)
    assert reasons == []
    assert warnings == [
        "job.b: line(s) 3 unknown (their /run answer was lost): they may have run, so podctl "
        "does not send them again; `rerun: always` sends them again (they may run twice)"
    ]


def test_failed_lines_are_sent_again_and_rerun_always_says_unknown_may_run_twice() -> None:
    summary = Summary(3, {DONE: 1, FAILED: 1, UNKNOWN: 1}, unknown_lines=(3,))
    reasons, _ = plan(desired(), recorded(JobStatus.FAILED), summary)
    assert reasons == ["failed before: 1 request(s) sent again"]
    reasons, warnings = plan(desired(rerun=Rerun.ALWAYS), recorded(JobStatus.SUCCEEDED), summary)
    assert reasons == [
        "rerun: always; line(s) 3 unknown (their /run answer was lost) are sent again: they may "
        "run twice"
    ]
    assert warnings == []


def test_rerun_never_runs_once() -> None:
    assert plan(
        desired(rerun=Rerun.NEVER), recorded(JobStatus.SUCCEEDED, "old"), Summary(3, {})
    ) == ([], [])
