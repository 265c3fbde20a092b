"""Jobs end to end through `podctl` on the sandbox: exactly once, reruns, failures, keys."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest

from tests.e2e.conftest import Podctl

REPO = Path(__file__).resolve().parents[2]

BATCH = """\
version: 1
stack: e2e
pods:
  box:
    image: img:1
    gpu: {{type: NVIDIA RTX A4000}}
    ports: [22/tcp]
    after_jobs: {after}
jobs:
  prep:
    pod: box
    upload: [{{from: ./data, to: /workspace/data}}]
    run: echo prep-{prep} >> {ledger}/prep; cat /workspace/data/in.txt > /workspace/prepped
  train:
    pod: box
    needs: [prep]
    run: echo train >> {ledger}/train; echo trained; cp /workspace/prepped /workspace/model
  eval:
    pod: box
    needs: [train]
    run: >-
      echo eval >> {ledger}/eval; {fail}mkdir -p /workspace/out;
      cp /workspace/model /workspace/out/
    download: [{{from: /workspace/out, to: ./results/}}]
  side:
    pod: box
    run: echo side >> {ledger}/side
"""


def _write(podctl: Podctl, *, prep: str = "v1", fail: bool = False, after: str = "keep") -> Path:
    ledger = podctl.folder / "ledger"
    ledger.mkdir(exist_ok=True)
    data = podctl.folder / "data"
    data.mkdir(exist_ok=True)
    if not (data / "in.txt").exists():
        (data / "in.txt").write_text("input-1\n")
    podctl.write(
        text=BATCH.format(ledger=ledger, prep=prep, fail="exit 7; " if fail else "", after=after)
    )
    return ledger


def _runs(ledger: Path) -> dict[str, int]:
    return {
        p.name: len(p.read_text().splitlines()) for p in sorted(ledger.iterdir()) if p.is_file()
    }


@pytest.fixture(autouse=True)
def _needs_ssh() -> None:
    if shutil.which("ssh") is None and sys.platform != "linux":
        pytest.skip("needs a POSIX host")


def test_batch_runs_each_job_once_then_nothing(podctl: Podctl) -> None:
    ledger = _write(podctl)
    r = podctl("apply", "-y", "-f", str(podctl.spec))
    assert r.code == 0, r.out + r.err
    assert _runs(ledger) == {"eval": 1, "prep": 1, "side": 1, "train": 1}
    assert (podctl.folder / "results" / "model").read_text() == "input-1\n"
    assert "[train] trained" in r.out + r.err
    jobs = podctl.recorded()["jobs"]
    assert {n: j["status"] for n, j in jobs.items()} == dict.fromkeys(jobs, "succeeded")
    assert len(jobs) == 4
    pod_id = jobs["prep"]["pod_id"]
    assert podctl.recorded()["host_keys"][pod_id]  # pinned on first use

    before = podctl.mutations()
    r = podctl("plan", "--detailed-exitcode", "-f", str(podctl.spec))
    assert r.code == 0, r.out
    r = podctl("apply", "-y", "-f", str(podctl.spec))
    assert r.code == 0 and "No changes." in r.out
    assert podctl.mutations() == before
    assert _runs(ledger) == {"eval": 1, "prep": 1, "side": 1, "train": 1}

    # status shows the ledger; logs come from the pod
    r = podctl("status", "--format", "json", "--file", str(podctl.spec))
    status = json.loads(r.out)
    assert [(j["job"], j["status"], j["exit_code"]) for j in status["jobs"]] == [
        ("prep", "succeeded", 0),
        ("train", "succeeded", 0),
        ("eval", "succeeded", 0),
        ("side", "succeeded", 0),
    ]
    r = podctl("logs", "train", "--file", str(podctl.spec))
    assert r.code == 0 and r.out == "trained\n", r
    r = podctl("logs", "train", "-F", "--file", str(podctl.spec))  # the run ended: it returns
    assert r.code == 0 and r.out == "trained\n", r


def test_changing_one_job_reruns_it_and_its_dependants_only(podctl: Podctl) -> None:
    ledger = _write(podctl)
    assert podctl("apply", "-y", "-f", str(podctl.spec)).code == 0
    _write(podctl, prep="v2")
    r = podctl("plan", "-f", str(podctl.spec))
    assert "* run-job job.prep on pod.box" in r.out and "changed: run" in r.out
    assert "needs job.prep, which runs" in r.out and "job.side" not in r.out
    r = podctl("apply", "-y", "-f", str(podctl.spec))
    assert r.code == 0, r.out + r.err
    assert _runs(ledger) == {"eval": 2, "prep": 2, "side": 1, "train": 2}
    # the upload did not change: it was skipped
    assert "1 unchanged" in r.out + r.err


def test_a_failing_job_exits_1_skips_its_dependants_and_others_complete(podctl: Podctl) -> None:
    ledger = _write(podctl, fail=True, after="terminate")
    r = podctl("apply", "-y", "-f", str(podctl.spec))
    assert r.code == 1
    assert "failed  job.eval (run-job): exit 7 after 1 try; log: podctl logs eval" in r.out
    assert "skipped pod.box (terminate)" in r.out  # after_jobs waits for every job
    assert _runs(ledger) == {"eval": 1, "prep": 1, "side": 1, "train": 1}
    assert len(podctl.pods()) == 1  # not terminated: a job failed
    r = podctl("plan", "-f", str(podctl.spec))
    assert "failed before (exit 7)" in r.out
    _write(podctl, after="terminate")
    r = podctl("apply", "-y", "-f", str(podctl.spec))
    assert r.code == 0, r.out + r.err
    assert _runs(ledger) == {"eval": 2, "prep": 1, "side": 1, "train": 1}
    assert podctl.pods() == []  # terminated once every job succeeded
    r = podctl("plan", "--detailed-exitcode", "-f", str(podctl.spec))
    assert r.code == 0, r.out  # converged: not brought back to sit idle
    r = podctl("logs", "train", "--file", str(podctl.spec))
    assert r.code == 0 and "trained" in r.out and "saved at the last apply" in r.err


def test_a_changed_host_key_is_refused(podctl: Podctl) -> None:
    _write(podctl)
    assert podctl("apply", "-y", "-f", str(podctl.spec)).code == 0
    data = podctl.recorded()
    pod_id = data["jobs"]["prep"]["pod_id"]
    import asyncssh

    other = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().strip()
    data["host_keys"][pod_id] = [other]
    podctl.lockfile.write_text(json.dumps(data))
    _write(podctl, prep="v3")
    r = podctl("apply", "-y", "-f", str(podctl.spec))
    assert r.code == 1
    assert "host key" in r.out.lower() and "changed" in r.out.lower(), r.out


@pytest.mark.both_apis
def test_kill_9_mid_job_then_reapply_reattaches_and_runs_it_once(
    podctl: Podctl, tmp_path: Path
) -> None:
    ledger = podctl.folder / "ledger"
    ledger.mkdir()
    podctl.write(
        text=f"""\
