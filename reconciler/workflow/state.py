"""The state use cases: `state list|show|rm|rebuild|migrate` and `import pod.NAME POD_ID`."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from reconciler.errors import LockfileError, PodctlError, UsageError
from reconciler.lockfile import forget_pod, record_pod
from reconciler.model import (
    ActualState,
    Address,
    DesiredState,
    Lockfile,
    PodRecord,
)
from reconciler.state import StateStore, is_postgres_url
from reconciler.workflow.context import (
    Connection,
    check_stack,
    connect,
    load_desired,
    open_state,
    stop_on_lost,
)


def _store(
    connection: Connection, paths: tuple[Path, ...]
) -> tuple[StateStore, DesiredState | None]:
    """The state's store, and the spec when one was given (or found) to check it against."""
    desired = load_desired(paths) if paths or connection.lockfile is None else None
    return open_state(connection, desired), desired


def _pod_name(address: str) -> str:
    name = Address.name_in(address, "pod")
    if not name:
        raise UsageError(f"{address!r} is not a pod address: write pod.NAME (e.g. pod.trainer).")
    return name


def state_read(connection: Connection, paths: tuple[Path, ...]) -> tuple[str, Lockfile]:
    store, desired = _store(connection, paths)
    if not store.exists():
        what = "state" if "://" in store.where else "lockfile"
        raise PodctlError(f"There is no {what} at {store.where} yet: nothing was applied there.")
    lockfile = store.read()
    if desired is not None:
        check_stack(lockfile, desired, store.where)
    return store.where, lockfile


def state_show(connection: Connection, paths: tuple[Path, ...], address: str) -> PodRecord:
    name = _pod_name(address)
    path, lockfile = state_read(connection, paths)
    record = lockfile.pods.get(name)
    if record is None:
        known = ", ".join(str(Address.pod(n)) for n in sorted(lockfile.pods)) or "none"
        raise PodctlError(f"{address} is not in the lockfile {path} (recorded: {known}).")
    return record


def state_rm(connection: Connection, paths: tuple[Path, ...], address: str) -> PodRecord:
    """Forget a pod (the pod itself is untouched; a later plan may adopt it by its markers)."""
    name = _pod_name(address)
    store, desired = _store(connection, paths)
    with stop_on_lost(), store.lock():
        lockfile = store.read()
        if desired is not None:
            check_stack(lockfile, desired, store.where)
        record = lockfile.pods.get(name)
        if record is None:
            raise PodctlError(f"{address} is not in the lockfile {store.where}.")
        store.write(forget_pod(lockfile, name))
    return record


def import_pod(
    connection: Connection, paths: tuple[Path, ...], address: str, pod_id: str
) -> PodRecord:
    """Record an existing pod as a pod of the spec; the next plan shows what would change."""
    name = _pod_name(address)
    desired = load_desired(paths)
    if name not in desired.pods:
        known = ", ".join(str(Address.pod(n)) for n in desired.pods) or "none"
        raise PodctlError(f"{address} is not in the spec (its pods: {known}).")
    store = open_state(connection, desired)

    async def fetch() -> object:
        async with connect(connection) as client:
            return await client.get_pod(pod_id)

    with stop_on_lost(), store.lock():
        lockfile = store.read()
        check_stack(lockfile, desired, store.where)
        existing = lockfile.pods.get(name)
        if existing is not None:
            raise PodctlError(
                f"{address} already records pod {existing.pod_id}; run "
                f"`podctl state rm {address}` first to import another one."
            )
        from reconciler.model import ActualPod

        pod = asyncio.run(fetch())
        if not isinstance(pod, ActualPod):
            raise PodctlError(f"RunPod knows no pod {pod_id!r}: check the id (`podctl status`).")
        record = PodRecord(
            pod_id=pod.pod_id,
            uid=pod.markers.uid if pod.markers else "",
            fingerprint="",  # unknown: the next plan shows each differing field as a change
            gpu_type_id=pod.gpu_type_id,
            cloud=pod.cloud,
            applied_at=datetime.now(UTC),
        )
        base = replace(lockfile, stack=lockfile.stack or desired.stack)
        store.write(record_pod(base, name, record))
    return record


@dataclass(frozen=True)
class Rebuilt:
    """What `podctl state rebuild` did."""

    path: str  # the store's `where`
    lockfile: Lockfile
    moved_to: Path | str | None  # where an unreadable lockfile was moved (never deleted)
    kept_jobs_and_keys: bool  # the old file was readable: its job ledger and host keys stay


