"""execute_endpoints(): a plan's endpoint changes against EndpointBackend, each outcome journaled.

Endpoints run before pods and jobs (an endpoint job needs its endpoint). No create intent is
written first: a create whose answer was lost is found by its markers (PODCTL_STACK,
PODCTL_ENDPOINT) — right after the failure here, or by the next plan, which adopts it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Protocol

from reconciler import events as ev
from reconciler.errors import PodctlError, TransientApiError
from reconciler.executor.ports import EndpointBackend
from reconciler.model import (
    ActualEndpoint,
    ActualState,
    DesiredState,
    EndpointRecord,
    EndpointSpec,
    EndpointState,
    Lockfile,
    SecretRef,
)
from reconciler.planner.endpoints import (
    endpoint_fingerprint,
    endpoint_name,
    is_endpoint,
    markers_env,
    runpod_name,
)
from reconciler.plans import Action, Change, ChangeResult, Outcome, Plan

OnEvent = Callable[[ev.Event], None]
# fields whose change rolls out a new release (the container): sent only when one changes
CONTAINER_PATHS = ("image", "disk_gb", "docker_args", "registry")
PARALLELISM = 4  # endpoints of one stack are few; RunPod's control plane is rate limited


class EndpointJournal(Protocol):
    """Where endpoint outcomes are recorded; each call is durable on return."""

    @property
    def lockfile(self) -> Lockfile: ...

    def endpoint_recorded(self, name: str, record: EndpointRecord) -> None: ...

    def endpoint_forgotten(self, name: str, endpoint_id: str | None) -> None:
        """Drop the record of `name` (when it is of `endpoint_id`, unless that is None)."""


class EndpointFailed(PodctlError):
    """One endpoint change did not work; the message is what the summary shows."""


def endpoint_env(stack: str, spec: EndpointSpec, secrets: Mapping[str, str]) -> dict[str, str]:
    """The workers' env as sent: the spec's (secrets filled in) and podctl's markers."""
    env = {
        k: secrets.get(v.from_env, "") if isinstance(v, SecretRef) else v
        for k, v in spec.env.items()
    }
    return {**env, **markers_env(stack, spec.name)}


def _secret_keys(spec: EndpointSpec) -> tuple[str, ...]:
    return tuple(sorted(k for k, v in spec.env.items() if isinstance(v, SecretRef)))


class _Run:
    def __init__(
        self,
        desired: DesiredState,
        api: EndpointBackend,
        journal: EndpointJournal,
        secrets: Mapping[str, str],
        on_event: OnEvent,
        now: Callable[[], datetime],
    ) -> None:
        self.desired = desired
        self.api = api
        self.journal = journal
        self.secrets = secrets
        self.on_event = on_event
        self.now = now
        self.lock = asyncio.Lock()  # one journal write at a time

    def note(self, change: Change, text: str) -> None:
        self.on_event(ev.Note(change.address, text))

    async def record(self, name: str, endpoint: ActualEndpoint, spec: EndpointSpec) -> None:
        earlier = self.journal.lockfile.endpoints.get(name)
        created = (
            earlier.created_at if earlier and earlier.endpoint_id == endpoint.endpoint_id else None
        )
        record = EndpointRecord(
            endpoint_id=endpoint.endpoint_id,
            fingerprint=endpoint_fingerprint(spec),
            workers_max=spec.workers_max,
            created_at=created or self.now(),
            applied_at=self.now(),
            secret_env=tuple(
                sorted({*_secret_keys(spec), *(earlier.secret_env if earlier else ())})
            ),
        )
        async with self.lock:
            self.journal.endpoint_recorded(name, record)

    async def forget(self, name: str, endpoint_id: str | None) -> None:
        async with self.lock:
            self.journal.endpoint_forgotten(name, endpoint_id)

    def spec_of(self, change: Change) -> EndpointSpec:
        spec = self.desired.endpoints.get(endpoint_name(change.address))
        if spec is None:
            raise EndpointFailed(f"{change.address} is not in the spec")
        return spec

    async def create(self, change: Change, spec: EndpointSpec) -> ActualEndpoint:
        stack = self.desired.stack
        env = endpoint_env(stack, spec, self.secrets)
        self.note(change, "creating")
        try:
            made = await self.api.create_endpoint(runpod_name(stack, spec.name), spec, env)
        except TransientApiError as exc:
            if not exc.maybe_processed:
                raise
            found = await self._find_marked(spec.name)  # the create may have happened
            if found is None:
                raise
            made = found
            self.note(
                change, f"the create's answer was lost; found {made.endpoint_id} by its markers"
            )
        await self.record(spec.name, made, spec)
        return made

    async def _find_marked(self, name: str) -> ActualEndpoint | None:
        listed = await self.api.list_endpoints()
        marked = [e for _, e in sorted(listed.items()) if e.belongs_to(self.desired.stack, name)]
        return marked[0] if marked else None

    async def update(self, change: Change, spec: EndpointSpec) -> ActualEndpoint:
        assert change.pod_id is not None
        stack = self.desired.stack
        container = any(
            f.path in CONTAINER_PATHS or f.path.startswith("env.") for f in change.fields
        )
        env = endpoint_env(stack, spec, self.secrets)
        rollout = " (a new release rolls out to the workers)" if container else ""
        self.note(change, "updating" + rollout)
        updated = await self.api.update_endpoint(
            change.pod_id, runpod_name(stack, spec.name), spec, env, container=container
        )
        await self.record(spec.name, updated, spec)
        return updated

    async def delete(self, change: Change) -> bool:
        assert change.pod_id is not None
        self.note(change, "deleting")
        gone_now = await self.api.delete_endpoint(change.pod_id)
        await self.forget(endpoint_name(change.address), change.pod_id)
        return gone_now

    async def run(self, change: Change) -> ChangeResult:
        started = time.monotonic()
        try:
            message, endpoint_id = await self._do(change)
            outcome = Outcome.DONE
        except PodctlError as exc:
            message, endpoint_id, outcome = str(exc), change.pod_id, Outcome.FAILED
        result = ChangeResult(
            change.address,
            change.action,
            outcome,
            message=message,
            pod_id=endpoint_id,
            duration_s=round(time.monotonic() - started, 3),
        )
        self.on_event(
            ev.ChangeFinished(
                result.address,
                result.action.value,
                result.outcome.value,
                result.duration_s,
                result.message,
                result.pod_id,
                None,
            )
        )
        return result

    async def _do(self, change: Change) -> tuple[str, str | None]:
        if change.action is Action.DELETE:
            gone_now = await self.delete(change)
            return ("" if gone_now else "already gone"), change.pod_id
        spec = self.spec_of(change)
        if change.action is Action.CREATE:
            return "", (await self.create(change, spec)).endpoint_id
        if change.action is Action.UPDATE:
            return "", (await self.update(change, spec)).endpoint_id
        if change.action is Action.REPLACE:
            await self.delete(change)
            return "", (await self.create(change, spec)).endpoint_id
        raise EndpointFailed(f"the executor cannot run a {change.action.value} endpoint change")


