"""CLI usage errors of plan/apply/destroy/state: exit 2 and a message saying how to fix it."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.cli import run


@pytest.fixture
def in_empty_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RUNPOD_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.runpod/config.toml
    return tmp_path


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["plan"], "No spec given and none found: pass -f PATH"),
        (["apply", "-y", "-f", "x.yaml", "--target", "job.a"], "--target 'job.a': write pod.NAME"),
        (
            ["apply", "-y", "-f", "x.yaml", "--timeout", "soon"],
            "--timeout 'soon' is not a duration",
        ),
        (["apply", "-y", "-f", "x.yaml", "--parallelism", "0"], "--parallelism must be at least 1"),
        (["apply", "plan.json", "-f", "x.yaml"], "A saved plan carries its spec files"),
        (["status", "-f", "x.yaml", "--format", "markdown"], "--format markdown is for"),
        (["state", "show", "job.x", "--lockfile", "l.lock"], "'job.x' is not a pod address"),
        (["--lock-timeout", "later", "plan", "-f", "x.yaml"], "--lock-timeout 'later'"),
    ],
)
def test_usage_errors_exit_2(in_empty_dir: Path, capsys, argv: list[str], message: str) -> None:
    (in_empty_dir / "x.yaml").write_text("version: 1\nstack: s\npods: {}\n")
    assert run(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_state_list_without_a_lockfile_says_so(in_empty_dir: Path, capsys) -> None:
    assert run(["state", "list", "--lockfile", "none.lock"]) == 1
    assert "There is no lockfile at none.lock yet" in capsys.readouterr().err


def test_default_spec_is_podctl_yaml(in_empty_dir: Path, capsys) -> None:
    (in_empty_dir / "podctl.yaml").write_text("version: 1\nstack: s\npods: {}\n")
    assert run(["plan"]) == 1  # it got as far as the API key
    assert "No RunPod API key" in capsys.readouterr().err