version: 1
stack: e2e
pods:
  box:
    image: img:1
    gpu: {{type: NVIDIA RTX A4000}}
    ports: [22/tcp]
jobs:
  slow:
    pod: box
    run: echo started; sleep 3; echo run >> {ledger}/slow; echo finished
"""
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = tmp_path / "apply.out"
    with out.open("wb") as sink:
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
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if podctl.lockfile.exists() and "slow" in podctl.recorded().get("jobs", {}):
                break
            time.sleep(0.05)
        assert proc.poll() is None, out.read_text()  # still running: the kill lands mid-job
        time.sleep(0.5)  # the job has started on the pod
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert podctl.lockfile.exists(), out.read_text()
    assert podctl.recorded()["jobs"]["slow"]["status"] == "running"
    # the job goes on without podctl: `logs -f` follows it on the pod to its end
    r = podctl("logs", "slow", "-F", "--file", str(podctl.spec))
    assert r.code == 0 and r.out == "started\nfinished\n", r
    r = podctl("plan", "-f", str(podctl.spec))
    assert "unfinished" in r.out
    r = podctl("apply", "-y", "-f", str(podctl.spec))
    assert r.code == 0, r.out + r.err
    assert "reattaching" in r.out + r.err or "collecting" in r.out + r.err
    # its duration is the run's own (the ledger's), not the time this apply spent collecting it
    record = podctl.recorded()["jobs"]["slow"]
    ran = (
        datetime.fromisoformat(record["finished_at"]) - datetime.fromisoformat(record["started_at"])
    ).total_seconds()
    assert ran >= 3 and f"done    job.slow (run-job): succeeded in {ran:g}s" in r.out, r.out
    time.sleep(0.2)
    assert _runs(ledger) == {"slow": 1}
    assert podctl.recorded()["jobs"]["slow"]["status"] == "succeeded"
    assert podctl("plan", "--detailed-exitcode", "-f", str(podctl.spec)).code == 0


@pytest.mark.both_apis
def test_the_quickstart_end_to_end(podctl: Podctl) -> None:
    """The README's first command: pod up, jobs run, result downloaded, pod gone; then a no-op."""
    spec = podctl.folder / "quickstart.yaml"
    spec.write_text((REPO / "specs" / "quickstart.yaml").read_text())
    r = podctl("apply", "-y", "-f", str(spec))
    assert r.code == 0, r.out + r.err
    assert "Apply complete: 4 done, 0 failed, 0 skipped." in r.out
    results = podctl.folder / "results" / "quickstart"
    assert (results / "hello.txt").read_text().startswith("hello from ")
    assert (results / "count.txt").read_text().split()[0] == str(
        len((results / "hello.txt").read_bytes())
    )
    assert [p for p in podctl.pods() if p["name"].startswith("quickstart-")] == []
    before = podctl.mutations()
    r = podctl("apply", "-y", "-f", str(spec))
    assert r.code == 0 and "No changes." in r.out
    assert podctl.mutations() == before
    status = json.loads(podctl("status", "--format", "json", "--file", str(spec)).out)
    assert [(p["pod"], p["desired"], p["actual"]) for p in status["pods"]] == [
        ("box", "absent (after jobs)", "none")
    ]
    r = podctl("logs", "hello", "--file", str(spec))
    assert r.code == 0 and r.out.startswith("hello from "), r
    r = podctl("logs", "count", "--file", str(spec))  # it printed nothing: an empty log
    assert r.code == 0 and r.out == "", r


