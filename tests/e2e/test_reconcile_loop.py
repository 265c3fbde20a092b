"""`podctl reconcile` as a real process: it heals a pod terminated meanwhile, SIGTERM exits 0."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from reconciler.lockfile import LockfileStore
from reconciler.sandbox import control
from tests.e2e.conftest import SECRET, Podctl


def start_loop(podctl: Podctl, tmp_path: Path, *extra: str) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "PODCTL_SANDBOX_DIR": str(podctl.sb.data_dir),
        "PODCTL_POLL_INTERVAL": "0.02",
        "E2E_TOKEN": SECRET,
        "HOME": str(tmp_path / "home"),
    }
    env.pop("RUNPOD_API_KEY", None)
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "reconciler",
            "reconcile",
            "--sandbox",
            "-f",
            str(podctl.spec),
            *extra,
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(predicate: object, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(predicate) and predicate():
            return
        time.sleep(0.1)
    raise AssertionError("timed out waiting for the loop")


def test_loop_heals_a_terminated_pod_then_sigterm_exits_0(podctl: Podctl, tmp_path: Path) -> None:
    loop = start_loop(podctl, tmp_path, "--interval", "1s", "--format", "json")
    try:
        wait_for(lambda: [p["desiredStatus"] for p in podctl.pods()] == ["RUNNING"])
        (first,) = podctl.pods()
        podctl.sb.gql(
            "mutation($id: String!) { podTerminate(input: {podId: $id}) }", {"id": first["id"]}
        )
        wait_for(lambda: [p["id"] != first["id"] for p in podctl.pods()] == [True])
        (second,) = podctl.pods()
        wait_for(lambda: podctl.recorded()["pods"]["box"]["pod_id"] == second["id"])
        time.sleep(1.5)  # at least one quiet round
        loop.send_signal(signal.SIGTERM)
        out, err = loop.communicate(timeout=30)
    finally:
        if loop.poll() is None:
            loop.kill()
            loop.communicate()
    assert loop.returncode == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    rounds = [line for line in lines if line["event"] == "round"]
    assert [r["round"] for r in rounds] == list(range(1, len(rounds) + 1))
    outcomes = [r["outcome"] for r in rounds]
    assert outcomes[0] == "changed" and outcomes.count("changed") == 2, outcomes
    assert outcomes[-1] == "converged" and "error" not in outcomes
    assert "SIGTERM" in err and "Traceback" not in err and SECRET not in out + err
    recorded = LockfileStore(podctl.lockfile).read()  # valid, and names the healed pod
    assert recorded.pods["box"].pod_id == second["id"]
    assert [p["id"] for p in podctl.pods()] == [second["id"]]


def test_plans_work_while_the_loop_runs_and_sigint_exits_0(podctl: Podctl, tmp_path: Path) -> None:
    """The lock is held only during a round: plan works between rounds, the loop keeps going."""
    loop = start_loop(podctl, tmp_path, "--interval", "1s")
    try:
        wait_for(lambda: podctl.lockfile.exists() and len(podctl.pods()) == 1)
        plans = [podctl("plan", "-f", str(podctl.spec), "--lock-timeout", "5s") for _ in range(3)]
        loop.send_signal(signal.SIGINT)
        out, err = loop.communicate(timeout=30)
    finally:
        if loop.poll() is None:
            loop.kill()
            loop.communicate()
    assert [p.code for p in plans] == [0, 0, 0], [p.err for p in plans]
    assert loop.returncode == 0, err
    assert out.splitlines()[0] == "round 1 (leader): 1 change: 1 done, 0 failed"


def test_a_second_signal_exits_130_at_once(podctl: Podctl, tmp_path: Path) -> None:
    podctl.sb.faults({"latency_ms": 4000})
    before = control.request(podctl.sb.info, "GET", "/_sandbox/status")["requests"]["total"]
    loop = start_loop(podctl, tmp_path, "--interval", "1s")
    try:
        wait_for(  # the first round's request is in flight: the handlers are installed
            lambda: (
                control.request(podctl.sb.info, "GET", "/_sandbox/status")["requests"]["total"]
                > before
            )
        )
        started = time.monotonic()
        loop.send_signal(signal.SIGTERM)
        time.sleep(0.2)
        loop.send_signal(signal.SIGTERM)
        _out, err = loop.communicate(timeout=30)
        elapsed = time.monotonic() - started
    finally:
        podctl.sb.faults({"latency_ms": 0})
        if loop.poll() is None:
            loop.kill()
            loop.communicate()
    assert loop.returncode == 130, err
    assert elapsed < 2.5  # not after the 4 s request
    assert "Interrupted." in err and "Traceback" not in err
