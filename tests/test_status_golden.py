"""`podctl status` as a user reads it (text and JSON): pods, jobs and the budget line, golden."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from reconciler.cli import run
from reconciler.workflow.billing import BudgetStatus
from reconciler.workflow.inspect import JobStatusRow, PodStatusRow
from tests.test_render_plan import check_golden

PODS = (
    PodStatusRow(
        "trainer",
        "running",
        "RUNNING",
        "p1",
        "1x RTX 4090",
        0.69,
        3725,
        "10.0.0.1:40022",
        "2026-12-01T12:00:00+00:00",
        5400,
        "armed",
    ),
    PodStatusRow("eval", "stopped (after jobs)", "EXITED", "p2", "1x RTX A6000", 0.0, None, None),
    PodStatusRow("spare", "absent", "none", None, None, None, None, None),
)
JOBS = (
    JobStatusRow("train", "trainer", "succeeded", 0, 30.0, ""),
    JobStatusRow("evaluate", "eval", "pending", None, None, "run changed"),
    JobStatusRow("report", "eval", "blocked", None, None, "blocked by job.evaluate (failed)"),
)


@pytest.mark.parametrize(
    ("budget", "golden"),
    [
        (BudgetStatus(100.0, "stop", 12.345, 3), "status.txt"),
        (BudgetStatus(10.0, "terminate", 10.5, 2), "status_budget_reached.txt"),
        (BudgetStatus(10.0, "stop", None, 0, "403 access denied"), "status_budget_unknown.txt"),
    ],
)
def test_status_text_golden(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    budget: BudgetStatus,
    golden: str,
) -> None:
    def status(_connection: Any, _paths: Any) -> tuple[str, Any, Any, BudgetStatus]:
        return "demo", PODS, JOBS, budget

    monkeypatch.setattr("reconciler.workflow.status", status)
    (tmp_path / "s.yaml").write_text("version: 1\nstack: demo\n")
    assert run(["status", "-f", str(tmp_path / "s.yaml")]) == 0
    check_golden(golden, capsys.readouterr().out)
    assert run(["status", "--format", "json", "-f", str(tmp_path / "s.yaml")]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["budget"] == budget.as_dict()
    assert [p["pod"] for p in data["pods"]] == ["trainer", "eval", "spare"]
