"""Where the sandbox keeps its files: state, API key, server info, pod disks, host keys."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

from reconciler.atomic import atomic_write as atomic_write  # re-exported for the sandbox

STATE_FILE = "state.json"
KEY_FILE = "api_key"
INFO_FILE = "server.json"
LOG_FILE = "server.log"
LOCK_FILE = "server.lock"
PORT_FILE = "last_port"  # a restarted sandbox tries to keep its URL


def default_data_dir() -> Path:
    """`$XDG_CACHE_HOME/podctl/sandbox`, else `~/.cache/podctl/sandbox`."""
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "podctl" / "sandbox"


def api_key(data_dir: Path) -> str:
    """The data dir's API key, created (0600) on first use."""
    path = data_dir / KEY_FILE
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    key = "sbx_" + secrets.token_urlsafe(24)
    tmp = data_dir / f".{KEY_FILE}.{os.getpid()}.new"
    atomic_write(tmp, key.encode() + b"\n")
    try:
        os.link(tmp, path)  # fails if another process created the key first: use theirs
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    return path.read_text().strip()


def write_info(data_dir: Path, info: dict[str, Any]) -> None:
    atomic_write(data_dir / INFO_FILE, json.dumps(info).encode())


def read_info(data_dir: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((data_dir / INFO_FILE).read_text())
    except (FileNotFoundError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def remove_info(data_dir: Path, pid: int) -> None:
    """Remove the info file if it still describes the server `pid`."""
    info = read_info(data_dir)
    if info is not None and info.get("pid") == pid:
        (data_dir / INFO_FILE).unlink(missing_ok=True)


def pod_dir(data_dir: Path, pod_id: str) -> Path:
    return data_dir / "pods" / pod_id


def volume_dir(data_dir: Path, pod_id: str) -> Path:
    return pod_dir(data_dir, pod_id) / "volume"


def container_dir(data_dir: Path, pod_id: str) -> Path:
    return pod_dir(data_dir, pod_id) / "container"


def host_key_file(data_dir: Path, pod_id: str) -> Path:
    return pod_dir(data_dir, pod_id) / "ssh_host_ed25519_key"
