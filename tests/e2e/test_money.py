"""Money safety through `podctl` on the sandbox: stopped_ttl, budgets and on_failure."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.e2e.conftest import Podctl
from tests.e2e.test_reconcile_loop import wait_for

REPO = Path(__file__).resolve().parents[2]

STOPPED = """\
version: 1
stack: e2e
pods:
  box:
    image: img:1
    gpu: {{type: NVIDIA RTX A4000}}
    ports: [8888/http]
    state: stopped
    stopped_ttl: 2s
{extra}"""


def _plan(podctl: Podctl) -> tuple[int, str]:
    r = podctl("plan", "--detailed-exitcode", "-f", str(podctl.spec))
    return r.code, r.out + r.err


def _wait_past(when: datetime) -> None:
    left = (when - datetime.now(UTC)).total_seconds()
    if left > 0:
        time.sleep(left + 0.2)


def _running_then_stopped(podctl: Podctl, extra: str = "") -> None:
    podctl.write(text=STOPPED.format(extra=extra).replace("state: stopped", "state: running"))
    assert podctl("apply", "-y", "-f", str(podctl.spec)).code == 0
    podctl.write(text=STOPPED.format(extra=extra))


def test_a_pod_left_stopped_past_stopped_ttl_is_terminated(podctl: Podctl) -> None:
    _running_then_stopped(podctl)
    r = podctl("apply", "-y", "-f", str(podctl.spec))
    assert r.code == 0, r.out + r.err
    (pod,) = podctl.pods()
    assert pod["desiredStatus"] == "EXITED"
    stopped_at = datetime.fromisoformat(podctl.recorded()["pods"]["box"]["stopped_at"])
    code, out = _plan(podctl)
    assert code == 0, out  # not yet
    _wait_past(stopped_at + timedelta(seconds=2))
    code, out = _plan(podctl)
    assert code == 2, out
    assert "terminate" in out and "stopped_ttl 2s reached: stopped since" in out, out
    r = podctl("apply", "-y", "-f", str(podctl.spec))
    assert r.code == 0, r.out + r.err
    assert podctl.pods() == []
    # a stopped pod is not created again just to be stopped
    code, out = _plan(podctl)
    assert code == 0, out
    assert "box" not in podctl.recorded()["pods"]


def test_a_pod_stopped_outside_podctl_counts_from_that_stop(podctl: Podctl) -> None:
    podctl.write(text=STOPPED.format(extra="").replace("state: stopped", "state: running"))
    assert podctl("apply", "-y", "-f", str(podctl.spec)).code == 0
    (pod,) = podctl.pods()
    podctl.write(text=STOPPED.format(extra=""))
    podctl.sb.gql(
        "mutation($id: String!) { podStop(input: {podId: $id}) { id } }", {"id": pod["id"]}
    )
    seen = datetime.now(UTC).replace(microsecond=0)
    _wait_past(seen + timedelta(seconds=3))
    code, out = _plan(podctl)  # RunPod's lastStatusChange says when it stopped
    assert code == 2 and "stopped_ttl 2s reached" in out, out


def test_a_protected_pod_past_stopped_ttl_is_an_error(podctl: Podctl) -> None:
    _running_then_stopped(podctl, "    protect: true\n")
    assert podctl("apply", "-y", "-f", str(podctl.spec)).code == 0
    stopped_at = datetime.fromisoformat(podctl.recorded()["pods"]["box"]["stopped_at"])
    _wait_past(stopped_at + timedelta(seconds=2))
    r = podctl("apply", "-y", "-f", str(podctl.spec))
    assert r.code == 1, r.out + r.err
    assert "pod.box is protected (protect: true) and this plan would terminate it" in r.err
    assert "stopped_ttl 2s reached" in r.err
    assert [p["desiredStatus"] for p in podctl.pods()] == ["EXITED"]


BUDGET = """\
version: 1
stack: e2e
budget: {{max_usd_per_hour: {limit}}}
pods:
  a:
    image: img:1
    gpu: {{type: NVIDIA RTX A4000}}
    ports: [8888/http]
  b:
    image: img:1
    gpu: {{type: NVIDIA RTX A4000}}
    ports: [8888/http]
    state: {b_state}
