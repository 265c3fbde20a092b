"""`podctl sandbox start` and `fault` refuse values that would crash or hang it (exit 2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.cli import run


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--port", "-1"], "Invalid value for '--port': -1 is not in the range 0<=x<=65535."),
        (["--port", "70000"], "Invalid value for '--port': 70000 is not in the range 0<=x<=65535."),
        (
            ["--start-delay", "-5"],
            "Invalid value for '--start-delay': -5.0 is not in the range x>=0.",
        ),
        (
            ["--start-delay", "nan"],
            "Invalid value for '--start-delay': 'nan' is not a finite number.",
        ),
        (
            ["--start-delay", "inf"],
            "Invalid value for '--start-delay': 'inf' is not a finite number.",
        ),
        (["--stock", "-1"], "Invalid value for '--stock': -1 is not in the range x>=0."),
    ],
)
def test_sandbox_start_refuses_bad_values(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    data_dir = tmp_path / "sandbox"
    code = run(["sandbox", "start", "--detach", "--data-dir", str(data_dir), *args])
    err = capsys.readouterr().err
    assert code == 2
    assert err.endswith(f"Error: {message}\n")
    assert "Traceback" not in err and "Internal error" not in err
    assert not data_dir.exists()  # nothing was started


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["latency", "nan"], "Invalid value for 'MS': 'nan' is not a finite number."),
        (["latency", "--", "-1"], "Invalid value for 'MS': -1.0 is not in the range x>=0."),
        (
            ["stock", "NVIDIA RTX A4000", "--", "-1"],
            "Invalid value for 'COUNT': -1 is not in the range x>=0.",
        ),
    ],
)
def test_sandbox_fault_refuses_bad_values(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code = run(["sandbox", "fault", *args[:1], "--data-dir", str(tmp_path), *args[1:]])
    err = capsys.readouterr().err
    assert code == 2
    assert err.endswith(f"Error: {message}\n")
