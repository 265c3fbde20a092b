"""Drive a sandbox from another process: find, start (detached), stop, query, `ensure_running`.

Standard library only, so that commands using it stay fast; the server itself runs in its own
process (`python -m reconciler.sandbox.server`) and writes `server.json` (0600) into the data
dir once it answers.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler.errors import PodctlError
from reconciler.sandbox import layout


class SandboxError(PodctlError):
    """The sandbox could not be started, reached or stopped."""


@dataclass(frozen=True)
class SandboxInfo:
    """How to reach a running sandbox."""

    url: str
    api_key: str
    data_dir: Path
    pid: int
    port: int

    def env(self) -> dict[str, str]:
        return {"RUNPOD_API_BASE_URL": self.url, "RUNPOD_API_KEY": self.api_key}


def _resolve(data_dir: Path | None) -> Path:
    return (data_dir or layout.default_data_dir()).expanduser().resolve()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def request(
    info: SandboxInfo, method: str, path: str, body: Any = None, timeout: float = 10
) -> Any:
    """One authenticated JSON request to the sandbox."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        info.url + path,
        data=data,
        method=method,
        headers={"Authorization": f"Bearer {info.api_key}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")
        with contextlib.suppress(ValueError, KeyError, IndexError, TypeError):
            detail = json.loads(detail)["errors"][0]["message"]
        raise SandboxError(f"sandbox answered {exc.code}: {detail}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise SandboxError(f"cannot reach the sandbox at {info.url}: {exc}") from exc
    except ValueError as exc:  # not JSON: whatever answers there is not this sandbox
        raise SandboxError(f"the sandbox at {info.url} answered something not JSON") from exc


def find_running(data_dir: Path | None = None) -> SandboxInfo | None:
    """The sandbox serving this data dir, if one runs and answers."""
    directory = _resolve(data_dir)
    raw = layout.read_info(directory)
    if raw is None or not _alive(int(raw.get("pid", 0))):
        return None
    info = SandboxInfo(
        url=str(raw["url"]),
        api_key=layout.api_key(directory),
        data_dir=directory,
        pid=int(raw["pid"]),
        port=int(raw["port"]),
    )
    try:
        health = request(info, "GET", "/_sandbox/health", timeout=2)
    except SandboxError:
        return None
    return info if isinstance(health, dict) and health.get("pid") == info.pid else None


def start_detached(
    data_dir: Path | None = None,
    *,
    port: int = 0,
    start_delay: float = 2.0,
    stock: int | None = None,
    seed: int | None = None,
    timeout: float = 15.0,
) -> SandboxInfo:
    """Start a server in the background (own session, log in the data dir) and wait for it."""
    directory = _resolve(data_dir)
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    fd = os.open(directory / layout.LOG_FILE, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    log = os.fdopen(fd, "ab")
    try:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "reconciler.sandbox.server",
                "--data-dir",
                str(directory),
                "--port",
                str(port),
                "--start-delay",
                str(start_delay),
                *([] if stock is None else ["--stock", str(stock)]),
                *([] if seed is None else ["--seed", str(seed)]),
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
    finally:
        log.close()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            if _locked(directory):  # lost a race with another starter: wait for its server
                other = find_running(directory)
                if other is not None:
                    return other
                time.sleep(0.02)
                continue
            tail = (directory / layout.LOG_FILE).read_text(errors="replace")[-800:]
            raise SandboxError(f"the sandbox exited at start (code {proc.returncode}):\n{tail}")
        raw = layout.read_info(directory)
        if raw is not None and raw.get("pid") == proc.pid:
            info = find_running(directory)
            if info is not None:
                # detached on purpose: `stop` reaps it if it is still our child
                proc.returncode = 0
                return info
        time.sleep(0.02)
    proc.kill()
    raise SandboxError(f"the sandbox did not answer within {timeout:.0f} s")


def _locked(directory: Path) -> bool:
    """True while a sandbox server holds the data dir's lock."""
    import fcntl

    try:
        fd = os.open(directory / layout.LOCK_FILE, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)
    return False


def ensure_running(
    data_dir: Path | None = None, *, announce: bool = True, start_delay: float = 2.0
) -> SandboxInfo:
    """The running sandbox for this data dir, started in the background if none runs.

    Says on stderr that podctl talks to a sandbox, so nobody mistakes it for RunPod.
    `start_delay` (seconds of `runtime: null` after a pod starts) applies only when starting.
    """
    info = find_running(data_dir)
    started = False
    if info is None:
        info = start_detached(data_dir, start_delay=start_delay)
        started = True
    if announce:
        how = "started a" if started else "using the"
        print(
            f"podctl: {how} local RunPod sandbox at {info.url} (data dir {info.data_dir}); "
            "nothing here touches RunPod.",
            file=sys.stderr,
        )
    return info


def require_running(data_dir: Path | None = None) -> SandboxInfo:
    info = find_running(data_dir)
    if info is None:
        raise SandboxError(
            f"no sandbox runs for {_resolve(data_dir)}; start one with `podctl sandbox start`"
        )
    return info


def kill_pod_processes(data_dir: Path | None = None) -> int:
    """Kill every process the sandbox's pods started (state is kept); returns the count."""
    from reconciler.sandbox import procs

    directory = _resolve(data_dir)
    pods_dir = directory / "pods"
    if not pods_dir.is_dir():
        return 0
    return sum(procs.kill_pod(pod.name, directory) for pod in pods_dir.iterdir())


def stop(
    data_dir: Path | None = None, timeout: float = 10.0, *, kill_pods: bool = False
) -> int | None:
    """Stop the sandbox (SIGTERM, then SIGKILL); returns its pid, or None if none ran.

    Pod processes keep running, as real pods do while RunPod's API is down, unless
    `kill_pods`; a restarted sandbox finds them again (and kills them on stop/terminate).
    """
    directory = _resolve(data_dir)
    if kill_pods:
        kill_pod_processes(directory)
    raw = layout.read_info(directory)
    if raw is None or not _alive(int(raw.get("pid", 0))):
        return None
    pid = int(raw["pid"])
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid) or _zombie(pid):
            break
        time.sleep(0.02)
    else:
        os.kill(pid, signal.SIGKILL)
    # started by another process: its parent (or init) reaps it
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0 if _zombie(pid) else os.WNOHANG)
    layout.remove_info(directory, pid)
    return pid


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def status(data_dir: Path | None = None) -> dict[str, Any] | None:
    info = find_running(data_dir)
    if info is None:
        return None
    result = request(info, "GET", "/_sandbox/status")
    return result if isinstance(result, dict) else None


