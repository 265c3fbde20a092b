"""Saved plans, the lock, secrets and the API key, through `podctl` against the sandbox."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from reconciler.lockfile import LockfileStore
from tests.e2e.conftest import SECRET, Podctl


def test_first_saved_plan_applies_once_then_is_stale(
    podctl: Podctl, tmp_path: Path, monkeypatch
) -> None:
    plan_file = tmp_path / "plan.json"
    made = podctl("plan", "-out", "plan.json", "-f", "stack/podctl.yaml")  # relative paths
    assert made.code == 0, made.err
    assert oct(plan_file.stat().st_mode & 0o777) == "0o600"
    monkeypatch.chdir(podctl.folder)  # the saved plan names its spec files absolutely
    applied = podctl("apply", str(plan_file))
    assert applied.code == 0, applied.out + applied.err
    assert len(podctl.pods()) == 1
    podctl.operations.clear()
    again = podctl("apply", str(plan_file))
    assert again.code == 1
    assert "is stale" in again.err
    assert podctl.mutations() == {}
    assert len(podctl.pods()) == 1


def test_saved_plan_refused_when_a_pod_moved(podctl: Podctl, tmp_path: Path) -> None:
    assert podctl("apply", "-y", "-f", str(podctl.spec)).code == 0
    podctl.write(mode="b")
    plan_file = tmp_path / "plan.json"
    assert podctl("plan", "-out", str(plan_file), "-f", str(podctl.spec)).code == 0
    (pod,) = podctl.pods()
    podctl.sb.gql(
        "mutation($id: String!) { podStop(input: {podId: $id}) { id } }", {"id": pod["id"]}
    )
    podctl.operations.clear()
    refused = podctl("apply", str(plan_file))
    assert refused.code == 1
    assert "is stale" in refused.err and "  - " in refused.err
    assert podctl.mutations() == {}


def test_second_concurrent_apply_is_refused_naming_the_holder(podctl: Podctl) -> None:
    store = LockfileStore(podctl.lockfile, command="podctl apply (test holder)")
    with store.lock():
        result = podctl("apply", "-y", "-f", str(podctl.spec))
    assert result.code == 1
    assert f"locked by pid {os.getpid()}" in result.err
    assert "podctl apply (test holder)" in result.err
    assert podctl.pods() == [] and podctl.mutations() == {}


def test_concurrent_apply_refused_in_a_real_process(podctl: Podctl) -> None:
    store = LockfileStore(podctl.lockfile, command="podctl apply (holder)")
    env = {**os.environ}
    with store.lock():
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "reconciler",
                "apply",
                "-y",
                "--sandbox",
                "-f",
                str(podctl.spec),
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
    assert proc.returncode == 1, proc.stderr
    assert "is locked by pid" in proc.stderr and "Traceback" not in proc.stderr
    assert podctl.pods() == []


def test_secrets_and_key_never_written_or_printed(podctl: Podctl, tmp_path: Path) -> None:
    plan_file = tmp_path / "plan.json"
    podctl("plan", "-out", str(plan_file), "-f", str(podctl.spec))
    podctl("plan", "--format", "json", "-f", str(podctl.spec))
    podctl("plan", "--format", "markdown", "-f", str(podctl.spec))
    podctl("apply", "-y", "-f", str(podctl.spec))
    podctl.write(mode="b")
    podctl("apply", "-y", "-f", str(podctl.spec))
    podctl("status", "-f", str(podctl.spec))
    podctl("status", "--format", "json", "-f", str(podctl.spec))
    texts = [*podctl.outputs, plan_file.read_text(), podctl.lockfile.read_text()]
    for text in texts:
        assert SECRET not in text
        assert podctl.sb.key not in text


def test_missing_api_key_is_a_clear_error(podctl: Podctl) -> None:
    result = podctl("plan", "-f", str(podctl.spec), sandbox=False)
    assert result.code == 1
    assert "RUNPOD_API_KEY" in result.err and ".runpod/config.toml" in result.err
    assert "Traceback" not in result.err


def test_missing_from_env_variable_is_named(podctl: Podctl, monkeypatch) -> None:
    monkeypatch.delenv("E2E_TOKEN")
    result = podctl("plan", "-f", str(podctl.spec))
    assert result.code == 1
    assert "E2E_TOKEN" in result.err and "podctl.yaml" in result.err


def test_status_shows_the_pod(podctl: Podctl) -> None:
    assert podctl("apply", "-y", "-f", str(podctl.spec)).code == 0
    (pod,) = podctl.pods()
    result = podctl("status", "-f", str(podctl.spec))
    assert result.code == 0, result.err
    line = next(x for x in result.out.splitlines() if x.startswith("box"))
    assert "running" in line and "RUNNING" in line and pod["id"] in line


def test_state_list_show_rm_and_import(podctl: Podctl) -> None:
    assert podctl("apply", "-y", "-f", str(podctl.spec)).code == 0
    (pod,) = podctl.pods()
    listed = podctl("state", "list", "-f", str(podctl.spec))
    assert listed.out.strip() == f"pod.box\t{pod['id']}"
    shown = podctl("state", "show", "pod.box", "-f", str(podctl.spec))
    assert f"pod_id:      {pod['id']}" in shown.out
    removed = podctl("state", "rm", "pod.box", "-f", str(podctl.spec))
    assert removed.code == 0 and "box" not in podctl.recorded()["pods"]
    imported = podctl("import", "pod.box", pod["id"], "-f", str(podctl.spec))
    assert imported.code == 0, imported.err
    assert podctl.recorded()["pods"]["box"]["pod_id"] == pod["id"]
    bad = podctl("state", "show", "job.x", "-f", str(podctl.spec))
    assert bad.code == 2 and "pod.NAME" in bad.err


def test_lock_timeout_waits_for_the_holder(podctl: Podctl) -> None:
    import threading

    store = LockfileStore(podctl.lockfile, command="podctl apply (brief holder)")
    store.acquire()
    timer = threading.Timer(0.3, store.release)
    timer.start()
    try:
        result = podctl("--lock-timeout", "30s", "apply", "-y", "-f", str(podctl.spec))
    finally:
        timer.join()
    assert result.code == 0, result.err
    assert len(podctl.pods()) == 1


def test_apply_and_plan_in_real_processes(podctl: Podctl) -> None:
    env = {**os.environ}
    base = [sys.executable, "-m", "reconciler"]
    spec = str(podctl.spec)
    applied = subprocess.run(
        [*base, "apply", "-y", "--sandbox", "-f", spec],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert applied.returncode == 0, applied.stderr
    plan = subprocess.run(
        [*base, "plan", "--detailed-exitcode", "--sandbox", "-f", spec],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert len(podctl.pods()) == 1


def test_ctrl_c_mid_apply_loses_no_pod(podctl: Podctl) -> None:
    import json
    import signal
    import time

    podctl.sb.faults({"start_delay": 60})  # the pod never gets ready: apply waits
    try:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "reconciler",
                "apply",
                "-y",
                "--sandbox",
                "-f",
                str(podctl.spec),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ},
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if podctl.lockfile.exists() and json.loads(podctl.lockfile.read_text())["pods"]:
                break
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=30)
    finally:
        podctl.sb.faults({"start_delay": 0})
    assert proc.returncode == 130, err
    (pod,) = podctl.pods()
    assert podctl.recorded()["pods"]["box"]["pod_id"] == pod["id"]
    podctl.operations.clear()
    again = podctl("apply", "-y", "-f", str(podctl.spec))
    assert again.code == 0, again.err
    assert "CreatePod" not in podctl.mutations()
    assert [p["id"] for p in podctl.pods()] == [pod["id"]]
