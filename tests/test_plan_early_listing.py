"""`podctl plan` requests the pod list while it reads the spec: errors keep their order."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.cli import run


@pytest.fixture
def no_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RUNPOD_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.runpod/config.toml
    return tmp_path


def test_a_bad_spec_is_reported_before_a_missing_api_key(no_key: Path, capsys) -> None:
    (no_key / "bad.yaml").write_text("version: 1\nstack: s\npods:\n  a: {image: 5}\n")
    assert run(["plan", "-f", "bad.yaml"]) == 1
    err = capsys.readouterr().err
    assert "bad.yaml" in err and "image" in err
    assert "No RunPod API key" not in err and "Traceback" not in err


def test_a_missing_from_env_value_is_reported_before_a_missing_api_key(
    no_key: Path, capsys
) -> None:
    spec = (
        "version: 1\nstack: s\npods:\n  a:\n    image: img\n"
        "    gpu: {type: NVIDIA RTX A4000, count: 1}\n"
        "    env: {TOKEN: {from_env: PODCTL_TEST_UNSET_TOKEN}}\n"
    )
    (no_key / "s.yaml").write_text(spec)
    assert run(["plan", "-f", "s.yaml"]) == 1
    err = capsys.readouterr().err
    assert "PODCTL_TEST_UNSET_TOKEN" in err and "No RunPod API key" not in err


def test_a_good_spec_without_api_key_says_so(no_key: Path, capsys) -> None:
    (no_key / "s.yaml").write_text("version: 1\nstack: s\npods: {}\n")
    assert run(["plan", "-f", "s.yaml"]) == 1
    err = capsys.readouterr().err
    assert "No RunPod API key" in err and "Traceback" not in err
