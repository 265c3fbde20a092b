"""The plan, apply and destroy use cases: read the three states under the lock, plan, execute."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shlex
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from reconciler.atomic import atomic_write
from reconciler.errors import LockHeldError, PodctlError
from reconciler.events import Event, LogLine
from reconciler.model import (
    ActualState,
    Address,
    CloudType,
    DesiredState,
    GpuOffer,
    Lockfile,
    PodStatus,
)
from reconciler.plans import Action, ApplyResult, Billing, Outcome, Plan
from reconciler.state import LocalState, StateStore
from reconciler.workflow import aio
from reconciler.workflow.context import (
    Connection,
    check_secrets_unshown,
    check_stack,
    connect,
    key_path,
    load_desired,
    local_state,
    open_state,
    resolve_secrets,
    secret_env_keys,
    stop_on_lost,
)
from reconciler.workflow.volumes import check_volumes

if TYPE_CHECKING:
    from reconciler.events import Event
    from reconciler.executor.watchdog import WatchdogWiring
    from reconciler.planner.spend import Spend
    from reconciler.workflow.context import ApiClient
    from reconciler.workflow.joblogs import LocalLogs
    from reconciler.workflow.journal import LockfileJournal
    from reconciler.workflow.shells import SshShells

Confirm = Callable[[Plan], bool]
QUIET_SSH_TIMEOUT_S = 30.0  # a quiet apply arming watchdogs waits this long for a pod's SSH
OnEvent = Callable[["Event"], None]  # the events module is imported by apply only (~10 ms)
INTERRUPT_LISTING_S = 10.0  # after Ctrl-C, the listing of what is left running waits this long


class PlanRefusedError(PodctlError):
    """The plan has errors (protect, spot bid...) or a saved plan is stale: nothing is applied."""


@dataclass(frozen=True)
class PlanRequest:
    """What `podctl plan` / `apply` / `destroy` were asked."""

    paths: tuple[Path, ...] = ()
    targets: frozenset[str] = frozenset()
    destroy: bool = False
    force: bool = False
    ignore_budget: bool = False  # apply --ignore-budget: past the budget's limits, once


@dataclass(frozen=True)
class ApplyRequest:
    """Options only apply has."""

    plan_file: Path | None = None
    parallelism: int = 10
    timeout_s: float = 600.0
    poll_initial_s: float = 1.0
    poll_max_s: float = 5.0
    # reconcile: fetch GPU offers only when the plan needs a placement (create, replace,
    # resume), so a quiet round costs one request; and stop starting changes on a signal
    lazy_offers: bool = False
    should_start: Callable[[], bool] | None = None
    heartbeat_s: float | None = None  # a StillRunning event per running change this often
    cancel_on_interrupt: bool = False  # Ctrl-C: /cancel the endpoint jobs podctl started
    ask_cancel: Callable[[int], bool] | None = None  # Ctrl-C: ask whether to (a terminal)


@dataclass(frozen=True)
class Applied:
    """What an apply ended with: the plan it ran (and the result, None if nothing ran)."""

    plan: Plan
    result: ApplyResult | None
    lockfile: str  # the state store's `where` (the lockfile's path for a lockfile)
    requests: int = 0  # HTTP requests sent to the API (retries included)
    next_deadline: datetime | None = None  # the nearest max_lifetime still ahead


async def _read_offers(
    client: ApiClient, desired: DesiredState
) -> Mapping[CloudType, Mapping[str, GpuOffer]]:
    """Every GPU type RunPod lists (not only the spec's): the planner names unknown ones.

    CPU flavors (REST v2's CPU catalog, GraphQL's cpuFlavors) join the secure cloud's offers
    when the stack has a CPU pod: one request more.
    """
    gpu_types = {t for pod in desired.pods.values() for t in pod.gpu_types}
    offers: dict[CloudType, dict[str, GpuOffer]] = (
        {cloud: dict(by_id) for cloud, by_id in (await client.gpu_offers()).items()}
        if gpu_types
        else {}
    )
    if any(pod.is_cpu for pod in desired.pods.values()):
        offers.setdefault(CloudType.SECURE, {}).update(await client.cpu_offers())
    return offers


async def _spend(
    connection: Connection,
    client: ApiClient,
    desired: DesiredState,
    actual: ActualState,
    recorded: Lockfile,
    request: PlanRequest,
) -> Spend | None:
    """budget.max_usd_total's input: one billing request, only when the spec sets it."""
    from reconciler.workflow.billing import read_spend

    if request.destroy:
        return None
    return await read_spend(connection, client, desired, actual, recorded)


def _needs_placement(plan: Plan) -> bool:
    placing = (Action.CREATE, Action.REPLACE, Action.RESUME)
    return any(c.action in placing for c in plan.actionable)


def _likely_placing(desired: DesiredState, recorded: Lockfile, request: PlanRequest) -> bool:
    """Whether a plan will likely place a pod: a desired GPU pod the lockfile has no record of
    (it will be created, unless a pod carrying its markers is found)."""
    if request.destroy:
        return False
    return any(p.gpu_types and n not in recorded.pods for n, p in desired.pods.items())


def _early_offers(
    client: ApiClient, desired: DesiredState, recorded: Lockfile, request: PlanRequest
) -> asyncio.Future[Mapping[CloudType, Mapping[str, GpuOffer]]] | None:
    """The GPU offers, requested now (beside the pod list) when a pod will likely be placed.

    Apply only: a plan asks for offers once it knows a pod is to be placed (one request when
    nothing is), and a failing API then shows only the listing's retries.
    """
    if not _likely_placing(desired, recorded, request):
        return None
    offers = asyncio.ensure_future(_read_offers(client, desired))
    # a failure shows where it is awaited; unawaited (the listing failed first), it stays quiet
    offers.add_done_callback(lambda f: f.cancelled() or f.exception())
    return offers


async def _plan_lazily(
    client: ApiClient,
    desired: DesiredState,
    actual: ActualState,
    recorded: Lockfile,
    secrets: Mapping[str, str],
    request: PlanRequest,
    uploads: Mapping[str, str],
    early: asyncio.Future[Mapping[CloudType, Mapping[str, GpuOffer]]] | None = None,
    spend: Spend | None = None,
) -> Plan:
    """Plan with the offers requested early, if any; else plan without GPU offers, and fetch
    them and plan again only when a pod must be placed."""
    api = client.api_name
    if early is not None:
        offers = await early
        planned = _compute(
            desired, actual, recorded, offers, secrets, request, uploads, api=api, spend=spend
        )
        return await check_volumes(client, desired, planned, offers)
    fresh = _compute(desired, actual, recorded, {}, secrets, request, uploads, api=api, spend=spend)
    if not _needs_placement(fresh):
        return fresh
    offers = await _read_offers(client, desired)
    placed = _compute(
        desired, actual, recorded, offers, secrets, request, uploads, api=api, spend=spend
    )
    return await check_volumes(client, desired, placed, offers)


def _compute(
    desired: DesiredState,
    actual: ActualState,
    recorded: Lockfile,
    offers: Mapping[CloudType, Mapping[str, GpuOffer]],
    secrets: Mapping[str, str],
    request: PlanRequest,
    uploads: Mapping[str, str] | None = None,
    *,
    api: str = "graphql",
    spend: Spend | None = None,
) -> Plan:
    from reconciler import planner
    from reconciler.workflow.apis import api_findings

    result = planner.plan(
        desired,
        actual,
        recorded,
        offers=offers,
        secrets=secrets,
        targets=request.targets,
        destroy=request.destroy,
        force=request.force,
        ignore_budget=request.ignore_budget,
        job_uploads=uploads if uploads is not None else _uploads(desired, request),
        now=datetime.now(UTC),
        spend=spend,
    )
    files = tuple(str(Path(f).resolve()) for f in desired.files)
    errors, warnings = api_findings(desired, api, destroy=request.destroy, targets=request.targets)
    return replace(
        result,
        errors=(*result.errors, *errors),
        warnings=(*result.warnings, *warnings),
        spec_files=files,  # absolute: `apply plan.json` may run from another folder
        created_at=result.created_at or datetime.now(UTC).isoformat(timespec="seconds"),
    )


def _uploads(desired: DesiredState, request: PlanRequest) -> dict[str, str]:
    from reconciler.workflow.uploads import upload_digests

    return {} if request.destroy else upload_digests(desired)


def make_plan(connection: Connection, request: PlanRequest) -> tuple[Plan, str]:
    """`podctl plan`: the plan, computed under the (shared) lock; changes nothing.

    A plan with nothing to place (no create, replace or resume) costs one request: GPU offers
    are fetched only once the plan must place a pod. The pod list is requested while the spec
    is read (in a worker thread), so the API's answer time overlaps podctl's own work; an error
    of the spec still comes first.
    """
    if connection.sandbox:  # a bad spec must not start a sandbox: check it first
        desired = load_desired(request.paths)
        check_secrets_unshown(desired, resolve_secrets(desired, connection.env))
        return aio.run(_plan(connection, request, desired))
    return aio.run(_plan(connection, request, None))


async def _plan(
    connection: Connection, request: PlanRequest, desired: DesiredState | None
) -> tuple[Plan, str]:
    try:
        client: ApiClient | None = connect(connection)
        refused: PodctlError | None = None
    except PodctlError as exc:  # no API key...: told once the spec is known to be good
        client, refused = None, exc
    listing = asyncio.ensure_future(client.list_pods()) if client is not None else None
    if listing is not None:  # a failure shows where it is awaited, and only there
        listing.add_done_callback(lambda f: f.cancelled() or f.exception())
    try:
        if desired is None:
            desired = await asyncio.to_thread(load_desired, request.paths)
        secrets = resolve_secrets(desired, connection.env)
        check_secrets_unshown(desired, secrets)
        if refused is not None:
            raise refused
        assert client is not None and listing is not None
        store = open_state(connection, desired)
    except BaseException:
        if listing is not None:
            listing.cancel()
            with contextlib.suppress(BaseException):
                await listing
        if client is not None:
            await client.__aexit__(None, None, None)
        raise
    async with client:
        client.hide(secrets.values())
        lock_path = getattr(store, "lock_path", None)  # a lockfile store's flock sidecar
        if isinstance(lock_path, Path) and not store.exists() and not lock_path.exists():
            # nothing recorded yet: a read-only plan leaves no lock file behind
            recorded = store.read()
            actual = await listing
            return await _planned(
                connection, client, desired, actual, recorded, secrets, request
            ), store.where
        try:
            store.acquire(shared=True, timeout=0)
        except LockHeldError:
            listing.cancel()  # listed before an apply (still) holding the lock: list again
            store.acquire(shared=True)
            listing = asyncio.ensure_future(client.list_pods())
        try:
            recorded = store.read()
            check_stack(recorded, desired, store.where)
            actual = await listing
            return await _planned(
                connection, client, desired, actual, recorded, secrets, request
            ), store.where
        finally:
            store.release()


async def _planned(
    connection: Connection,
    client: ApiClient,
    desired: DesiredState,
    actual: ActualState,
    recorded: Lockfile,
    secrets: Mapping[str, str],
    request: PlanRequest,
) -> Plan:
    from reconciler.workflow.endpoints import endpoint_session, read_endpoints

    async with endpoint_session(connection, client, desired, recorded, secrets.values()) as eps:
        actual = await read_endpoints(eps, actual)
        uploads = _uploads(desired, request)
        spend = await _spend(connection, client, desired, actual, recorded, request)
        fresh = await _plan_lazily(
            client, desired, actual, recorded, secrets, request, uploads, spend=spend
        )
        return _with_endpoint_jobs(fresh, desired, recorded, connection, request)


def save_plan(plan: Plan, path: Path) -> None:
    """`plan -out FILE`: the plan as JSON, 0600 (no secret is ever in a plan)."""
    from reconciler.plans import plan_to_dict

    atomic_write(path, json.dumps(plan_to_dict(plan), indent=2, sort_keys=True) + "\n")


def load_plan(path: Path) -> Plan:
    from reconciler.errors import PlanFileError
    from reconciler.plans import plan_from_dict

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PlanFileError(f"The plan file {path} does not exist.") from None
    except (OSError, ValueError) as exc:
        raise PlanFileError(
            f"The plan file {path} is not a podctl plan (not JSON: {exc}). "
            "Make one with `podctl plan -out FILE`."
        ) from None
    except RecursionError:
        raise PlanFileError(
            f"The plan file {path} is not a podctl plan (its JSON is nested too deeply). "
            "Make one with `podctl plan -out FILE`."
        ) from None
    return plan_from_dict(data)


def apply(
    connection: Connection,
    request: PlanRequest,
    options: ApplyRequest,
    *,
    confirm: Confirm,
    on_event: OnEvent,
    show_plan: Callable[[Plan], None],
) -> Applied:
    """`podctl apply` / `destroy`: plan (or check a saved plan), confirm, execute, record."""
    saved = load_plan(options.plan_file) if options.plan_file is not None else None
    if saved is not None:
        missing = [f for f in saved.spec_files if not os.path.exists(f)]
        if missing:
            raise PlanRefusedError(
                "The saved plan's spec files are gone: "
                + ", ".join(missing)
                + ". Make a new plan with `podctl plan -out FILE`."
            )
        request = replace(
            request,
            paths=tuple(Path(f) for f in saved.spec_files),
            targets=frozenset(saved.targets),
        )
    desired = load_desired(request.paths)
    secrets = resolve_secrets(desired, connection.env)
    check_secrets_unshown(desired, secrets)  # before any mutation, not after
    store = open_state(connection, desired)
    with stop_on_lost(), store.lock():
        recorded = store.read()
        check_stack(recorded, desired, store.where)
        # reconcile (should_start set) exits at once on its second signal: no listing then
        guard = (
            _left_running_on_interrupt(connection, desired, secrets)
            if options.should_start is None
            else contextlib.nullcontext()
        )
        with guard:
            return aio.run(
                _apply_locked(
                    connection,
                    request,
                    options,
                    desired,
                    secrets,
                    store,
                    recorded,
                    saved,
                    confirm=confirm,
                    on_event=on_event,
                    show_plan=show_plan,
                )
            )


class ApplyInterrupted(KeyboardInterrupt):
    """Ctrl-C during apply; its text names the pods left running and how to finish."""


@contextlib.contextmanager
def _left_running_on_interrupt(
    connection: Connection, desired: DesiredState, secrets: Mapping[str, str]
) -> Iterator[None]:
    """On Ctrl-C: one listing (10 s at most) says which of the stack's pods bill on."""
    try:
        yield
    except ApplyInterrupted:
        raise
    except KeyboardInterrupt:
        raise ApplyInterrupted(interrupted_text(connection, desired, secrets)) from None


def interrupted_text(
    connection: Connection, desired: DesiredState, secrets: Mapping[str, str]
) -> str:
    from reconciler.render.summary import left_running_lines

    files = " ".join(shlex.quote(f) for f in desired.files) or "SPEC"
    head = "Interrupted: the changes under way stopped; jobs already started go on on their pods."
    finish = (
        f"Run `podctl apply -f {files}` to finish (it reattaches to running jobs), "
        f"or `podctl destroy -f {files}` to tear the stack down."
    )

    async def listing() -> ActualState:
        async with connect(connection) as client:
            client.hide(secrets.values())
            return await asyncio.wait_for(client.list_pods(), INTERRUPT_LISTING_S)

    try:
        actual = aio.run(listing())
    except (PodctlError, TimeoutError, OSError, KeyboardInterrupt):
        return "\n".join(
            [head, "The pods left running could not be listed: run `podctl status`.", finish]
        )
    running = tuple(
        Billing(str(Address.pod(p.markers.pod if p.markers else p.name)), p.pod_id, p.cost_per_hr)
        for p in actual.of_stack(desired.stack)
        if p.desired_status in (PodStatus.RUNNING, PodStatus.CREATED, PodStatus.RESTARTING)
    )
    return "\n".join([head, *left_running_lines(running), finish])


async def _apply_locked(
    connection: Connection,
    request: PlanRequest,
    options: ApplyRequest,
    desired: DesiredState,
    secrets: Mapping[str, str],
    store: StateStore,
    recorded: Lockfile,
    saved: Plan | None,
    *,
    confirm: Confirm,
    on_event: OnEvent,
    show_plan: Callable[[Plan], None],
) -> Applied:
    from reconciler.executor import PollPolicy, execute
    from reconciler.planner import stale_reasons
    from reconciler.planner.forget import forgotten
    from reconciler.ssh import quiet_orphan_reads
    from reconciler.workflow.endpoints import (
        apply_endpoints,
        endpoint_session,
        extra_requests,
        merged,
        read_endpoints,
    )
    from reconciler.workflow.journal import LockfileJournal

    asyncio.get_running_loop().set_exception_handler(quiet_orphan_reads)
    async with (
        connect(connection) as client,
        endpoint_session(connection, client, desired, recorded, secrets.values()) as endpoints,
    ):
        client.hide(secrets.values())  # a server quoting a create back must not show them
        uploads = _uploads(desired, request)
        # offers beside the pod list when a pod will likely be placed; reconcile never guesses
        early = None if options.lazy_offers else _early_offers(client, desired, recorded, request)
        try:
            actual = await read_endpoints(endpoints, await client.list_pods())
            spend = await _spend(connection, client, desired, actual, recorded, request)
        except BaseException:
            if early is not None:
                early.cancel()
            raise
        fresh = await _plan_lazily(
            client, desired, actual, recorded, secrets, request, uploads, early, spend
        )
        fresh = _with_endpoint_jobs(fresh, desired, recorded, connection, request)
        the_plan = fresh
        gone = forgotten(
            desired, actual, recorded, destroy=request.destroy, targets=request.targets
        )
        if saved is not None:
            reasons = stale_reasons(saved, fresh)
            if reasons:
                raise PlanRefusedError(
                    f"The saved plan {options.plan_file} is stale; nothing was changed:\n"
                    + "\n".join(f"  - {r}" for r in reasons)
                    + "\nMake a new plan with `podctl plan -out FILE`."
                )
            the_plan = saved
        # a saved plan made over another --api may lack what this API refuses (spot on REST)
        errors = the_plan.errors or fresh.errors
        if errors:
            raise PlanRefusedError(
                "The plan has errors; nothing was changed:\n"
                + "\n".join(f"  - {e}" for e in errors)
            )
        show_plan(the_plan)
        if not the_plan.has_changes:
            journal = LockfileJournal(
                store,
                recorded,
                stack=desired.stack,
                actual=actual,
                forbidden=secrets.values(),
                secret_env=secret_env_keys(desired),
            )
            await journal.commit(journal.settle_intents)  # in the worker thread, as all writes
            # record adopted pods even when nothing else changes; arm unarmed watchdogs
            local = local_state(connection, desired)
            quiet = _watchdog_wiring(connection, desired, local, journal, client, options)
            pod_plan, _ = await apply_endpoints(  # records adopted endpoints
                endpoints,
                the_plan,
                desired,
                journal,
                secrets=secrets,
                actual=actual,
                destroy=request.destroy,
                on_event=on_event,
            )
            await execute(
                pod_plan,
                desired,
                client,
                journal,
                secrets=secrets,
                actual=actual,
                shells=quiet[0] if quiet else None,
                watchdog=quiet[1] if quiet else None,
                on_event=on_event,
            )
            await journal.commit(lambda: journal.forget(gone))
            deadline = _next_deadline(desired, journal.lockfile)
            return Applied(
                the_plan,
                None,
                store.where,
                client.request_count + extra_requests(endpoints, client),
                deadline,
            )
        if saved is None and not confirm(the_plan):
            raise PodctlError("Apply cancelled; nothing was changed.")
        journal = LockfileJournal(
            store,
            recorded,
            stack=desired.stack,
            actual=actual,
            forbidden=secrets.values(),
            secret_env=secret_env_keys(desired),
        )
        await journal.commit(journal.settle_intents)
        jobs = _job_wiring(
            connection,
            desired,
            secrets,
            uploads,
            local_state(connection, desired),
            journal,
            client,
            options,
        )

        def on_job_line(job: str, line: str) -> None:
            jobs.logs.line(job, line)
            on_event(LogLine(str(Address.job(job)), line))

        from reconciler.workflow.endpoint_jobs import endpoint_wiring

        endpoint_runs = endpoint_wiring(
            connection,
            desired,
            lambda: journal.lockfile,
            local_state(connection, desired),
            cancel_on_interrupt=options.cancel_on_interrupt,
            ask_cancel=options.ask_cancel,
        )
        try:
            pod_plan, first = await apply_endpoints(
                endpoints,
                the_plan,
                desired,
                journal,
                secrets=secrets,
                actual=actual,
                destroy=request.destroy,
                on_event=on_event,
            )
            result = await execute(
                pod_plan,
                desired,
                client,
                journal,
                parallelism=options.parallelism,
                timeout_s=options.timeout_s,
                secrets=secrets,
                on_event=on_event,
                actual=actual,
                poll=PollPolicy(initial_s=options.poll_initial_s, max_s=options.poll_max_s),
                public_key=jobs.public_key,
                shells=jobs.shells,
                recorded_jobs=recorded.jobs,
                job_inputs=jobs.inputs,
                on_job_line=on_job_line,
                should_start=options.should_start,
                heartbeat_s=options.heartbeat_s,
                watchdog=_watchdog(desired, client, journal),
                endpoint_jobs=endpoint_runs[0] if endpoint_runs else None,
            )
            result = merged(result, first)
            for done in result.results:  # a run that printed nothing still leaves its log
                if done.action is Action.RUN_JOB and done.outcome is Outcome.DONE:
                    jobs.logs.touch(Address.strip(done.address, "job"))
        finally:
            jobs.logs.close()
            if endpoint_runs is not None:
                await endpoint_runs[1].aclose()
        await journal.commit(lambda: journal.forget(gone))
        deadline = _next_deadline(desired, journal.lockfile)
        return Applied(
            the_plan,
            result,
            store.where,
            client.request_count + extra_requests(endpoints, client),
            deadline,
        )


def _with_endpoint_jobs(
    plan: Plan,
    desired: DesiredState,
    recorded: Lockfile,
    connection: Connection,
    request: PlanRequest,
) -> Plan:
    from reconciler.workflow.endpoint_jobs import with_endpoint_jobs

    local = local_state(connection, desired)
    return with_endpoint_jobs(plan, desired, recorded, local, destroy=request.destroy)


def _next_deadline(desired: DesiredState, recorded: Lockfile) -> datetime | None:
    from reconciler.planner.lifetime import next_deadline

    return next_deadline(desired.pods.values(), recorded, datetime.now(UTC))


@dataclass
class _JobWiring:
    """What an apply needs to run jobs: the stack key, SSH, fingerprint inputs, local logs."""

    public_key: str | None
    shells: SshShells | None
    inputs: dict[str, dict[str, str]]
    logs: LocalLogs


def _job_wiring(
    connection: Connection,
    desired: DesiredState,
    secrets: Mapping[str, str],
    uploads: Mapping[str, str],
    local: LocalState,
    journal: LockfileJournal,
    client: ApiClient,
    options: ApplyRequest,
) -> _JobWiring:
    from reconciler.planner.jobs import job_prints
    from reconciler.workflow.joblogs import LocalLogs

    logs = LocalLogs(local.job_logs)
    if not desired.jobs and not _lifetimes(desired):
        return _JobWiring(None, None, {}, logs)
    from reconciler.ssh import ensure_stack_key
    from reconciler.workflow.shells import SharedListing, SshShells

    key = ensure_stack_key(key_path(connection, desired, local))

    listing = SharedListing(client.list_pods, max_age_s=options.poll_initial_s)
    shells = SshShells(
        key,
        journal,
        refresh=listing.pod,
        timeout_s=options.timeout_s,
        initial_s=options.poll_initial_s,
        max_s=options.poll_max_s,
    )
    prints = job_prints(desired, secrets, uploads)
    inputs = {name: dict(p.inputs) for name, p in prints.items()}
    return _JobWiring(key.public_text, shells, inputs, logs)


def _lifetimes(desired: DesiredState) -> bool:
    """Whether a pod of the stack has a max_lifetime or idle_timeout (a watchdog, over SSH)."""
    return any(
        p.max_lifetime_s is not None or p.idle_timeout_s is not None for p in desired.pods.values()
    )


def _watchdog(
    desired: DesiredState, client: ApiClient, journal: LockfileJournal
) -> WatchdogWiring | None:
    from reconciler.executor.watchdog import WatchdogWiring

    if not _lifetimes(desired):
        return None
    return WatchdogWiring(api_url=client.graphql_url, records=lambda: journal.lockfile.pods)


def _watchdog_wiring(
    connection: Connection,
    desired: DesiredState,
    local: LocalState,
    journal: LockfileJournal,
    client: ApiClient,
    options: ApplyRequest,
) -> tuple[SshShells, WatchdogWiring] | None:
    """SSH and the watchdog wiring for an apply with no changes, when a pod has max_lifetime."""
    wiring = _watchdog(desired, client, journal)
    if wiring is None:
        return None
    from reconciler.ssh import ensure_stack_key
    from reconciler.workflow.shells import SharedListing, SshShells

    key = ensure_stack_key(key_path(connection, desired, local))
    listing = SharedListing(client.list_pods, max_age_s=options.poll_initial_s)
    shells = SshShells(
        key,
        journal,
        refresh=listing.pod,
        timeout_s=min(options.timeout_s, QUIET_SSH_TIMEOUT_S),
        initial_s=options.poll_initial_s,
        max_s=options.poll_max_s,
    )
    return shells, wiring