def rebuilt_pods(stack: str, actual: ActualState, old: Lockfile) -> dict[str, PodRecord]:
    """One record per pod name the alive marked pods of `stack` carry (fingerprint unknown).

    Several pods under one name: the one the old record names (id, then uid) wins, else the
    lowest id; the next plan terminates the others as orphans.
    """
    from reconciler.planner.match import marked_pods, match_pod

    marked = marked_pods(stack, actual)
    now = datetime.now(UTC)
    records: dict[str, PodRecord] = {}
    for name in sorted(marked):
        pod = match_pod(name, actual, old, marked).pod
        if pod is None or pod.markers is None:
            continue
        previous = old.pods.get(name)
        records[name] = PodRecord(
            pod_id=pod.pod_id,
            uid=pod.markers.uid,
            fingerprint="",  # unknown: the next plan compares every field
            gpu_type_id=pod.gpu_type_id,
            cloud=pod.cloud,
            created_at=previous.created_at if previous and previous.pod_id == pod.pod_id else None,
            applied_at=now,
            secret_env=previous.secret_env if previous else (),  # names only: kept masked
        )
    return records


def state_rebuild(connection: Connection, paths: tuple[Path, ...], *, force: bool) -> Rebuilt:
    """Rebuild the lockfile from the PODCTL_* markers on the stack's actual pods.

    A readable lockfile is only rebuilt with `force` (keeping its jobs and host keys); an
    unreadable (corrupt, truncated) one is moved aside to `<name>.corrupt-<UTC time>` first.
    """
    desired = load_desired(paths)
    store = open_state(connection, desired)
    where = store.where

    async def fetch() -> ActualState:
        async with connect(connection) as client:
            return await client.list_pods()

    with stop_on_lost(), store.lock():
        old: Lockfile | None = None
        readable = False
        if store.exists():
            try:
                old = store.read()
                readable = True
            except LockfileError:
                if store.newer_format() and not force:
                    raise
        if readable and old is not None:
            check_stack(old, desired, where)
            if not force:
                raise PodctlError(
                    f"The lockfile {where} is readable ({len(old.pods)} pod(s) recorded, serial "
                    f"{old.serial}); nothing was changed. Pass --force to rebuild it from the "
                    "pods' markers anyway (its jobs and host keys are kept)."
                )
        actual = asyncio.run(fetch())  # before moving anything: an API error changes nothing
        moved_to = store.move_aside() if store.exists() and not readable else None
        base = old if readable and old is not None else Lockfile()
        new = replace(
            base,
            stack=desired.stack,
            pods=rebuilt_pods(desired.stack, actual, base),
            intents=(),
        )
        written = store.write(new)
    return Rebuilt(where, written, moved_to, readable)


@dataclass(frozen=True)
class Migrated:
    """What `podctl state migrate` did: from where to where, and what it moved."""

    source: str  # the stores' `where` (no credentials)
    target: str
    lockfile: Lockfile
    replaced: Path | str | None  # where the target's former state was kept (--force)


def _same_place(a: StateStore, b: StateStore) -> bool:
    return a.where == b.where


def state_migrate(
    connection: Connection, paths: tuple[Path, ...], to: str, *, force: bool
) -> Migrated:
    """Copy the stack's state into the store `to` names, keeping its lineage and serial.

    Both stores are locked (exclusive) for the whole move, so no apply writes in between. A
    target already holding the stack is refused unless `force`, and then its old state is
    kept aside (never deleted). The copy is read back through a fresh store and compared.
    """
    from reconciler.lockfile import dumps
    from reconciler.state import StateSettings, open_store

    desired = load_desired(paths)
    source = open_state(connection, desired)
    settings = StateSettings(
        to if is_postgres_url(to) else Path(to),
        stack=desired.stack,
        lock_timeout=connection.lock_timeout,
        command=connection.command,
    )
    target = open_store(settings)
    if _same_place(source, target):
        raise UsageError(
            f"--to names the store the state is already in ({source.where}): "
            "give the other store (a lockfile path or a postgresql:// URL)."
        )
    with stop_on_lost(), source.lock():
        if not source.exists():
            raise PodctlError(
                f"There is no state of stack {desired.stack} at {source.where}: nothing to "
                "migrate (pass --state or --lockfile to name where it is)."
            )
        lockfile = source.read()
        check_stack(lockfile, desired, source.where)
        with target.lock():
            replaced: Path | str | None = None
            if target.exists():
                held = _described(target)
                if not force:
                    raise PodctlError(
                        f"{target.where} already holds stack {desired.stack} ({held}); nothing "
                        "was changed. Pass --force to replace it (its state is kept aside, not "
                        "deleted)."
                    )
                replaced = target.move_aside()
            # an empty store keeps the lineage and stores serial + 1: give it serial - 1
            target.write(replace(lockfile, serial=lockfile.serial - 1))
        copied = open_store(settings).read()
    if (copied.lineage, copied.serial) != (lockfile.lineage, lockfile.serial) or dumps(
        copied
    ) != dumps(lockfile):
        raise LockfileError(
            f"The copy at {target.where} differs from {source.where} after the migration "
            f"(lineage/serial {copied.lineage}/{copied.serial}, not "
            f"{lockfile.lineage}/{lockfile.serial}); keep using {source.where}."
        )
    return Migrated(source.where, target.where, copied, replaced)


def _described(store: StateStore) -> str:
    try:
        held = store.read()
    except LockfileError:
        return "an unreadable state"
    return f"serial {held.serial}, {len(held.pods)} pod(s), {len(held.jobs)} job(s)"
