"""The apply summary with its plan (every change, time, cost) and progress lines: goldens."""

from __future__ import annotations

import json

from reconciler import events as ev
from reconciler.model import CloudType
from reconciler.plans import (
    Action,
    ApplyResult,
    Change,
    ChangeResult,
    FieldChange,
    Outcome,
    Plan,
)
from reconciler.render.progress import PlainProgress, elapsed, event_json, event_line
from reconciler.render.summary import summary_dict, summary_text
from tests.planner_fixtures import RTX4090
from tests.test_render_plan import check_golden


def _c(address: str, action: Action, before: float, after: float, **kw: object) -> Change:
    pod = address.removeprefix("pod.").removeprefix("job.")
    return Change(address, action, "test", pod, cost_before=before, cost_after=after, **kw)  # type: ignore[arg-type]


ENV = FieldChange("env.MODE", "a", "b")


def _plan() -> Plan:
    return Plan(
        stack="demo",
        changes=(
            _c("pod.new", Action.CREATE, 0.0, 0.69),
            _c("pod.edit", Action.UPDATE, 0.5, 0.5, pod_id="pe", fields=(ENV,)),
            _c("pod.back", Action.RESUME, 0.0, 0.4, pod_id="pb", fields=(ENV,)),
            _c("pod.rest", Action.STOP, 0.3, 0.013699, pod_id="pr"),  # 50 GB of volume, stopped
            _c("pod.gone", Action.TERMINATE, 0.2, 0.0, pod_id="pg"),
            _c("job.train", Action.RUN_JOB, 0.0, 0.0, job="train"),
            _c("pod.full", Action.CREATE, 0.0, 1.0),
        ),
        total_cost_before=1.0,
        total_cost_after=3.29,
    )


def _result() -> ApplyResult:
    return ApplyResult(
        stack="demo",
        results=(
            ChangeResult(
                "pod.new", Action.CREATE, Outcome.DONE, "", "pn", RTX4090, CloudType.SECURE, 30.0
            ),
            ChangeResult("pod.edit", Action.UPDATE, Outcome.DONE, "updated", "pe"),
            ChangeResult("pod.back", Action.RESUME, Outcome.DONE, "resumed", "pb"),
            ChangeResult("pod.rest", Action.STOP, Outcome.DONE, "stopped", "pr"),
            ChangeResult("pod.gone", Action.TERMINATE, Outcome.DONE, "terminated", "pg"),
            ChangeResult(
                "job.train",
                Action.RUN_JOB,
                Outcome.FAILED,
                "exit 3 after 2 tries; log: podctl logs train",
                "pn",
                exit_code=3,
            ),
            ChangeResult("pod.full", Action.CREATE, Outcome.FAILED, "no capacity on any fallback"),
        ),
    )


def test_the_summary_lists_every_change_counts_an_update_in_a_resume_and_the_cost() -> None:
    text = summary_text(_result(), color=False, plan=_plan(), took_s=272.4)
    check_golden("summary_every_change.txt", text)
    lines = text.splitlines()
    assert lines[0] == "Apply complete: 5 done, 2 failed, 0 skipped."
    # the head, a line per change (7 done or not), what is left running (it failed), two totals
    assert len(lines) == 1 + 7 + 1 + 2
    assert "  done    pod.back (resume + update): resumed and updated in place pb" in lines
    # a stop ends at what the stopped pod bills: its volume, not $0.00/h
    assert (
        "  done    pod.rest (stop): stopped pr; now $0.0137/h ($10.00/month, the stopped pod's "
        "volume)"
    ) in lines
    assert lines[-2] == "Changed: 1 created, 2 updated, 1 resumed, 1 stopped, 1 terminated"
    # pod.full failed: its $1.00/h is not in the cost after
    assert lines[-1] == "Took 4m32s; cost $1.00/h before, $2.29/h after (+$1.29/h)."


def test_the_summary_json_has_the_kinds_the_time_the_cost_and_exit_codes() -> None:
    data = summary_dict(_result(), _plan(), 272.4)
    check_golden("summary_every_change.json", json.dumps(data, indent=2) + "\n")
    stops = [r for r in data["results"] if r["action"] == "stop"]  # type: ignore[attr-defined]
    assert [r["storage_cost_per_hr"] for r in stops] == [0.013699]
    assert data["changed"] == {
        "create": 1,
        "update": 2,
        "resume": 1,
        "stop": 1,
        "terminate": 1,
    }
    assert data["cost_per_hr_before"] == 1.0 and data["cost_per_hr_after"] == 2.29
    results = data["results"]
    assert isinstance(results, list) and results[5]["exit_code"] == 3


