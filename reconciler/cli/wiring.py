"""The composition root: settings -> the pod backend (GraphQL or REST v2), state store, sandbox.

The only place that picks an implementation for a port; the workflow receives them through
`Connection.ports` (reconciler.workflow.context.Ports) and never imports a backend. Another
client of RunPod (a control plane, a job API) is built the same way: from `api_target`.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from reconciler.workflow.context import Connection, Ports, api_of

if TYPE_CHECKING:
    from reconciler.backends.runpod_rest import RestClient
    from reconciler.backends.serverless.client import JobApi
    from reconciler.executor.ports import BackendSession, BillingBackend, EndpointBackend
    from reconciler.state import StateSettings, StateStore
    from reconciler.workflow.context import ApiClient


@dataclass(frozen=True)
class ApiTarget:
    """Where a RunPod client goes and with which key: RunPod itself, or the local sandbox."""

    key: str
    url: str | None  # None: RUNPOD_API_BASE_URL, else RunPod's own
    insecure_http: bool
    on_retry: Callable[[int, float, str], None]

    def __repr__(self) -> str:  # never the key
        return f"ApiTarget(url={self.url!r})"


def api_target(connection: Connection, *, announce: bool = True) -> ApiTarget:
    """The sandbox's URL and key (started if none runs) with `--sandbox`, else `--api-url` and
    the key from RUNPOD_API_KEY or ~/.runpod/config.toml; retries reported as notices.

    `announce=False` for a second client beside the pod backend: the sandbox said it once."""
    notice = connection.on_notice

    def on_retry(attempt: int, delay: float, reason: str) -> None:
        if notice is not None:
            notice(f"podctl: {reason}; retrying in {delay:.1f}s (attempt {attempt + 1})")

    if connection.sandbox:
        from reconciler.sandbox import control

        data_dir = connection.env.get("PODCTL_SANDBOX_DIR")
        info = control.ensure_running(Path(data_dir) if data_dir else None, announce=announce)
        return ApiTarget(info.api_key, info.url, False, on_retry)
    from reconciler.backends.config import resolve_api_key

    key = resolve_api_key(connection.env)
    return ApiTarget(key, connection.api_url, connection.insecure_http, on_retry)


def open_backend(connection: Connection) -> BackendSession:
    """A client of RunPod's GraphQL API or of its REST API v2 (`--api`), for RunPod or for the
    local sandbox."""
    from reconciler.backends.runpod_graphql import RunPodClient
    from reconciler.backends.runpod_rest import RestClient

    kind = RestClient if api_of(connection) == "rest" else RunPodClient
    target = api_target(connection)
    return kind(
        target.key, api_url=target.url, on_retry=target.on_retry, insecure_http=target.insecure_http
    )


def open_state_store(settings: StateSettings) -> StateStore:
    """The lockfile, or the PostgreSQL store a postgresql:// location names."""
    from reconciler.state import open_store

    return open_store(settings)


@contextlib.asynccontextmanager
async def _rest_beside(
    connection: Connection, client: ApiClient, secrets: Iterable[str] = ()
) -> AsyncIterator[tuple[RestClient, bool]]:
    """A REST v2 client for what only v2 has (endpoints, billing): `client` itself when it
    speaks v2, else one of the same key and server (runpod-rest-v2.md 1); and whether it is
    that second client."""
    from reconciler.backends.runpod_rest import RestClient

    if isinstance(client, RestClient):
        yield client, False
        return
    target = api_target(connection, announce=False)
    async with RestClient(
        target.key, api_url=target.url, on_retry=target.on_retry, insecure_http=target.insecure_http
    ) as rest:
        rest.hide(secrets)
        yield rest, True


@contextlib.asynccontextmanager
async def open_endpoints(
    connection: Connection, client: ApiClient, secrets: Iterable[str] = ()
) -> AsyncIterator[EndpointBackend]:
    """The serverless control plane, which exists only on REST v2."""
    from reconciler.backends.runpod_rest.endpoints import EndpointClient

    async with _rest_beside(connection, client, secrets) as (rest, own):
        yield EndpointClient(rest, owns_rest=own)


def open_job_api(connection: Connection) -> JobApi:
    """The serverless data plane: the sandbox's with `--sandbox`, else
    $RUNPOD_ENDPOINT_BASE_URL (runpod-python's variable), else https://api.runpod.ai/v2."""
    from reconciler.backends.serverless.client import JobApi, endpoint_base_url

    target = api_target(connection)
    sandbox_url = target.url if connection.sandbox else None
    base = endpoint_base_url(connection.env, sandbox_url)
    return JobApi(target.key, base, on_retry=connection.on_notice)


@contextlib.asynccontextmanager
async def open_billing(connection: Connection, client: ApiClient) -> AsyncIterator[BillingBackend]:
    """RunPod's billing, which exists only on REST v2 (runpod-rest-v2.md 11)."""
    async with _rest_beside(connection, client) as (rest, _own):
        yield rest


PORTS = Ports(
    backend=open_backend,
    store=open_state_store,
    endpoints=open_endpoints,
    job_api=open_job_api,
    billing=open_billing,
)
