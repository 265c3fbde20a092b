"""asyncssh, its one home: keys, host-key pinning, readiness, remote job runs, SFTP transfers.

`import reconciler.ssh` is cheap: asyncssh is imported when a name is first used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from reconciler.ssh.connection import PodConnection, connect
    from reconciler.ssh.keys import StackKey, default_key_path, ensure_stack_key
    from reconciler.ssh.ready import diagnose, wait_ready
    from reconciler.ssh.transfer import TransferStats

__all__ = [
    "PodConnection",
    "StackKey",
    "TransferStats",
    "connect",
    "default_key_path",
    "diagnose",
    "ensure_stack_key",
    "wait_ready",
]

_HOMES = {
    "PodConnection": "connection",
    "TransferStats": "transfer",
    "connect": "connection",
    "StackKey": "keys",
    "default_key_path": "keys",
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
