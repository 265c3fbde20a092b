"""`podctl sandbox start/status/env/stop/reset` and `control.ensure_running`."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import httpx

from reconciler.cli import run
from reconciler.sandbox import control, layout


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_cli_start_status_env_stop(tmp_path: Path, capsys):
    data_dir = tmp_path / "sbx"
    opt = ["--data-dir", str(data_dir)]
    assert run(["sandbox", "status", *opt]) == 1
    assert run(["sandbox", "start", "--detach", "--start-delay", "0", *opt]) == 0
    try:
        out = capsys.readouterr().out
        info = control.find_running(data_dir)
        assert info is not None and info.url in out
        assert _mode(data_dir / layout.INFO_FILE) == 0o600
        assert _mode(data_dir / layout.KEY_FILE) == 0o600
        assert run(["sandbox", "start", "--detach", *opt]) == 1  # one per data dir
        assert run(["sandbox", "env", *opt]) == 0
        env = capsys.readouterr().out
        assert f"export RUNPOD_API_BASE_URL={info.url} RUNPOD_API_KEY={info.api_key}" in env
        assert run(["sandbox", "status", *opt]) == 0
        assert f'"pid": {info.pid}' in capsys.readouterr().out
        assert run(["sandbox", "reset", *opt]) == 0
    finally:
        assert run(["sandbox", "stop", *opt]) == 0
    assert "Stopped the sandbox" in capsys.readouterr().out
    assert control.find_running(data_dir) is None
    assert not (data_dir / layout.INFO_FILE).exists()
    assert run(["sandbox", "env", *opt]) == 1


def test_ensure_running_starts_once_and_says_so(tmp_path: Path, capsys, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert layout.default_data_dir() == tmp_path / "cache" / "podctl" / "sandbox"
    first = control.ensure_running()
    try:
        assert "started a local RunPod sandbox" in capsys.readouterr().err
        second = control.ensure_running()
        assert second == first
        assert "using the local RunPod sandbox" in capsys.readouterr().err
        resp = httpx.post(
            first.url + "/graphql",
            json={"query": "{ myself { id } }"},
            headers={"Authorization": f"Bearer {first.api_key}"},
        )
        assert resp.status_code == 200
        assert first.env()["RUNPOD_API_KEY"] == layout.api_key(first.data_dir)
    finally:
        control.stop(first.data_dir)
    assert not os.path.exists(first.data_dir / layout.INFO_FILE)


def test_foreground_start_and_stop(tmp_path: Path):
    import subprocess
    import sys
    import time

    data_dir = tmp_path / "fg"
    proc = subprocess.Popen(
        [sys.executable, "-m", "reconciler", "sandbox", "start", "--data-dir", str(data_dir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 15
        while control.find_running(data_dir) is None:
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        assert run(["sandbox", "stop", "--data-dir", str(data_dir)]) == 0
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        assert proc.stderr is not None
        proc.stderr.close()
    assert _mode(data_dir) == 0o700


def test_concurrent_ensure_running_shares_one_server(tmp_path: Path):
    from concurrent.futures import ThreadPoolExecutor

    data_dir = tmp_path / "race"
    try:
        with ThreadPoolExecutor(3) as pool:
            infos = list(
                pool.map(lambda _: control.ensure_running(data_dir, announce=False), [0] * 3)
            )
        assert len({i.pid for i in infos}) == 1
        assert len({i.api_key for i in infos}) == 1
    finally:
        control.stop(data_dir)
