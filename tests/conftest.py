"""Test-session hooks: one line at the end when the PostgreSQL tests were skipped (and why)."""

from __future__ import annotations

import pytest

from tests.postgres import SKIP_REASON


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    skipped = terminalreporter.stats.get("skipped", [])
    count = sum(1 for report in skipped if SKIP_REASON in str(report.longrepr))
    if count:
        terminalreporter.write_line(f"{count} PostgreSQL test(s) skipped: {SKIP_REASON}.")
