"""Pure helpers that record intents and outcomes: Lockfile -> Lockfile, no I/O."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime

from reconciler.model import CreateIntent, JobRecord, Lockfile, PodRecord


def record_intent(
    lockfile: Lockfile, *, stack: str, pod: str, uid: str, since: datetime
) -> Lockfile:
    """Before a create: remember its uid, so a lost answer can be found by its marker."""
    intent = CreateIntent(stack=stack, pod=pod, uid=uid, since=since)
    kept = tuple(i for i in lockfile.intents if i.uid != uid)
    return replace(lockfile, stack=lockfile.stack or stack, intents=(*kept, intent))


def clear_intent(lockfile: Lockfile, uid: str) -> Lockfile:
    """After a create failed for sure (or its pod was found): forget the intent."""
    return replace(lockfile, intents=tuple(i for i in lockfile.intents if i.uid != uid))


def record_pod(lockfile: Lockfile, name: str, record: PodRecord) -> Lockfile:
    """After a create, adopt, resume or edit: the pod record; its create intent is settled."""
    pods = {**lockfile.pods, name: record}
    return clear_intent(replace(lockfile, pods=pods), record.uid)


def forget_pod(lockfile: Lockfile, name: str) -> Lockfile:
    """After a terminate: drop the pod's record and its pinned host keys."""
    record = lockfile.pods.get(name)
    pods = {k: v for k, v in lockfile.pods.items() if k != name}
    keys = dict(lockfile.host_keys)
    if record is not None:
        keys.pop(record.pod_id, None)
    return replace(lockfile, pods=pods, host_keys=keys)


def with_secret_env(record: PodRecord, keys: Iterable[str]) -> PodRecord:
    """The record with these env keys added to those it says podctl filled from from_env."""
    names = tuple(sorted({*record.secret_env, *keys}))
    return record if names == record.secret_env else replace(record, secret_env=names)


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with each of `secrets` replaced by `***` (a job's message quoting its env)."""
    for secret in sorted(secrets, key=len, reverse=True):
        if secret:
            text = text.replace(secret, "***")
    return text


def record_job(lockfile: Lockfile, name: str, record: JobRecord) -> Lockfile:
    return replace(lockfile, jobs={**lockfile.jobs, name: record})


def record_host_keys(lockfile: Lockfile, pod_id: str, keys: Iterable[str]) -> Lockfile:
    """Pin a pod's SSH host keys (on first use)."""
    return replace(lockfile, host_keys={**lockfile.host_keys, pod_id: tuple(keys)})
