"""Pod processes: run a command as the pod would (volume at its mount path), kill them all.

As root on Linux each command runs in its own private mount namespace
(`unshare --mount --propagation private`) where the pod's volume folder is bind-mounted at
the mount path (`/workspace`) and its container-disk folder at `/root` (so `~` is wiped on
stop, as a container disk is); nothing leaks to the host's mounts. Without root (or without
`unshare`) commands run with the volume folder as working directory and
`PODCTL_SANDBOX_VOLUME` pointing at it, and the mount path does not exist
(`PODCTL_SANDBOX_NO_NAMESPACE=1` forces this fallback, e.g. where `unshare` is blocked).

Every process of a pod carries `RUNPOD_POD_ID` and `PODCTL_SANDBOX_DATA_DIR` in its
environment; `kill_pod` finds them through `/proc/*/environ`, so it catches processes that
left their session (`setsid`, `nohup ... &`) and processes started by an earlier sandbox run.
"""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path

MARK_POD = "RUNPOD_POD_ID"
MARK_DIR = "PODCTL_SANDBOX_DATA_DIR"

_MOUNTS = 'mount --bind -- "$1" "$2" && mount --bind -- "$3" /root'
_NS_SCRIPT = _MOUNTS + ' && cd /root && exec "$5" -c "$4"'


# One long-lived process per pod holds a mount namespace with the pod's disks in place; each
# command enters it with nsenter (2 execs) instead of building its own (unshare, sh, 2 mounts):
# closer to what a command costs on a real pod's sshd.
_HOLDER_SCRIPT = _MOUNTS + " && exec sleep 2147483647"


def _in_new_mount_namespace(
    script: str, name: str, volume: Path, mount_path: str, container: Path
) -> list[str]:
    """argv running `script` in a private mount namespace; $1..$3: volume, mount, container."""
    argv = ["unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", script, name]
    return [*argv, str(volume), mount_path, str(container)]


def holder_argv(volume: Path, mount_path: str, container: Path) -> list[str]:
    """argv of the process that holds a pod's mount namespace (it ends as `sleep`)."""
    return _in_new_mount_namespace(
        _HOLDER_SCRIPT, "podctl-sandbox-ns", volume, mount_path, container
    )


def holder_ready(pid: int) -> bool:
    """The holder has made both mounts (it has exec'd `sleep`)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().startswith(b"sleep\0")
    except OSError:
        return False


def can_enter_namespaces() -> bool:
    return shutil.which("nsenter") is not None


def nsenter_argv(holder_pid: int, command: str) -> list[str]:
    """argv that runs `command` inside the holder's mount namespace, in /root."""
    return [
        "nsenter",
        f"--mount=/proc/{holder_pid}/ns/mnt",
        "--wd=/root",
        "--",
        login_shell(),
        "-c",
        command,
    ]


def can_use_mount_namespace() -> bool:
    """True when commands can see the volume at its mount path (root, Linux, unshare)."""
    if os.environ.get("PODCTL_SANDBOX_NO_NAMESPACE") == "1":
        return False
    return (
        hasattr(os, "geteuid")
        and os.geteuid() == 0
        and shutil.which("unshare") is not None
        and shutil.which("mount") is not None
        and os.path.isdir("/proc")
    )


def login_shell() -> str:
    return "/bin/bash" if os.path.exists("/bin/bash") else "/bin/sh"


def command_argv(
    command: str, volume: Path, mount_path: str, container: Path, use_ns: bool
) -> tuple[list[str], str]:
    """(argv, cwd) that runs `command` with the pod's disks in place."""
    shell = login_shell()
    if use_ns:
        argv = _in_new_mount_namespace(_NS_SCRIPT, "podctl-sandbox", volume, mount_path, container)
        return [*argv, command, shell], str(container)
    return [shell, "-c", command], str(volume)


def prepare_mount_point(mount_path: str) -> bool:
    """Create the (empty) mount-point directory on the host, needed for the bind mount.

    Returns True if it did not exist; the store removes it again (if still empty) once no
    pod uses it.
    """
    if os.path.isdir(mount_path):
        return False
    os.makedirs(mount_path, exist_ok=True)
    return True


def _environ_of(pid: str) -> bytes:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return f.read()
    except OSError:
        return b""


def pod_pids(pod_id: str, data_dir: Path) -> list[int]:
    """Live processes started for this pod by a sandbox on this data dir."""
    want_pod = f"{MARK_POD}={pod_id}".encode()
    want_dir = f"{MARK_DIR}={data_dir}".encode()
    me = os.getpid()
    pids = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for entry in entries:
        if not entry.isdigit() or int(entry) == me:
            continue
        env = _environ_of(entry).split(b"\0")
        if want_pod in env and want_dir in env:
            pids.append(int(entry))
    return pids


def kill_pod(pod_id: str, data_dir: Path, extra_pgids: set[int] | None = None) -> int:
    """SIGKILL every process group and process of the pod; returns how many were signalled."""
    killed = 0
    for pgid in extra_pgids or set():
        try:
            os.killpg(pgid, signal.SIGKILL)
            killed += 1
        except (ProcessLookupError, PermissionError):
            pass
    for pid in pod_pids(pod_id, data_dir):
        try:
            os.kill(pid, signal.SIGKILL)
            killed += 1
        except (ProcessLookupError, PermissionError):
            pass
    return killed
