"""The live view on a real pseudo-terminal: elapsed times that grow, what waits, the summary."""

from __future__ import annotations

import re

import pytest

from tests.e2e.conftest import Podctl
from tests.e2e.test_hostile_terminal import on_a_terminal
from tests.e2e.test_progress import _write


def test_apply_on_a_terminal_redraws_what_runs_and_what_waits(podctl: Podctl) -> None:
    _write(podctl, sleep=3)
    code, screen = on_a_terminal(["apply", "-y", "-f", str(podctl.spec)])
    text = screen.decode()
    assert code == 0, text
    seen = {int(s) for s in re.findall(r"job\.train +running \[(\d+)s elapsed\]", text)}
    assert len(seen) >= 2 and max(seen) >= 2, text  # the elapsed time grew while it ran
    assert re.search(r"job\.evaluate +waits for [^\n]*job\.train", text), text
    assert "\x1b[J" in text  # the block is erased and redrawn in place, not appended
    assert "0 of 3 done; the stack costs $0.00/h" in text  # before the pod is up
    assert "1 of 3 done; the stack costs $0.32/h" in text  # once it runs: its price
    assert "| trained" in text or "| training" in text  # the last log line of the job
    summary = re.sub(r"\x1b\[[0-9;]*m", "", text[text.index("Apply complete") :])
    assert "done    job.train (run-job): succeeded in " in summary
    assert "waits for" not in summary  # the block was erased before the summary


def test_without_a_terminal_there_is_no_redraw(podctl: Podctl) -> None:
    _write(podctl)
    r = podctl("apply", "-y", "-f", str(podctl.spec))
    assert r.code == 0, r.out + r.err
    assert "\x1b[" not in r.out and "elapsed]" not in r.out


def test_reconcile_on_a_terminal_shows_a_round_in_the_live_view(podctl: Podctl) -> None:
    _write(podctl, sleep=3)
    code, screen = on_a_terminal(["reconcile", "--once", "-f", str(podctl.spec)])
    text = screen.decode()
    assert code == 0, text
    seen = {int(s) for s in re.findall(r"job\.train +running \[(\d+)s elapsed\]", text)}
    assert len(seen) >= 2 and max(seen) >= 2, text  # redrawn while the job ran
    assert re.search(r"job\.evaluate +waits for [^\n]*job\.train", text), text
    assert "\x1b[J" in text and "1 of 3 done; the stack costs $0.32/h" in text, text
    after = re.sub(r"\x1b\[[0-9;]*m", "", text[text.index("round 1 (leader): ") :])
    assert after.startswith("round 1 (leader): 3 changes: 3 done, 0 failed"), after
    assert "elapsed]" not in after  # the block was erased before the round's line
    # a converged round draws nothing
    code, screen = on_a_terminal(["reconcile", "--once", "-f", str(podctl.spec)])
    assert code == 0 and b"elapsed]" not in screen, screen
    assert b"round 1 (leader): converged" in screen, screen


def test_reconcile_without_a_terminal_says_a_long_job_still_runs(
    podctl: Podctl, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PODCTL_HEARTBEAT_INTERVAL", "0.2")
    _write(podctl, sleep=1.5)
    r = podctl("reconcile", "--once", "-f", str(podctl.spec))
    assert r.code == 0, r.out + r.err
    assert "\x1b[" not in r.out + r.err and "elapsed]" not in r.out + r.err
    assert any(line.startswith("  job.train still running, ") for line in r.err.splitlines())
    assert r.out.splitlines()[-1].startswith("round 1 (leader): 3 changes: 3 done, 0 failed"), r.out