def test_a_job_secret_reaches_the_job_and_nothing_else(podctl: Podctl) -> None:
    from tests.e2e.conftest import SECRET

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
  use:
    pod: box
    env: {TOKEN: {from_env: E2E_TOKEN}}
    run: 'test -n "$TOKEN" && echo "token of ${#TOKEN} chars"'
"""
    )
    r = podctl("apply", "-y", "-f", str(podctl.spec))
    assert r.code == 0, r.out + r.err
    assert f"[use] token of {len(SECRET)} chars" in r.out
    r2 = podctl("status", "--format", "json", "--file", str(podctl.spec))
    texts = [*podctl.outputs, r2.out, podctl.lockfile.read_text()]
    texts += [p.read_text() for p in podctl.folder.rglob("*.log")]
    assert all(SECRET not in t for t in texts)


def test_the_spec_can_name_the_ssh_key_and_the_flag_wins(podctl: Podctl) -> None:
    text = """\
version: 1
stack: e2e
ssh_key: ./keys/mine
pods:
  box:
    image: img:1
    gpu: {type: NVIDIA RTX A4000}
    ports: [22/tcp]
jobs:
  hi:
    pod: box
    run: echo hi
"""
    podctl.write(text=text)
    r = podctl("apply", "-y", "-f", str(podctl.spec))
    assert r.code == 0, r.out + r.err
    key = podctl.folder / "keys" / "mine"
    assert key.exists() and (key.stat().st_mode & 0o777) == 0o600
    assert not list(podctl.folder.glob("*.id_ed25519"))
    # another key for the same pod is refused by its sshd: the flag really wins
    other = podctl.folder / "other_key"
    podctl.write(text=text.replace("echo hi", "echo hi again"))
    r = podctl("apply", "-y", "--ssh-key", str(other), "-f", str(podctl.spec))
    assert r.code == 1 and other.exists()
    assert "refused" in (r.out + r.err).lower(), r.out + r.err


def test_a_saved_plan_runs_its_jobs_and_is_refused_once_an_upload_changed(podctl: Podctl) -> None:
    ledger = _write(podctl)
    saved = podctl.folder / "plan.json"
    assert podctl("plan", "-out", str(saved), "-f", str(podctl.spec)).code == 0
    (podctl.folder / "data" / "in.txt").write_text("input-2\n")  # after the plan was made
    r = podctl("apply", str(saved))
    assert r.code == 1 and "job.prep: the job changed since the plan was made" in r.err, r
    assert not ledger.exists() or _runs(ledger) == {}
    assert podctl("plan", "-out", str(saved), "-f", str(podctl.spec)).code == 0
    r = podctl("apply", str(saved))
    assert r.code == 0, r.out + r.err
    assert _runs(ledger) == {"eval": 1, "prep": 1, "side": 1, "train": 1}
    assert (podctl.folder / "results" / "model").read_text() == "input-2\n"
