"""Reconcile replicas: two `podctl reconcile` loops on one stack; one leads, one waits, and
the standby takes over within an interval of a kill -9 of the leader, running no job twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import IO

import pytest

from tests.e2e.conftest import Podctl
from tests.postgres import PASSWORD, pg_server, pg_url

__all__ = ["pg_server", "pg_url"]

REPO = Path(__file__).resolve().parents[2]
SPEC = """\
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
    run: echo start >> LEDGER/slow; sleep 3; echo end >> LEDGER/slow; echo finished
"""
INTERVAL_S = 2.0


def _wait(what: str, test: Callable[[], bool], *logs: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if test():
            return
        time.sleep(0.05)
    shown = "\n".join(f"--- {p.name}:\n{p.read_text()[-3000:]}" for p in logs if p.exists())
    raise AssertionError(f"timed out waiting for {what}\n{shown}")


def _loop(folder: Path, url: str, out: IO[bytes], err: IO[bytes]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "reconciler", "--sandbox", "--format", "json", "--state", url,
         "reconcile", "--interval", f"{INTERVAL_S:g}s", "-f", str(folder / "podctl.yaml")],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=out,
        stderr=err,
    )  # fmt: skip


def _rounds(path: Path) -> list[dict[str, object]]:
    lines = [json.loads(t) for t in path.read_text().splitlines() if t.startswith("{")]
    return [line for line in lines if line.get("event") == "round"]


def test_the_standby_takes_over_from_a_killed_leader_and_runs_nothing_twice(
    podctl: Podctl, pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from reconciler.ssh import ensure_stack_key

    key = tmp_path / "team_key"
    ensure_stack_key(key)
    monkeypatch.setenv("PODCTL_SSH_KEY", str(key))
    ledger = tmp_path / "ledger"
    ledger.mkdir()
    folders = []
    for name in ("a", "b"):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "podctl.yaml").write_text(SPEC.replace("LEDGER", str(ledger)))
        folders.append(folder)
    outs = [tmp_path / f"{n}.out" for n in "ab"]
    errs = [tmp_path / f"{n}.err" for n in "ab"]
    with (
        outs[0].open("wb") as out_a, errs[0].open("wb") as err_a,
        outs[1].open("wb") as out_b, errs[1].open("wb") as err_b,
    ):  # fmt: skip
        a = _loop(folders[0], pg_url, out_a, err_a)
        b: subprocess.Popen[bytes] | None = None
        try:
            _wait(
                "the leader's job to start",
                lambda: (ledger / "slow").exists() or a.poll() is not None,
                *outs,
                *errs,
            )
            assert a.poll() is None, errs[0].read_text()
            b = _loop(folders[1], pg_url, out_b, err_b)
            _wait("the standby's first round", lambda: bool(_rounds(outs[1])), *outs, *errs)
            (waiting, *_) = _rounds(outs[1])
            assert waiting["role"] == "standby" and waiting["outcome"] == "standby"
            assert f"pid {a.pid} on " in str(waiting["leader"])
            assert (ledger / "slow").read_text() == "start\n"  # the leader is mid-job
            a.send_signal(signal.SIGKILL)
            a.wait()
            killed = time.time()
            _wait(
                "the standby to lead and collect the job",
                lambda: any(r["role"] == "leader" for r in _rounds(outs[1])),
                *outs,
                *errs,
            )
            took = next(r for r in _rounds(outs[1]) if r["role"] == "leader")
            started = datetime.fromisoformat(str(took["ts"])).timestamp()
            # within one interval of the kill (ts is to the second; the poll step is 0.1 s)
            assert started - killed <= INTERVAL_S + 1.5, (started - killed, took)
            assert took["outcome"] == "changed", took
            _wait("the job's end", lambda: "end" in (ledger / "slow").read_text())
            _wait("a converged round", lambda: _rounds(outs[1])[-1]["outcome"] == "converged")
        finally:
            for proc in (a, b):
                if proc is not None and proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
                    try:
                        proc.wait(timeout=30)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait()
    assert (ledger / "slow").read_text() == "start\nend\n"  # ran once, across the takeover
    assert b is not None and b.returncode == 0, errs[1].read_text()
    assert len(podctl.pods()) == 1
    leader_rounds = [r for r in _rounds(outs[1]) if r["role"] == "leader"]
    assert all(r["outcome"] in ("changed", "converged") for r in leader_rounds), leader_rounds
    plan = podctl(
        "plan", "--detailed-exitcode", "--state", pg_url, "-f", str(folders[1] / "podctl.yaml")
    )
    assert plan.code == 0, plan.out + plan.err
    for path in [*outs, *errs]:
        assert PASSWORD not in path.read_text()


def test_text_lines_say_who_leads_and_who_waits(podctl: Podctl, tmp_path: Path) -> None:
    """Two loops on one lockfile (one host): the second waits, and says so in each line."""
    with subprocess.Popen(
        [sys.executable, "-c", HOLD_LEAD, str(podctl.lockfile)],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as holder:
        assert holder.stdout is not None and holder.stdout.readline() == "leading\n"
        waits = podctl("reconcile", "--once", "-f", str(podctl.spec))
        holder.kill()
    assert waits.code == 1
    assert waits.out.startswith(f"round 1 (standby): waiting: pid {holder.pid} on ")
    assert "(podctl reconcile (replica)) since " in waits.out
    assert podctl.pods() == []  # the standby changed nothing
    leads = podctl("reconcile", "--once", "-f", str(podctl.spec))
    assert leads.code == 0 and leads.out == "round 1 (leader): 1 change: 1 done, 0 failed\n"


HOLD_LEAD = """
import sys
from pathlib import Path
from reconciler.state import StateSettings, open_leadership
settings = StateSettings(Path(sys.argv[1]), stack="e2e", command="podctl reconcile (replica)")
lead = open_leadership(settings)
assert lead.try_lead() is None
print("leading", flush=True)
sys.stdin.read()
"""
