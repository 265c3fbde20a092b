"""asyncssh, its one home: keys, host-key pinning, readiness, remote job runs, SFTP transfers.

`import reconciler.ssh` is cheap: asyncssh is imported when a name is first used.
"""

from __future__ import annotations

import asyncio
import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from reconciler.ssh.connection import PodConnection, connect
    from reconciler.ssh.keys import StackKey, ensure_stack_key
    from reconciler.ssh.ready import diagnose, wait_ready
    from reconciler.ssh.transfer import TransferStats

__all__ = [
    "PodConnection",
    "StackKey",
    "TransferStats",
    "connect",
    "diagnose",
    "ensure_stack_key",
    "quiet_orphan_reads",
    "wait_ready",
]

_HOMES = {
    "PodConnection": "connection",
    "TransferStats": "transfer",
    "connect": "connection",
    "StackKey": "keys",
    "ensure_stack_key": "keys",
    "diagnose": "ready",
    "wait_ready": "ready",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'reconciler.ssh' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"reconciler.ssh.{home}"), name)
    globals()[name] = value
    return value


def quiet_orphan_reads(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """An event loop exception handler that drops the errors of asyncssh's own parallel-read
    tasks, which it leaves unretrieved when a download is cancelled (an apply stopping on a
    lost state store): their EOF or closed connection is expected, not a bug to print."""
    error = context.get("exception")
    task = context.get("future")
    coro = task.get_coro() if isinstance(task, asyncio.Task) else None
    name = getattr(coro, "__qualname__", "")
    if type(error).__module__.startswith("asyncssh") and name.startswith("_SFTPParallelIO"):
        return
    loop.default_exception_handler(context)
