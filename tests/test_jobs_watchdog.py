"""The on-pod watchdog script, run locally: armed once, calls the API with curl/wget/python3."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from reconciler.errors import JobError
from reconciler.jobs.watchdog import arm_script, parse_armed

KEY = "pod-key-Zk39xQ"
POD = "abc123pod"
TOOLS = (
    "sh", "mkdir", "cat", "kill", "grep", "setsid", "mv", "tr", "sed", "head", "date",
    "dirname", "sleep", "rm", "rmdir", "printf",
)  # fmt: skip


class Api:
    """RunPod's two routes for a pod-scoped key: REST v2's pod action (refused with 403 when
    `v2_refuses`, as an unknown key permission would be) and GraphQL."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.v2_refuses = False
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                api.calls.append(
                    {
                        "path": self.path,
                        "auth": self.headers.get("authorization"),
                        "body": json.loads(body),
                    }
                )
                status, answer = 200, b'{"data": {"podTerminate": null}}'
                if self.path.startswith("/v2/"):
                    status, answer = 200, b'{"id": "%s", "status": "EXITED"}' % POD.encode()
                    if api.v2_refuses:
                        status = 403
                        answer = b'{"title":"Forbidden","status":403,"detail":"access denied"}'
                    elif json.loads(body) == {"action": "terminate"}:
                        status, answer = 204, b""
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/graphql"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def api() -> Iterator[Api]:
    server = Api()
    yield server
    server.server.shutdown()
    server.server.server_close()


def _bin(tmp_path: Path, *tools: str) -> Path:
    """A PATH folder with the basic tools plus `tools` (to leave curl or wget out)."""
    folder = tmp_path / "bin"
    folder.mkdir(exist_ok=True)
    for tool in (*TOOLS, *tools):
        # python3 may be a shim needing more than this PATH: link the interpreter itself
        found = os.path.realpath(sys.executable) if tool == "python3" else shutil.which(tool)
        if found and not (folder / tool).exists():
            (folder / tool).symlink_to(found)
    return folder


def _arm(tmp_path: Path, script: str, path: Path, key: str = KEY) -> str:
    env = {"HOME": str(tmp_path / "home"), "PATH": str(path), "RUNPOD_POD_ID": POD}
    if key:
        env["RUNPOD_API_KEY"] = key
    out = subprocess.run(
        ["sh", "-s"], input=script, env=env, capture_output=True, text=True, timeout=20,
        check=True,
    )  # fmt: skip
    return out.stdout


def _wait(predicate: Any, timeout: float = 20) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


def _kill(tmp_path: Path) -> None:
    pid_file = tmp_path / "home/.podctl/watchdog/pid"
    if pid_file.exists():
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid_file.read_text()), 9)


@pytest.mark.parametrize("tool", ["curl", "wget", "python3"])
def test_it_terminates_the_pod_at_the_deadline(tmp_path: Path, api: Api, tool: str) -> None:
    if shutil.which(tool) is None:
        pytest.skip(f"no {tool}")
    path = _bin(tmp_path, tool)
    deadline = int(time.time()) + 1
    try:
        armed = parse_armed(
            _arm(
                tmp_path,
                arm_script(deadline_epoch=deadline, action="terminate", api_url=api.url),
                path,
            )
        )
        assert armed.state == "started" and armed.pid is not None
        cmdline = Path(f"/proc/{armed.pid}/cmdline").read_bytes()
        assert KEY.encode() not in cmdline
        _wait(lambda: api.calls)
        assert time.time() >= deadline
        log_file = tmp_path / "home/.podctl/watchdog/log"
        # the watchdog logs "done" once the API has answered: wait for it, never race it
        _wait(lambda: "done" in log_file.read_text())
        # REST v2 did it (204): GraphQL is never asked
        assert api.calls == [
            {
                "path": f"/v2/pods/{POD}/action",
                "auth": f"Bearer {KEY}",
                "body": {"action": "terminate"},
            }
        ]
        log = log_file.read_text()
        assert "done over REST v2" in log and KEY not in log
    finally:
        _kill(tmp_path)


@pytest.mark.parametrize("tool", ["curl", "wget", "python3"])
def test_a_refused_v2_route_falls_back_to_graphql(tmp_path: Path, api: Api, tool: str) -> None:
    if shutil.which(tool) is None:
        pytest.skip(f"no {tool}")
    api.v2_refuses = True
    deadline = int(time.time()) + 1
    script = arm_script(deadline_epoch=deadline, action="stop", api_url=api.url)
    try:
        assert parse_armed(_arm(tmp_path, script, _bin(tmp_path, tool))).state == "started"
        log_file = tmp_path / "home/.podctl/watchdog/log"
        _wait(lambda: log_file.exists() and "done" in log_file.read_text())
        assert [(c["path"], c["body"]) for c in api.calls] == [
            (f"/v2/pods/{POD}/action", {"action": "stop"}),
            ("/graphql", {"query": f'mutation {{ podStop(input: {{podId: "{POD}"}}) {{ id }} }}'}),
        ]
        assert all(c["auth"] == f"Bearer {KEY}" for c in api.calls)
        log = log_file.read_text()
        assert "REST v2 answer:" in log and "done over GraphQL" in log and KEY not in log
    finally:
        _kill(tmp_path)


def test_arming_twice_keeps_one_and_another_deadline_replaces_it(tmp_path: Path, api: Api) -> None:
    path = _bin(tmp_path, "curl")
    later = int(time.time()) + 3600
    script = arm_script(deadline_epoch=later, action="stop", api_url=api.url)
    try:
        first = parse_armed(_arm(tmp_path, script, path))
        again = parse_armed(_arm(tmp_path, script, path))
        assert (first.state, again.state, again.pid) == ("started", "armed", first.pid)
        moved = arm_script(deadline_epoch=later + 60, action="stop", api_url=api.url)
        third = parse_armed(_arm(tmp_path, moved, path))
        assert third.state == "started" and third.pid != first.pid
        assert first.pid is not None
        _wait(
            lambda: (
                not Path(f"/proc/{first.pid}").exists()
                or b"Z" in Path(f"/proc/{first.pid}/stat").read_bytes().split(b")")[-1][:3]
            )
        )
    finally:
        _kill(tmp_path)
    assert api.calls == []


def test_it_says_when_it_cannot_be_armed(tmp_path: Path, api: Api) -> None:
    script = arm_script(deadline_epoch=int(time.time()) + 60, action="stop", api_url=api.url)
    bare = _bin(tmp_path)  # no curl, wget or python3
    armed = parse_armed(_arm(tmp_path, script, bare))
    assert armed == parse_armed(
        "podctl-watchdog error the pod has no curl, wget or python3 to call RunPod's API"
    )
    keyless = parse_armed(_arm(tmp_path, script, _bin(tmp_path, "curl"), key=""))
    assert keyless.state == "error" and "RUNPOD_API_KEY" in keyless.message


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(JobError, match="stop or terminate"):
        arm_script(deadline_epoch=1, action="delete", api_url="https://api.runpod.io/graphql")
    with pytest.raises(JobError, match="cannot call the URL"):
        arm_script(deadline_epoch=1, action="stop", api_url="https://x/$(reboot)")
    assert parse_armed("motd\nnoise").state == "error"