"""


def test_a_plan_over_the_hourly_budget_fails_naming_the_pods(podctl: Podctl) -> None:
    podctl.write(text=BUDGET.format(limit=0.5, b_state="running"))
    over = (
        "the stack would cost $0.64/h after this plan, over budget.max_usd_per_hour $0.50/h: "
        "pod.a $0.32/h, pod.b $0.32/h"
    )
    code, out = _plan(podctl)
    assert code == 1 and over in out, out
    r = podctl("apply", "-y", "-f", str(podctl.spec))
    assert r.code == 1 and over in r.err and "--ignore-budget" in r.err, r.out + r.err
    assert podctl.pods() == []  # nothing was created
    # within budget: one pod
    podctl.write(text=BUDGET.format(limit=0.5, b_state="stopped"))
    r = podctl("apply", "-y", "-f", str(podctl.spec))
    assert r.code == 0, r.out + r.err
    assert [p["desiredStatus"] for p in podctl.pods()] == ["RUNNING"]
    # bringing b up would pass the budget; --ignore-budget goes past it once, and says so
    podctl.write(text=BUDGET.format(limit=0.5, b_state="running"))
    r = podctl("apply", "-y", "-f", str(podctl.spec))
    assert r.code == 1, r.out + r.err
    r = podctl("apply", "-y", "--ignore-budget", "-f", str(podctl.spec))
    assert r.code == 0, r.out + r.err
    assert "--ignore-budget: this apply goes past it" in r.out + r.err
    assert [p["desiredStatus"] for p in podctl.pods()] == ["RUNNING", "RUNNING"]
    # over budget with nothing to change: a warning, not an error (the plan raises nothing)
    code, out = _plan(podctl)
    assert code == 0 and "already so before this plan" in out, out


FAILING = """\
version: 1
stack: e2e
pods:
  box:
    image: img:1
    gpu: {{type: NVIDIA RTX A4000}}
    ports: [22/tcp]
    after_jobs: terminate
{extra}jobs:
  train:
    pod: box
    run: echo starting; exit 3
"""


def test_a_failed_job_stops_its_pod_by_default_when_after_jobs_ends_it(podctl: Podctl) -> None:
    podctl.write(text=FAILING.format(extra=""))
    r = podctl("apply", "-y", "-f", str(podctl.spec))
    assert r.code == 1, r.out + r.err
    (pod,) = podctl.pods()
    assert pod["desiredStatus"] == "EXITED"  # the GPUs stop billing, the volume is kept
    assert "stopped: job.train failed (on_failure: stop)" in r.out, r.out
    assert "Left running: none of the stack's pods bills for GPUs." in r.out, r.out


def test_on_failure_keep_leaves_the_pod_running_and_the_summary_names_it(podctl: Podctl) -> None:
    podctl.write(text=FAILING.format(extra="    on_failure: keep\n"))
    r = podctl("apply", "-y", "-f", str(podctl.spec))
    assert r.code == 1, r.out + r.err
    (pod,) = podctl.pods()
    assert pod["desiredStatus"] == "RUNNING"
    assert f"Left running (billing):\n  pod.box ({pod['id']}): $0.32/h\n  total: $0.32/h" in r.out


def test_on_failure_terminate_ends_the_pod(podctl: Podctl) -> None:
    podctl.write(text=FAILING.format(extra="    on_failure: terminate\n"))
    r = podctl("apply", "-y", "-f", str(podctl.spec))
    assert r.code == 1, r.out + r.err
    assert podctl.pods() == []
    assert "terminated: job.train failed (on_failure: terminate)" in r.out, r.out


def test_ctrl_c_during_apply_names_the_pods_left_running_and_what_to_run(
    podctl: Podctl, tmp_path: Path
) -> None:
    podctl.write(
        text="""\
version: 1
stack: e2e
pods:
  box:
    image: img:1
    gpu: {type: NVIDIA RTX A4000}
    ports: [22/tcp]
jobs:
  slow:
    pod: box
    run: echo started; sleep 30
"""
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = tmp_path / "apply.out"
    argv = [sys.executable, "-m", "reconciler", "apply", "-y", "--sandbox", "-f", str(podctl.spec)]
    with out.open("wb") as sink:
        proc = subprocess.Popen(argv, env=env, stdout=sink, stderr=subprocess.STDOUT)
        try:
            wait_for(
                lambda: podctl.lockfile.exists() and "slow" in podctl.recorded().get("jobs", {}),
                timeout=120,
            )
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    text = out.read_text()
    assert proc.returncode == 130, text
    (pod,) = podctl.pods()
    assert "Interrupted: the changes under way stopped" in text, text
    assert f"Left running (billing):\n  pod.box ({pod['id']}): $0.32/h\n  total: $0.32/h" in text
    spec = str(podctl.spec)
    assert f"`podctl apply -f {spec}` to finish" in text, text
    assert f"`podctl destroy -f {spec}` to tear the stack down" in text, text