def endpoint_changes(plan: Plan) -> tuple[Change, ...]:
    return tuple(c for c in plan.changes if is_endpoint(c.address))


def without_endpoints(plan: Plan, failed: Sequence[str] = ()) -> tuple[Plan, tuple[Change, ...]]:
    """The plan for the pod executor (no endpoint change), and the changes it must skip: those
    that need (directly or through another) an endpoint change that failed."""
    from dataclasses import replace

    blocked = set(failed)
    skipped: list[Change] = []
    kept: list[Change] = []
    for c in plan.changes:
        if is_endpoint(c.address):
            continue
        if any(d in blocked for d in c.depends_on):
            blocked.add(c.address)
            skipped.append(c)
            continue
        kept.append(c)
    return replace(plan, changes=tuple(kept)), tuple(skipped)


async def execute_endpoints(
    plan: Plan,
    desired: DesiredState,
    api: EndpointBackend,
    journal: EndpointJournal,
    *,
    secrets: Mapping[str, str],
    actual: ActualState,
    destroy: bool = False,
    on_event: OnEvent = lambda _event: None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> list[ChangeResult]:
    """Run the plan's endpoint changes (a few at a time); record adopted ones and forget the
    records of endpoints that are gone and no longer wanted. Returns one result per change."""
    run = _Run(desired, api, journal, secrets, on_event, now)
    changes = endpoint_changes(plan)
    for change in changes:  # adopted (or imported and matching): recorded as is
        name = endpoint_name(change.address)
        spec = desired.endpoints.get(name)
        seen = actual.endpoints.get(change.pod_id or "")
        if change.is_noop and not change.fields and spec is not None and seen is not None:
            record = journal.lockfile.endpoints.get(name)
            fingerprint = endpoint_fingerprint(spec)
            if record is None or (record.endpoint_id, record.fingerprint) != (
                seen.endpoint_id,
                fingerprint,
            ):
                await run.record(name, seen, spec)
    for name, record in list(journal.lockfile.endpoints.items()):
        spec = desired.endpoints.get(name)
        wanted = spec is not None and spec.state is EndpointState.PRESENT and not destroy
        if record.endpoint_id not in actual.endpoints and not wanted:
            await run.forget(name, record.endpoint_id)
    limit = asyncio.Semaphore(PARALLELISM)

    async def one(change: Change) -> ChangeResult:
        async with limit:
            return await run.run(change)

    return list(await asyncio.gather(*(one(c) for c in changes if not c.is_noop)))
