"""Escape sequences from the API or a pod reach a real terminal escaped; podctl's colour stays."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

from tests.e2e.conftest import Podctl

# set the window title, clear the screen, a C1 CSI (colour red), a bell, a bidi override
HOSTILE = "evil\x1b]0;pwned\x07\x1b[2J\x9b31m\x07\u202ex"
SHOWN = b"evil\\x1b]0;pwned\\x07\\x1b[2J\\x9b31m\\x07\\u202ex"
RAW = (b"\x1b]0;pwned", b"\x1b[2J", "\x9b".encode(), b"\x07", "\u202e".encode())


def on_a_terminal(args: list[str], timeout: float = 120) -> tuple[int, bytes]:
    """Run `podctl ARGS --sandbox` with stdout and stderr a pseudo-terminal; the screen's bytes."""
    controller, terminal = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "reconciler", *args, "--sandbox"],
        stdin=subprocess.DEVNULL,
        stdout=terminal,
        stderr=terminal,
        env={**os.environ, "TERM": "xterm-256color"},
    )
    os.close(terminal)
    screen = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([controller], [], [], 1)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO: the last writer closed the terminal
                break
            if not chunk:
                break
            screen += chunk
    finally:
        os.close(controller)
        if proc.poll() is None:
            proc.kill()
    return proc.wait(timeout=30), screen


def _orphan(podctl: Podctl, name: str) -> str:
    """A pod carrying this stack's markers under `name` (so status and plan show the name)."""
    markers = {"PODCTL_STACK": "e2e", "PODCTL_POD": name, "PODCTL_UID": "u-hostile"}
    pod = podctl.sb.create(name=name, env=[{"key": k, "value": v} for k, v in markers.items()])
    return str(pod["id"])


def _assert_escaped(screen: bytes) -> None:
    for raw in RAW:
        assert raw not in screen, (raw, screen)
    assert SHOWN in screen, screen


def test_a_hostile_pod_name_is_shown_escaped_and_the_plan_keeps_its_colour(
    podctl: Podctl,
) -> None:
    _orphan(podctl, HOSTILE)
    code, screen = on_a_terminal(["plan", "-f", str(podctl.spec)])
    assert code == 0, screen
    _assert_escaped(screen)
    assert b"\x1b[1;31m- terminate pod." in screen  # podctl's own colour still works
    assert b"\x1b[1;32m+ create pod.box" in screen
    code, screen = on_a_terminal(["status", "-f", str(podctl.spec)])
    assert code == 0, screen
    _assert_escaped(screen)
    assert b"Traceback" not in screen


def test_json_output_stays_valid_json_with_the_name_in_it(podctl: Podctl) -> None:
    _orphan(podctl, HOSTILE)
    result = podctl("status", "-f", str(podctl.spec), "--format", "json")
    assert result.code == 0, result.err
    assert "\x1b" not in result.out and "\x9b" not in result.out
    names = [row["pod"] for row in json.loads(result.out)["pods"]]
    assert names == ["box", HOSTILE]  # exactly the name, escaped only by JSON itself
    plan = podctl("plan", "-f", str(podctl.spec), "--format", "json")
    addresses = [c["address"] for c in json.loads(plan.out)["changes"]]
    assert f"pod.{HOSTILE}" in addresses


JOB_SPEC = """\
version: 1
stack: e2e
pods:
  box:
    image: img:1
    gpu: {type: NVIDIA RTX A4000}
    ports: [22/tcp]
jobs:
  show:
    pod: box
    run: printf 'before \\033]0;pwned\\007\\033[2J \\302\\2331m \\010\\177 after\\n'
"""


def test_a_job_log_line_with_escapes_is_shown_escaped(podctl: Podctl) -> None:
    podctl.write(text=JOB_SPEC)
    code, screen = on_a_terminal(["apply", "-y", "-f", str(podctl.spec)])
    assert code == 0, screen
    line = b"[show] before \\x1b]0;pwned\\x07\\x1b[2J \\x9b1m \\x08\\x7f after"
    assert line in screen, screen
    for raw in (b"\x1b]0;pwned", b"\x1b[2J", "\x9b".encode(), b"\x07", b"\x08", b"\x7f"):
        assert raw not in screen, (raw, screen)
    assert b"\x1b[32mdone   \x1b[0m" in screen  # the summary's own colour
    code, screen = on_a_terminal(["logs", "show", "--file", str(podctl.spec)])
    assert code == 0, screen
    assert b"before \\x1b]0;pwned\\x07\\x1b[2J \\x9b1m \\x08\\x7f after" in screen, screen
    assert b"\x1b]0;pwned" not in screen


def test_podctl_logs_into_a_file_keeps_the_pods_bytes(podctl: Podctl, tmp_path: Path) -> None:
    podctl.write(text=JOB_SPEC)
    assert podctl("apply", "-y", "-f", str(podctl.spec)).code == 0
    result = podctl("logs", "show", "--file", str(podctl.spec))
    assert result.code == 0, result.err
    assert "before \x1b]0;pwned\x07" in result.out  # not a terminal: the log as the pod wrote it


def test_an_api_error_message_with_escapes_is_printed_escaped(podctl: Podctl, monkeypatch) -> None:
    from reconciler.backends.runpod_graphql.client import RunPodClient
    from reconciler.errors import ApiError

    async def hostile(self: RunPodClient, document: str, *rest: object) -> None:
        raise ApiError(f"RunPod says {HOSTILE}")

    monkeypatch.setattr(RunPodClient, "_post", hostile)
    result = podctl("status", "-f", str(podctl.spec))
    assert result.code == 1
    assert result.err.splitlines()[-1] == f"Error: RunPod says {SHOWN.decode()}"
    for raw in RAW:
        assert raw.decode() not in result.err
