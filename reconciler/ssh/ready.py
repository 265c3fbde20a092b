"""Waiting for a pod's SSH: retry with backoff, and say precisely why it never answered."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import asyncssh

from reconciler.errors import HostKeyChangedError, SshError, SshNotReadyError
from reconciler.model import ActualPod, PodStatus
from reconciler.ssh.connection import PodConnection, connect
from reconciler.ssh.keys import StackKey

AUTH_REFUSALS_TO_GIVE_UP = 3  # sshd answers and says no: waiting longer will not help


def _kind(error: BaseException | None) -> str:
    """refused | auth | timeout | closed | other | none, from an error or its cause."""
    if error is None:
        return "none"
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, asyncssh.PermissionDenied):
            return "auth"
        if isinstance(seen, ConnectionRefusedError):
            return "refused"
        if isinstance(seen, TimeoutError):
            return "timeout"
        if isinstance(seen, asyncssh.ConnectionLost):
            return "closed"
        seen = seen.__cause__
    return "other"


def diagnose(pod: ActualPod, error: BaseException | None) -> str:
    """Why `pod` is not reachable over SSH, and the likely fix (never an env value)."""
    who = f"pod {pod.name or pod.pod_id} ({pod.pod_id})"
    if "22/tcp" not in pod.ports:
        shown = ", ".join(pod.ports) or "none"
        return (
            f"{who} does not expose 22/tcp (its ports: {shown}), so podctl cannot reach it "
            "over SSH; add `22/tcp` to the pod's `ports` in the spec and apply (RunPod's "
            "ssh.runpod.io proxy cannot run commands or copy files)."
        )
    if pod.desired_status not in (PodStatus.RUNNING, PodStatus.UNKNOWN):
        return (
            f"{who} is {pod.desired_status.value}, not running, so its SSH cannot answer; "
            "set `state: running` for it and apply."
        )
    if pod.ssh is None:
        started = "runs" if pod.runtime_ready else "has not started yet (image still pulling?)"
        return (
            f"{who} has no public IP and port mapped to 22/tcp yet; its container {started}. "
            "Wait longer (raise the readiness timeout), or on community cloud pick a machine "
            "with a public IP (`cloud: secure` always has one)."
        )
    where = f"{pod.ssh.host}:{pod.ssh.port}"
    kind = _kind(error)
    if kind == "refused":
        return (
            f"{who}: connection to {where} refused: sshd is not running in the pod. The image "
            "may ignore PUBLIC_KEY and never start sshd: use a RunPod base image "
            "(runpod/base, runpod/pytorch) or have the image install and start sshd with "
            "$PUBLIC_KEY in /root/.ssh/authorized_keys."
        )
    if kind == "auth":
        return (
            f"{who}: sshd at {where} refused this stack's key (authentication failed): the pod "
            "lacks our PUBLIC_KEY, so it was created outside podctl or with another key. "
            "Replace the pod (podctl creates it with the key), or add the stack's public key "
            "(the `.id_ed25519.pub` file beside the lockfile) to its authorized_keys."
        )
    if kind == "closed":
        return (
            f"{who}: {where} accepted the connection but closed it before login (sshd starting "
            "or not an SSH server); wait longer or check the pod's logs."
        )
    if kind == "timeout":
        return (
            f"{who}: no SSH answer from {where} in time (the port may be filtered, or sshd is "
            "still starting); wait longer (raise the readiness timeout) or check the pod's logs."
        )
    if kind == "other" and error is not None:
        return f"{who}: SSH to {where} failed: {error}"
    return f"{who}: SSH to {where} did not answer in time; wait longer or check the pod's logs."


async def wait_ready(
    pod: ActualPod,
    key: StackKey,
    *,
    pinned: tuple[str, ...] = (),
    timeout_s: float,
    initial_s: float = 1.0,
    max_s: float = 5.0,
    refresh: Callable[[], Awaitable[ActualPod | None]] | None = None,
) -> PodConnection:
    """Connect once SSH answers, retrying with backoff (initial_s doubling up to max_s).

    Gives up at once when waiting cannot help (no 22/tcp; no port mapping and no `refresh`;
    the pod is gone; the key refused again and again; a changed host key), else after
    `timeout_s`, with an SshNotReadyError from `diagnose`.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    delay = initial_s
    last: SshError | None = None
    refusals = 0
    while True:
        if "22/tcp" not in pod.ports:
            raise SshNotReadyError(diagnose(pod, None))
        if pod.ssh is not None:
            remaining = max(deadline - loop.time(), 0.5)
            try:
                return await connect(pod.ssh, key, pinned=pinned, timeout_s=min(10.0, remaining))
            except HostKeyChangedError:
                raise
            except SshError as exc:
                last = exc
                refusals = refusals + 1 if _kind(exc) == "auth" else 0
                if refusals >= AUTH_REFUSALS_TO_GIVE_UP:
                    raise SshNotReadyError(diagnose(pod, exc)) from None
        elif refresh is None:
            raise SshNotReadyError(diagnose(pod, None))
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise SshNotReadyError(diagnose(pod, last if pod.ssh is not None else None))
        await asyncio.sleep(min(delay, remaining))
        delay = min(delay * 2, max_s)
        if refresh is not None:
            fresh = await refresh()
            if fresh is None:
                raise SshNotReadyError(
                    f"pod {pod.name or pod.pod_id} ({pod.pod_id}) no longer exists "
                    "while waiting for its SSH"
                )
            if fresh.ssh != pod.ssh:
                last = None
            pod = fresh
