"""Serverless endpoints in the use cases: list them beside the pods, apply their changes,
`podctl import endpoint.NAME ID`, and `status` rows with `/health`.

Endpoints exist only on REST v2: with `--api graphql` a REST client with the same key and
base URL is opened for them. A stack with no endpoint in its spec and none recorded costs no
request for them (its plans stay one request).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from reconciler.errors import PodctlError, UsageError
from reconciler.events import Event
from reconciler.model import (
    ActualState,
    DesiredState,
    EndpointHealth,
    EndpointRecord,
    Lockfile,
)
from reconciler.plans import ApplyResult, ChangeResult, Outcome, Plan
from reconciler.workflow.context import (
    Connection,
    check_stack,
    connect,
    load_desired,
    open_state,
    stop_on_lost,
)

if TYPE_CHECKING:
    from reconciler.executor.endpoints import EndpointJournal
    from reconciler.executor.ports import EndpointBackend
    from reconciler.workflow.context import ApiClient

OnEvent = Callable[[Event], None]


def has_endpoints(desired: DesiredState, recorded: Lockfile) -> bool:
    """Whether the stack has endpoints to look at (in its spec, or recorded)."""
    return bool(desired.endpoints or recorded.endpoints)


@contextlib.asynccontextmanager
async def endpoint_session(
    connection: Connection,
    client: ApiClient,
    desired: DesiredState,
    recorded: Lockfile,
    secrets: Iterable[str] = (),
) -> AsyncIterator[EndpointBackend | None]:
    """The serverless control plane for this use case (None when the stack has no endpoints),
    as the composition root opens it beside `client`."""
    if not has_endpoints(desired, recorded):
        yield None
        return
    opener = connection.ports.endpoints if connection.ports is not None else None
    if opener is None:
        raise PodctlError("this podctl was wired without serverless endpoints")
    async with opener(connection, client, secrets) as api:
        yield api


async def read_endpoints(api: EndpointBackend | None, actual: ActualState) -> ActualState:
    """`actual` with the account's endpoints (one `GET /v2/serverless`), when there is an api."""
    if api is None:
        return actual
    return replace(actual, endpoints=await api.list_endpoints())


def endpoint_id_of(
    name: str, desired: DesiredState, actual: ActualState | None, recorded: Lockfile
) -> str | None:
    """The RunPod id of the stack's endpoint NAME (for endpoint jobs): from the listing when
    there is one, else the recorded id; None when it does not exist yet."""
    from reconciler.planner.endpoints import endpoint_id

    return endpoint_id(name, desired.stack, actual, recorded)


async def apply_endpoints(
    api: EndpointBackend | None,
    plan: Plan,
    desired: DesiredState,
    journal: EndpointJournal,
    *,
    secrets: Mapping[str, str],
    actual: ActualState,
    destroy: bool,
    on_event: OnEvent,
) -> tuple[Plan, list[ChangeResult]]:
    """Run the plan's endpoint changes; return the plan left for pods and jobs (without them,
    and without what needs a failed one) and the results so far (skipped ones included)."""
    from reconciler.executor.endpoints import execute_endpoints, without_endpoints

    if api is None:
        return without_endpoints(plan)[0], []
    results = await execute_endpoints(
        plan,
        desired,
        api,
        journal,
        secrets=secrets,
        actual=actual,
        destroy=destroy,
        on_event=on_event,
    )
    failed = [r.address for r in results if r.outcome is not Outcome.DONE]
    rest, skipped = without_endpoints(plan, failed)
    blocked = {*failed, *(c.address for c in skipped)}
    results += [
        ChangeResult(
            c.address,
            c.action,
            Outcome.SKIPPED,
            message="skipped because "
            + next(d for d in c.depends_on if d in blocked)
            + " did not succeed",
            pod_id=c.pod_id,
        )
        for c in skipped
    ]
    return rest, results


def extra_requests(api: EndpointBackend | None, client: ApiClient) -> int:
    """Requests the endpoint client sent on a REST client of its own (`--api graphql`)."""
    return 0 if api is None else api.own_requests


def merged(result: ApplyResult, first: list[ChangeResult]) -> ApplyResult:
    """The apply's result with the endpoint results first (the order they ran in)."""
    return replace(result, results=(*first, *result.results))


# --- import -------------------------------------------------------------------------------


def _endpoint_name(address: str) -> str:
    kind, _, name = address.partition(".")
    if kind != "endpoint" or not name:
        raise UsageError(f"{address!r} is not an endpoint address: write endpoint.NAME.")
    return name


