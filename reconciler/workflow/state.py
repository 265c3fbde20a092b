"""The lockfile use cases: `state list|show|rm` and `import pod.NAME POD_ID`."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from reconciler.errors import PodctlError, UsageError
from reconciler.lockfile import LockfileStore, forget_pod, record_pod
from reconciler.model import Lockfile, PodRecord
from reconciler.workflow.context import (
    Connection,
    check_stack,
    connect,
    load_desired,
    lockfile_path,
)


def _store(connection: Connection, paths: tuple[Path, ...]) -> LockfileStore:
    desired = load_desired(paths) if paths or connection.lockfile is None else None
    path = lockfile_path(connection, desired)
    return LockfileStore(path, lock_timeout=connection.lock_timeout, command=connection.command)


def _pod_name(address: str) -> str:
    kind, _, name = address.partition(".")
    if kind != "pod" or not name:
        raise UsageError(f"{address!r} is not a pod address: write pod.NAME (e.g. pod.trainer).")
    return name


def state_read(connection: Connection, paths: tuple[Path, ...]) -> tuple[Path, Lockfile]:
    store = _store(connection, paths)
    if not store.path.exists():
        raise PodctlError(f"There is no lockfile at {store.path} yet: nothing was applied there.")
    return store.path, store.read()


def state_show(connection: Connection, paths: tuple[Path, ...], address: str) -> PodRecord:
    name = _pod_name(address)
    path, lockfile = state_read(connection, paths)
    record = lockfile.pods.get(name)
    if record is None:
        known = ", ".join(f"pod.{n}" for n in sorted(lockfile.pods)) or "none"
        raise PodctlError(f"{address} is not in the lockfile {path} (recorded: {known}).")
    return record


def state_rm(connection: Connection, paths: tuple[Path, ...], address: str) -> PodRecord:
    """Forget a pod (the pod itself is untouched; a later plan may adopt it by its markers)."""
    name = _pod_name(address)
    store = _store(connection, paths)
    with store.lock():
        lockfile = store.read()
        record = lockfile.pods.get(name)
        if record is None:
            raise PodctlError(f"{address} is not in the lockfile {store.path}.")
        store.write(forget_pod(lockfile, name))
    return record


def import_pod(
    connection: Connection, paths: tuple[Path, ...], address: str, pod_id: str
) -> PodRecord:
    """Record an existing pod as a pod of the spec; the next plan shows what would change."""
    name = _pod_name(address)
    desired = load_desired(paths)
    if name not in desired.pods:
        known = ", ".join(f"pod.{n}" for n in desired.pods) or "none"
        raise PodctlError(f"{address} is not in the spec (its pods: {known}).")
    path = lockfile_path(connection, desired)
    store = LockfileStore(path, lock_timeout=connection.lock_timeout, command=connection.command)

    async def fetch() -> object:
        async with connect(connection) as client:
            return await client.get_pod(pod_id)

    with store.lock():
        lockfile = store.read()
        check_stack(lockfile, desired, path)
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
