"""Progress as a user meets it: JSON-lines events, "still running" lines, the final summary."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.e2e.conftest import Podctl

SPEC = """\
version: 1
stack: e2e
pods:
  box:
    image: img:1
    gpu: {{type: NVIDIA RTX A4000}}
    ports: [22/tcp]
    after_jobs: {after}
jobs:
  train:
    pod: box
    run: echo training; sleep {sleep}; echo trained; {fail}
  evaluate:
    pod: box
    needs: [train]
    run: echo evaluated
"""


def _write(podctl: Podctl, *, sleep: float = 0, fail: bool = False, after: str = "keep") -> None:
    podctl.write(text=SPEC.format(sleep=sleep, fail="exit 3" if fail else "true", after=after))


def _events(out: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert all(isinstance(e, dict) and "event" in e and "ts" in e for e in lines), out
    return lines


def test_apply_format_json_is_typed_json_lines_ending_with_the_summary(podctl: Podctl) -> None:
    _write(podctl)
    r = podctl("apply", "-y", "--format", "json", "-f", str(podctl.spec))
    assert r.code == 0, r.out + r.err
    events = _events(r.out)  # every stdout line is a JSON object: no prose
    kinds = [e["event"] for e in events]
    assert kinds[0] == "plan" and kinds[-1] == "summary"
    assert events[0]["has_changes"] is True
    for kind in ("pod_creating", "pod_created", "pod_ready", "job_started", "change_finished"):
        assert kind in kinds, kinds
    created = next(e for e in events if e["event"] == "pod_created")
    assert created["address"] == "pod.box" and created["pod_id"]
    assert created["gpu_type_id"] == "NVIDIA RTX A4000" and created["cloud"] == "secure"
    logs = [e["line"] for e in events if e["event"] == "log" and e["address"] == "job.train"]
    assert logs == ["training", "trained"]
    waits = {(e["address"], tuple(e["on"])) for e in events if e["event"] == "waiting"}
    assert ("job.train", ("pod.box",)) in waits
    assert any(a == "job.evaluate" and "job.train" in on for a, on in waits), waits
    finished = {e["address"]: e for e in events if e["event"] == "change_finished"}
    assert finished["job.train"]["outcome"] == "done"
    assert finished["job.train"]["exit_code"] == 0
    assert finished["job.train"]["duration_s"] >= 0
    assert finished["pod.box"]["action"] == "create"
    summary = events[-1]
    assert summary["ok"] is True and summary["counts"] == {"done": 3, "failed": 0, "skipped": 0}
    assert summary["changed"] == {"create": 1, "run-job": 2}
    assert {"duration_s", "cost_per_hr_before", "cost_per_hr_after"} <= set(summary)
    assert r.err.count("\n") <= 1  # at most the sandbox's notice; the events are on stdout


def test_a_failed_job_event_has_its_exit_code_and_the_skip_says_why(podctl: Podctl) -> None:
    _write(podctl, fail=True)
    r = podctl("apply", "-y", "--format", "json", "-f", str(podctl.spec))
    assert r.code == 1, r.out + r.err
    events = _events(r.out)
    finished = {e["address"]: e for e in events if e["event"] == "change_finished"}
    assert finished["job.train"]["outcome"] == "failed"
    assert finished["job.train"]["exit_code"] == 3
    assert finished["job.train"]["message"] == "exit 3 after 1 try; log: podctl logs train"
    assert finished["job.evaluate"]["outcome"] == "skipped"
    assert finished["job.evaluate"]["message"] == "skipped because job.train did not succeed"
    assert events[-1]["event"] == "summary" and events[-1]["ok"] is False


def test_text_progress_says_failed_once_and_tries_in_words(podctl: Podctl) -> None:
    _write(podctl, fail=True)
    r = podctl("apply", "-y", "-f", str(podctl.spec))
    assert r.code == 1
    assert "  job.train: failed: exit 3 after 1 try; log: podctl logs train\n" in r.out
    assert "failed: failed" not in r.out and "try(s)" not in r.out
    assert "  failed  job.train (run-job): exit 3 after 1 try; log: podctl logs train\n" in r.out


def test_without_a_terminal_a_long_job_says_it_still_runs(
    podctl: Podctl, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PODCTL_HEARTBEAT_INTERVAL", "0.2")
    _write(podctl, sleep=1.5)
    r = podctl("apply", "-y", "-f", str(podctl.spec))
    assert r.code == 0, r.out + r.err
    still = [line for line in r.out.splitlines() if "still" in line]
    assert any(line.startswith("  job.train still running, ") for line in still), r.out
    # the job it needs is running: evaluate is waiting, not "still running"
    assert not any(line.startswith("  job.evaluate still") for line in still), r.out


def test_the_summary_lists_every_change_with_the_time_and_the_cost(podctl: Podctl) -> None:
    _write(podctl, after="stop")
    r = podctl("apply", "-y", "-f", str(podctl.spec))
    assert r.code == 0, r.out + r.err
    summary = r.out[r.out.index("Apply complete:") :]
    lines = summary.splitlines()
    assert lines[0] == "Apply complete: 4 done, 0 failed, 0 skipped."
    assert lines[1].startswith("  done    pod.box (create): landed on RTX A4000 (secure), pod ")
    assert lines[2].startswith("  done    job.train (run-job): succeeded in ")
    assert lines[3].startswith("  done    job.evaluate (run-job): succeeded in ")
    assert lines[4].startswith("  done    pod.box (stop): stopped ")  # every change has a line
    assert lines[5] == "Changed: 1 created, 1 stopped, 2 jobs run"
    assert lines[6].startswith("Took ") and "; cost $" in lines[6] and " after (" in lines[6]


def test_an_update_only_apply_lists_its_update(podctl: Podctl) -> None:
    podctl.write()
    assert podctl("apply", "-y", "-f", str(podctl.spec)).code == 0
    podctl.write(mode="b")  # an env change: updated in place
    r = podctl("apply", "-y", "-f", str(podctl.spec))
    assert r.code == 0, r.out + r.err
    assert "Apply complete: 1 done, 0 failed, 0 skipped.\n  done    pod.box (update): updated " in (
        r.out
    )
    assert "Changed: 1 updated\n" in r.out


def test_reconcile_format_json_rounds_and_events_are_json_lines(podctl: Podctl) -> None:
    podctl.write()
    r = podctl("reconcile", "--once", "--format", "json", "-f", str(podctl.spec))
    assert r.code == 0, r.out + r.err
    lines = [json.loads(line) for line in r.out.splitlines()]
    rounds = [e for e in lines if e["event"] == "round"]
    assert len(rounds) == 1 and rounds[0]["outcome"] == "changed"
    assert "pod_created" in [e["event"] for e in lines]


def _job_lines(out: str) -> dict[str, list[str]]:
    table = out[out.index("JOB ") :].splitlines()[1:]
    return {line.split()[0]: line.split() for line in table if line.strip()}


def test_status_shows_a_job_blocked_by_a_failed_dependency(podctl: Podctl) -> None:
    _write(podctl, fail=True)
    assert podctl("apply", "-y", "-f", str(podctl.spec)).code == 1
    r = podctl("status", "-f", str(podctl.spec))
    assert r.code == 0, r.out + r.err
    jobs = _job_lines(r.out)
    assert jobs["train"][:4] == ["train", "box", "failed", "3"]
    assert " ".join(jobs["evaluate"]).endswith("blocked - - blocked by job.train (failed)")
    assert list(jobs) == ["train", "evaluate"]  # in run order
    data = json.loads(podctl("status", "--format", "json", "-f", str(podctl.spec)).out)
    evaluate = next(j for j in data["jobs"] if j["job"] == "evaluate")
    assert evaluate["status"] == "blocked" and evaluate["note"] == "blocked by job.train (failed)"


def test_status_shows_a_changed_job_pending_with_the_plans_reason(podctl: Podctl) -> None:
    _write(podctl)
    assert podctl("apply", "-y", "-f", str(podctl.spec)).code == 0
    podctl.write(text=podctl.spec.read_text().replace("echo evaluated", "echo evaluated v2"))
    jobs = _job_lines(podctl("status", "-f", str(podctl.spec)).out)
    assert jobs["evaluate"][2] == "pending" and jobs["evaluate"][-2:] == ["changed:", "run"]
    assert jobs["train"][2] == "succeeded"


def test_a_jobs_duration_is_the_same_in_the_summary_status_and_lockfile(
    podctl: Podctl,
) -> None:
    _write(podctl, sleep=1.2)
    r = podctl("apply", "-y", "--format", "json", "-f", str(podctl.spec))
    assert r.code == 0, r.out + r.err
    summary = _events(r.out)[-1]
    train = next(x for x in summary["results"] if x["address"] == "job.train")
    record = podctl.recorded()["jobs"]["train"]
    from datetime import datetime

    ledger = (
        datetime.fromisoformat(record["finished_at"]) - datetime.fromisoformat(record["started_at"])
    ).total_seconds()
    assert train["duration_s"] == ledger
    assert train["message"] == f"succeeded in {ledger:g}s"
    jobs = _job_lines(podctl("status", "-f", str(podctl.spec)).out)
    assert jobs["train"][4] == f"{ledger:g}s"


def test_a_change_that_waits_for_a_stopped_pod_is_pending_in_plan(podctl: Podctl) -> None:
    assert podctl("apply", "-y", "-f", str(podctl.spec)).code == 0
    podctl.write(state="stopped")
    assert podctl("apply", "-y", "-f", str(podctl.spec)).code == 0
    podctl.write(state="stopped", mode="b")  # an env change: RunPod edits only running pods
    r = podctl("plan", "--detailed-exitcode", "-f", str(podctl.spec))
    assert r.code == 2, r.out + r.err
    assert "No changes" not in r.out
    assert "~ waiting pod.box (" in r.out and '~ env.MODE: "a" -> "b"' in r.out
    assert "Nothing to apply now: the changes above wait until their pod runs again." in r.out
    assert "1 waiting for a stopped pod to run." in r.out
    podctl.write(state="stopped")  # back as it is: nothing pending
    r = podctl("plan", "--detailed-exitcode", "-f", str(podctl.spec))
    assert r.code == 0 and "No changes" in r.out, r.out


def test_the_first_plans_stopped_storage_is_the_one_after_apply(podctl: Podctl) -> None:
    _write(podctl, after="stop")
    first = podctl("plan", "-f", str(podctl.spec)).out
    assert podctl("apply", "-y", "-f", str(podctl.spec)).code == 0
    after = podctl("plan", "-f", str(podctl.spec)).out
    storage = [line for line in after.splitlines() if "stopped storage" in line]
    assert storage and "; stopped storage $0.0055/h ($4.00/month)" in storage[0], after
    assert "; stopped storage $0.0055/h ($4.00/month)" in first, first


def test_money_is_formatted_one_way_in_plan_summary_and_status(podctl: Podctl) -> None:
    _write(podctl)
    r = podctl("apply", "-y", "-f", str(podctl.spec))
    assert "gpu: RTX A4000 (secure $0.32/h)" in r.out and "$0.32/h after" in r.out
    status = podctl("status", "-f", str(podctl.spec)).out
    assert " $0.32/h " in status and "$0.320" not in status