def import_endpoint(
    connection: Connection, paths: tuple[Path, ...], address: str, endpoint_id: str
) -> EndpointRecord:
    """Record an existing endpoint (even one without podctl's markers) as an endpoint of the
    spec; the next plan shows what would change on it (an update adds the markers)."""
    from reconciler.lockfile.endpoints import record_endpoint

    name = _endpoint_name(address)
    desired = load_desired(paths)
    if name not in desired.endpoints:
        known = ", ".join(f"endpoint.{n}" for n in desired.endpoints) or "none"
        raise PodctlError(f"{address} is not in the spec (its endpoints: {known}).")
    store = open_state(connection, desired)

    async def fetch() -> object:
        async with (
            connect(connection) as client,
            endpoint_session(connection, client, desired, Lockfile()) as api,
        ):
            assert api is not None
            return await api.get_endpoint(endpoint_id)

    with stop_on_lost(), store.lock():
        lockfile = store.read()
        check_stack(lockfile, desired, store.where)
        existing = lockfile.endpoints.get(name)
        if existing is not None:
            raise PodctlError(
                f"{address} already records endpoint {existing.endpoint_id}; it is managed "
                "by podctl already (destroy or `state: absent` deletes it)."
            )
        from reconciler.model import ActualEndpoint

        found = asyncio.run(fetch())
        if not isinstance(found, ActualEndpoint):
            raise PodctlError(
                f"RunPod knows no endpoint {endpoint_id!r}: check the id (RunPod's console, "
                "or `GET /v2/serverless`)."
            )
        record = EndpointRecord(
            endpoint_id=found.endpoint_id,
            fingerprint="",  # unknown: the next plan shows each differing field as a change
            applied_at=datetime.now(UTC),
        )
        base = replace(lockfile, stack=lockfile.stack or desired.stack)
        store.write(record_endpoint(base, name, record))
    return record


# --- status -------------------------------------------------------------------------------


@dataclass(frozen=True)
class EndpointStatusRow:
    """One endpoint line of `podctl status`."""

    endpoint: str
    desired: str  # present / absent / (not in spec)
    endpoint_id: str | None
    workers: str | None  # "min-max" as RunPod has it
    health: EndpointHealth | None  # None: not asked (no endpoint) or not known

    def as_dict(self) -> dict[str, object]:
        h = self.health
        return {
            "endpoint": self.endpoint,
            "desired": self.desired,
            "endpoint_id": self.endpoint_id,
            "workers": self.workers,
            "health": None
            if h is None
            else {
                "workers": {"idle": h.workers_idle, "running": h.workers_running},
                "jobs": {
                    "in_queue": h.jobs_in_queue,
                    "in_progress": h.jobs_in_progress,
                    "completed": h.jobs_completed,
                    "failed": h.jobs_failed,
                    "retried": h.jobs_retried,
                },
            },
        }


def endpoint_status(
    connection: Connection, paths: tuple[Path, ...]
) -> tuple[EndpointStatusRow, ...]:
    """The stack's endpoints: one listing, then one `/health` per endpoint (in parallel)."""
    from reconciler.planner.endpoints import names_of

    desired = load_desired(paths)
    store = open_state(connection, desired)
    recorded = store.read()
    check_stack(recorded, desired, store.where)
    if not has_endpoints(desired, recorded):
        return ()

    async def run() -> tuple[EndpointStatusRow, ...]:
        async with (
            connect(connection) as client,
            endpoint_session(connection, client, desired, recorded) as api,
        ):
            assert api is not None
            actual = await read_endpoints(api, ActualState(pods={}))
            names = names_of(desired.stack, desired, actual, recorded)
            ids = {n: endpoint_id_of(n, desired, actual, recorded) for n in names}
            found = [i for i in ids.values() if i is not None]
            healths = await asyncio.gather(*(api.health(i) for i in found))
            by_id = dict(zip(found, healths, strict=True))
            rows = []
            for name in names:
                spec = desired.endpoints.get(name)
                the_id = ids[name]
                seen = actual.endpoints.get(the_id) if the_id else None
                rows.append(
                    EndpointStatusRow(
                        endpoint=name,
                        desired=spec.state.value if spec else "(not in spec)",
                        endpoint_id=the_id,
                        workers=f"{seen.workers_min}-{seen.workers_max}" if seen else None,
                        health=by_id.get(the_id) if the_id else None,
                    )
                )
            return tuple(rows)

    return asyncio.run(run())