EVENTS: tuple[ev.Event, ...] = (
    ev.PodCreating("pod.gpu", "NVIDIA RTX A4000", "secure"),
    ev.NoCapacity("pod.gpu", "NVIDIA RTX A4000", "secure"),
    ev.PodCreating("pod.gpu", "NVIDIA RTX A5000", "secure"),
    ev.Waiting("job.train", ("pod.gpu",)),
    ev.Waiting("job.evaluate", ("job.train",)),
    ev.StillRunning("pod.gpu", 30.0),
    ev.StillRunning("job.evaluate", 30.0),
    ev.PodCreated("pod.gpu", "p1", "NVIDIA RTX A5000", "secure"),
    ev.PodReady("pod.gpu", "p1", "10.0.0.1:40022"),
    ev.ChangeFinished("pod.gpu", "create", "done", 41.0, "landed", "p1"),
    ev.Transfer("job.train", "upload", "./data", "/workspace/data"),
    ev.JobStarted("job.train", "p1", 1),
    ev.LogLine("job.train", "epoch 1"),
    ev.StillRunning("job.train", 270.0),
    ev.JobRetrying("job.train", "exit 3", 2.0, 1, 1),
    ev.JobStarted("job.train", "p1", 2),
    ev.JobReattached("job.train", "p1", ended=False),
    ev.ChangeFinished("job.train", "run-job", "done", 300.0, "succeeded", "p1", 0),
    ev.ChangeFinished("job.evaluate", "run-job", "failed", 3.0, "exit 3 after 1 try", "p1", 3),
    ev.PodStopping("pod.gpu", "p1"),
    ev.PodStopped("pod.gpu", "p1"),
    ev.PodTerminating("pod.old", "p0", "replace"),
    ev.PodTerminated("pod.old", "p0", already_gone=True),
    ev.Note("pod.gpu", "watchdog armed until 2026-12-02T10:00:00Z"),
    ev.PodResuming("pod.back", "pb"),
    ev.PodUpdating("pod.back", "pb"),
    ev.Transfer("job.train", "download", "/workspace/out", "./results/", True, 3, 2048),
    ev.BatchProgress(
        "job.prompts", done=40, running=32, queued=28, failed=1, total=101, per_s=12.5
    ),
)


def test_plain_progress_lines_golden() -> None:
    progress = PlainProgress()
    lines = [line for e in EVENTS if (line := progress.line(e)) is not None]
    check_golden("progress.txt", "\n".join(lines) + "\n")
    assert "pod.gpu still creating, 30s" in lines
    assert not any(line.startswith("job.evaluate still") for line in lines)  # it waits
    assert "job.train still running, 4m30s" in lines
    assert "job.evaluate waits for job.train" in lines
    assert "job.evaluate: failed: exit 3 after 1 try" in lines


def test_every_event_kind_renders_as_text_and_json() -> None:
    assert {type(e) for e in EVENTS} == set(ev.EVENT_KINDS)
    for e in EVENTS:
        assert event_line(e).strip()
        data = json.loads(event_json(e, "2026-12-01T00:00:00+00:00"))
        assert data["event"] == e.kind and data["address"] == e.address
        assert data["ts"] == "2026-12-01T00:00:00+00:00"


def test_elapsed_reads_as_a_person_would() -> None:
    assert [elapsed(s) for s in (0.4, 59, 60, 270, 3600, 3725)] == [
        "0s",
        "59s",
        "1m00s",
        "4m30s",
        "1h00m",
        "1h02m",
    ]


def test_the_live_block_shows_waits_and_pods_idle_while_another_pods_job_runs() -> None:
    from reconciler.render.live import live_block

    progress = PlainProgress()
    for e in (
        ev.PodCreating("pod.gpu", "NVIDIA RTX A4000", "secure"),
        ev.Waiting("job.train", ("pod.cpu",)),
        ev.Waiting("job.eval", ("pod.gpu", "job.train")),
        ev.ChangeFinished("pod.gpu", "create", "done", 40.0),
        ev.JobStarted("job.train", "p1", 1),
        ev.StillRunning("job.train", 95.0),
        ev.LogLine("job.train", "epoch 2 \x1b[2J"),
    ):
        progress.line(e)
    block = live_block(progress.tracker, 80, 0.69)
    assert block == [
        "pod.gpu    idle, billing, while job.train runs",
        "job.train  running [1m35s elapsed]  | epoch 2 \\x1b[2J",  # escaped: it comes from a pod
        "job.eval   waits for job.train",
        "1 of 3 done; the stack costs $0.69/h",
    ]
    assert all(len(line) <= 30 for line in live_block(progress.tracker, 30, 0.69))
