"""benchmarks.report: each benchmark rewrites only its own section of BENCHMARKS.md."""

from __future__ import annotations

from pathlib import Path

from benchmarks.report import HEADER, TIMING_HEADERS, record, table, timing_row, verdict


def test_table_and_timing_rows() -> None:
    rows = [timing_row("start", [0.2, 0.3, 0.9], verdict(0.3, 1.0, "1 s"))]
    rows.append(timing_row("query", [0.25], verdict(0.25, 0.2, "200 ms")))
    assert table(TIMING_HEADERS, rows) == (
        "| measurement | median | max    | target            |\n"
        "|-------------|--------|--------|-------------------|\n"
        "| start       | 300 ms | 900 ms | <= 1 s: met       |\n"
        "| query       | 250 ms | 250 ms | <= 200 ms: MISSED |"
    )


def test_record_replaces_only_its_own_section(tmp_path: Path) -> None:
    path = tmp_path / "BENCHMARKS.md"
    record("one", "One", "| a |", path=path)
    record("two", "Two", "| b |", note="Measured twice.", path=path)
    record("one", "One", "| c |", path=path)
    text = path.read_text()
    assert text.startswith(HEADER)
    assert text.count("<!-- bench:one -->") == 1 and "| a |" not in text and "| c |" in text
    assert text.index("<!-- bench:one -->") < text.index("<!-- bench:two -->")
    assert "`python -m benchmarks.two`_\nMeasured twice.\n\n| b |\n<!-- /bench:two -->" in text


def test_jobs_benchmark_specs_load(tmp_path: Path) -> None:
    from benchmarks.jobs import chain_spec, job_seconds
    from reconciler.spec import load_spec

    desired = load_spec([chain_spec(tmp_path / "c", "c", 3, chained=True, parallel=True)])
    assert [(n, j.needs, j.parallel) for n, j in desired.jobs.items()] == [
        ("j000", (), True),
        ("j001", ("j000",), True),
        ("j002", ("j001",), True),
    ]
    assert list(desired.pods) == ["box"]
    assert job_seconds("  done    job.move: succeeded in 4.2s; uploaded 1 file(s)") == 4.2
