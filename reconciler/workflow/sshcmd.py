"""`podctl ssh pod.NAME [-- CMD...]`: OpenSSH to a pod with the stack's key and pinned host key."""

from __future__ import annotations

import asyncio
import re
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from reconciler.errors import PodctlError, UsageError
from reconciler.model import ActualPod, Address
from reconciler.workflow.context import (
    Connection,
    check_stack,
    connect,
    key_path,
    load_desired,
    local_state,
    open_state,
)

_HOST = re.compile(r"[A-Za-z0-9][A-Za-z0-9.:-]{0,252}")


@dataclass(frozen=True)
class SshCall:
    """The `ssh` command line to run, and the known_hosts file it needs (removed after)."""

    argv: tuple[str, ...]
    known_hosts: Path


def ssh_call(
    connection: Connection, paths: tuple[Path, ...], address: str, command: Sequence[str]
) -> SshCall:
    """Find the pod (the lockfile's, else its markers'), its SSH endpoint and pinned host key."""
    name = Address.strip(address, "pod")
    desired = load_desired(paths)
    if name not in desired.pods:
        known = ", ".join(str(Address.pod(p)) for p in desired.pods) or "(none)"
        raise UsageError(f"No pod {name!r} in stack {desired.stack}; its pods: {known}.")
    binary = shutil.which("ssh")
    if binary is None:
        raise PodctlError("podctl ssh runs OpenSSH's `ssh`, which is not on PATH: install it.")
    store = open_state(connection, desired)
    recorded = store.read()
    check_stack(recorded, desired, store.where)
    record = recorded.pods.get(name)

    async def find() -> ActualPod | None:
        async with connect(connection) as client:
            actual = await client.list_pods()
        if record is not None and (pod := actual.get(record.pod_id)) is not None:
            return pod
        found = actual.find_by_markers(desired.stack, name)
        return found[-1] if found else None

    pod = asyncio.run(find())
    where = Address.pod(name)
    if pod is None:
        raise PodctlError(f"{where} has no pod on RunPod: `podctl apply` creates it.")
    if pod.ssh is None:
        raise PodctlError(
            f"{where} ({pod.pod_id}) has no SSH endpoint: it is not running, or its ports "
            "lack 22/tcp (`podctl status` shows it)."
        )
    pinned = recorded.host_keys.get(pod.pod_id, ())
    if not pinned:
        raise PodctlError(
            f"{where} ({pod.pod_id}) has no pinned host key yet: podctl pins it the first "
            "time it runs a job there (or arms its watchdog); until then it cannot tell the "
            "pod from an impostor."
        )
    key = key_path(connection, desired, local_state(connection, desired))
    if not key.exists():
        raise PodctlError(f"The stack's SSH key {key} does not exist: `podctl apply` makes it.")
    if not _HOST.fullmatch(pod.ssh.host):  # it goes into a known_hosts line and argv
        raise PodctlError(f"{where} ({pod.pod_id}): RunPod gave an SSH host podctl refuses.")
    host = pod.ssh.host if pod.ssh.port == 22 else f"[{pod.ssh.host}]:{pod.ssh.port}"
    with tempfile.NamedTemporaryFile(
        "w", prefix="podctl-known-hosts-", delete=False, encoding="utf-8"
    ) as handle:
        handle.write("".join(f"{host} {k}\n" for k in pinned))
    known_hosts = Path(handle.name)
    argv = (
        binary,
        "-i",
        str(key),
        "-p",
        str(pod.ssh.port),
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        f"UserKnownHostsFile={known_hosts}",
        "-o",
        "GlobalKnownHostsFile=/dev/null",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        "BatchMode=no",
        "--",  # what follows is never an option of ssh, whatever RunPod names the host
        f"root@{pod.ssh.host}",
        *command,
    )
    return SshCall(argv, known_hosts)
