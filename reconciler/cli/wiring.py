"""The composition root: settings -> the pod backend (GraphQL or REST v2), state store, sandbox.

The only place that picks an implementation for a port; the workflow receives them through
`Connection.ports` (reconciler.workflow.context.Ports) and never imports a backend.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from reconciler.workflow.context import Connection, Ports, api_of

if TYPE_CHECKING:
    from reconciler.executor.ports import BackendSession
    from reconciler.state import StateSettings, StateStore


def open_backend(connection: Connection) -> BackendSession:
    """A client of RunPod's GraphQL API or of its REST API v2 (`--api`), for RunPod or for the
    local sandbox (started if none runs)."""
    from reconciler.backends.config import resolve_api_key
    from reconciler.backends.runpod_graphql import RunPodClient
    from reconciler.backends.runpod_rest import RestClient

    kind = RestClient if api_of(connection) == "rest" else RunPodClient

    notice = connection.on_notice

    def on_retry(attempt: int, delay: float, reason: str) -> None:
        if notice is not None:
            notice(f"podctl: {reason}; retrying in {delay:.1f}s (attempt {attempt + 1})")

    if connection.sandbox:
        from reconciler.sandbox import control

        data_dir = connection.env.get("PODCTL_SANDBOX_DIR")
        info = control.ensure_running(Path(data_dir) if data_dir else None)
        return kind(info.api_key, api_url=info.url, on_retry=on_retry)
    key = resolve_api_key(connection.env)
    return kind(
        key, api_url=connection.api_url, on_retry=on_retry, insecure_http=connection.insecure_http
    )


def open_state_store(settings: StateSettings) -> StateStore:
    """The lockfile, or the PostgreSQL store a postgresql:// location names."""
    from reconciler.state import open_store

    return open_store(settings)


PORTS = Ports(backend=open_backend, store=open_state_store)