def reset(data_dir: Path | None = None) -> None:
    """Terminate every pod and clear faults; offline, delete the state (the key stays)."""
    info = find_running(data_dir)
    if info is not None:
        request(info, "POST", "/_sandbox/reset", {})
        return
    import shutil

    directory = _resolve(data_dir)
    kill_pod_processes(directory)
    try:
        state = json.loads((directory / layout.STATE_FILE).read_text())
    except (OSError, ValueError):
        state = {}
    for path in state.get("mount_points", []):  # mount-point dirs the sandbox made
        with contextlib.suppress(OSError):
            os.rmdir(path)
    (directory / layout.STATE_FILE).unlink(missing_ok=True)
    shutil.rmtree(directory / "pods", ignore_errors=True)


def faults(data_dir: Path | None, spec: dict[str, Any] | None, *, clear: bool = False) -> Any:
    info = require_running(data_dir)
    if clear:
        return request(info, "DELETE", "/_sandbox/faults")
    if spec is None:
        return request(info, "GET", "/_sandbox/faults")
    return request(info, "POST", "/_sandbox/faults", spec)


def env_text(info: SandboxInfo) -> str:
    return (
        f"export RUNPOD_API_BASE_URL={info.url} RUNPOD_API_KEY={info.api_key}\n"
        "# the runpod SDK ignores RUNPOD_API_KEY: set runpod.api_key in Python\n"
    )
