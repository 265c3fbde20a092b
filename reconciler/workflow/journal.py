"""LockfileJournal: the executor's Journal; outcomes that complete together share one write."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from datetime import UTC, datetime

from reconciler.lockfile import (
    clear_intent,
    forget_pod,
    record_host_keys,
    record_intent,
    record_job,
    record_pod,
    redact,
    with_secret_env,
)
from reconciler.lockfile.endpoints import forget_endpoint, record_endpoint
from reconciler.model import (
    ActualState,
    EndpointRecord,
    JobRecord,
    Lockfile,
    PodRecord,
    WatchdogArming,
    created_marker,
)
from reconciler.state import StateStore

MIN_GUARDED_SECRET = 6  # shorter from_env values ("1", "true") are not substring-checked


class LockfileJournal:
    """Holds the latest Lockfile and writes it (atomic, 0600) to the store.

    A method called directly writes before it returns. Under `commit` (the executor's way),
    the methods only change the Lockfile in memory and `commit` returns once a store write
    holding the change has finished: the changes of every commit that arrives while a write
    is under way go into the next one, so a wave of parallel changes costs one write (and one
    fsync) instead of one each. Writes run in a worker thread, off the event loop, one at a
    time, each holding everything recorded before it started.
    """

    _lockfile: Lockfile

    def __init__(
        self,
        store: StateStore,
        recorded: Lockfile,
        *,
        stack: str,
        actual: ActualState,
        forbidden: Iterable[str] = (),
        secret_env: Mapping[str, Iterable[str]] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        # the store refuses a lockfile holding one of these in the fields env-derived text can
        # reach (job messages); a value this short would match by chance
        self.forbidden = tuple(v for v in forbidden if len(v) >= MIN_GUARDED_SECRET)
        # pod records set under `commit`, not yet folded into `lockfile`: a commit recording
        # N pods (an adoption) costs O(N), not N copies of the whole record table
        self._staged: dict[str, PodRecord] = {}
        # a secret an older podctl let into a job's message is masked with the next write,
        # so the store's guard never refuses a write after a mutation for it
        self.lockfile = self._redacted(recorded)
        self.stack = stack
        self.actual = actual
        # pod name -> the env keys its spec fills from from_env, recorded with each pod record
        self.secret_env = {pod: tuple(keys) for pod, keys in (secret_env or {}).items()}
        self.clock = clock
        self._stored = recorded  # what the store holds: its lineage and serial
        self._written = recorded  # the Lockfile `_stored` was written from
        self._deferring = 0  # > 0 inside `commit`: record in memory only
        self._recorded = 0  # changes recorded so far
        self._durable = 0  # of which the store holds this many
        self._flushing: asyncio.Future[None] | None = None
        self._io = threading.Lock()  # one store write at a time, whichever thread makes it

    @property
    def lockfile(self) -> Lockfile:
        """The latest Lockfile: what the store holds plus what is recorded and not yet written."""
        if self._staged:
            staged, self._staged = self._staged, {}
            uids = {r.uid for r in staged.values()}
            base = self._lockfile
            self._lockfile = replace(
                base,
                stack=self.stack,
                pods={**base.pods, **staged},
                intents=tuple(i for i in base.intents if i.uid not in uids),
            )
        return self._lockfile

    @lockfile.setter
    def lockfile(self, value: Lockfile) -> None:
        self._staged = {}
        self._lockfile = value

    def _record_of(self, pod: str) -> PodRecord | None:
        """The pod's latest record, staged or not (without folding the staged ones in)."""
        staged = self._staged.get(pod)
        return staged if staged is not None else self._lockfile.pods.get(pod)

    def _set_pod(self, pod: str, record: PodRecord) -> None:
        """Record the pod's record (settling its create intent), as `record_pod` does."""
        if not self._deferring:
            self._write(record_pod(replace(self.lockfile, stack=self.stack), pod, record))
            return
        self._staged[pod] = record
        self._recorded += 1

    def _redacted(self, lockfile: Lockfile) -> Lockfile:
        jobs = {
            name: replace(r, message=redact(r.message, self.forbidden))
            for name, r in lockfile.jobs.items()
        }
        return lockfile if jobs == dict(lockfile.jobs) else replace(lockfile, jobs=jobs)

    def _write(self, new: Lockfile) -> None:
        if self._deferring:
            self.lockfile = new  # before the count: a write that reads the count holds this
            self._recorded += 1
            return
        before, self.lockfile = self.lockfile, new
        self._recorded += 1
        try:
            self._put(self._recorded, new)
        except BaseException:
            if self.lockfile is new:  # refused: what the journal holds stays what it held
                self.lockfile = before
            raise
        self._settle()

    def _put(self, count: int, lockfile: Lockfile) -> None:
        """Write `lockfile` (which holds the first `count` changes); runs in any thread."""
        with self._io:
            if count <= self._durable:
                return  # a later write already holds these changes
            based = replace(lockfile, lineage=self._stored.lineage, serial=self._stored.serial)
            self._stored = self.store.write(based, forbidden_values=self.forbidden)
            self._written = lockfile
            self._durable = count

    def _settle(self) -> None:
        """On the loop's thread, after a write: the in-memory Lockfile takes its serial."""
        if self.lockfile is self._written:
            self.lockfile = self._stored
            self._written = self._stored
        elif (self.lockfile.lineage, self.lockfile.serial) != (
            self._stored.lineage,
            self._stored.serial,
        ):
            self.lockfile = replace(
                self.lockfile, lineage=self._stored.lineage, serial=self._stored.serial
            )

    async def commit(self, record: Callable[[], None]) -> None:
        """Run `record` (calls of the methods below); return once the store holds its changes.

        Commits made while a write is under way share the next write (group commit). A write
        that fails raises here for every commit it held; their changes stay in memory and go
        with the next write.
        """
        self._deferring += 1
        try:
            record()
        finally:
            self._deferring -= 1
        target = self._recorded
        while self._durable < target:
            if self._flushing is None:
                self._flushing = asyncio.ensure_future(self._flush())
            await asyncio.shield(self._flushing)

    async def _flush(self) -> None:
        try:
            count, lockfile = self._recorded, self.lockfile
            await asyncio.to_thread(self._put, count, lockfile)
            self._settle()
        finally:
            self._flushing = None

    def settle_intents(self) -> None:
        """Drop the intents no listed pod carries the uid of: their create never happened.

        Called once the apply holds the lock and has listed the pods. A create whose answer
        was lost shows in that listing (its intent stays, the plan adopts or cleans it up); one
        that never reached RunPod does not, and its intent would otherwise stay for ever.
        """
        seen = {p.markers.uid for p in self.actual.pods.values() if p.markers is not None}
        kept = tuple(i for i in self.lockfile.intents if i.uid in seen)
        if kept != tuple(self.lockfile.intents):
            self._write(replace(self.lockfile, intents=kept))

    def intend(self, pod: str, uid: str) -> None:
        self._write(
            record_intent(self.lockfile, stack=self.stack, pod=pod, uid=uid, since=self.clock())
        )

    def create_failed(self, uid: str) -> None:
        self._write(clear_intent(self.lockfile, uid))

    def _filled(self, pod: str, record: PodRecord) -> PodRecord:
        """The record, naming every env key podctl filled from from_env on this pod so far."""
        existing = self._record_of(pod)
        earlier = existing.secret_env if existing is not None else ()
        return with_secret_env(record, (*earlier, *self.secret_env.get(pod, ())))

    def created(self, pod: str, record: PodRecord) -> None:
        self._set_pod(pod, self._filled(pod, record))

    def touched(self, pod: str, pod_id: str, fingerprint: str | None) -> None:
        existing = self._record_of(pod)
        if existing is not None and existing.pod_id == pod_id:
            filled = self._filled(pod, existing)
            if fingerprint is None or fingerprint == existing.fingerprint:
                if filled is existing:
                    return  # nothing new to record: the serial stays
                record = filled
            else:
                record = replace(filled, fingerprint=fingerprint, applied_at=self.clock())
        else:
            seen = self.actual.get(pod_id)
            record = PodRecord(
                pod_id=pod_id,
                uid=seen.markers.uid if seen is not None and seen.markers is not None else "",
                fingerprint=fingerprint or "",
                gpu_type_id=seen.gpu_type_id if seen is not None else None,
                cloud=seen.cloud if seen is not None else None,
                created_at=created_marker(seen.env) if seen is not None else None,
                applied_at=self.clock(),
            )
            record = self._filled(pod, record)
        self._set_pod(pod, record)

    def _update(self, pod: str, pod_id: str, **fields: object) -> None:
        """Change fields of the pod's record, when it is the record of that pod."""
        existing = self._record_of(pod)
        if existing is None or existing.pod_id != pod_id:
            return
        record = replace(existing, **fields)  # type: ignore[arg-type]
        if record != existing:
            self._set_pod(pod, record)

    def stopped(
        self, pod: str, pod_id: str, at: datetime | None, *, keep_earlier: bool = False
    ) -> None:
        existing = self._record_of(pod)
        if keep_earlier and existing is not None and existing.stopped_at is not None:
            return
        # a stopped container is gone, and its watchdog with it
        self._update(pod, pod_id, stopped_at=at, **({"watchdog": None} if at else {}))

    def armed(self, pod: str, pod_id: str, arming: WatchdogArming | None) -> None:
        self._update(pod, pod_id, watchdog=arming)

    def forget(self, pods: Iterable[str]) -> None:
        """Drop the records of these pods (gone outside podctl, no longer wanted)."""
        lockfile = self.lockfile
        for pod in pods:
            if pod in lockfile.pods:
                lockfile = forget_pod(lockfile, pod)
        if lockfile is not self.lockfile:
            self._write(lockfile)

    def terminated(self, pod: str, pod_id: str) -> None:
        lockfile = self.lockfile
        existing = lockfile.pods.get(pod)
        if existing is not None and existing.pod_id == pod_id:
            lockfile = forget_pod(lockfile, pod)
        seen = self.actual.get(pod_id)
        if seen is not None and seen.markers is not None:
            lockfile = clear_intent(lockfile, seen.markers.uid)  # an orphan of a lost create
        if lockfile is not self.lockfile:
            self._write(lockfile)

    def job_started(self, job: str, record: JobRecord) -> None:
        # a run's message may quote its output or env: a secret in it is masked, never refused
        # (a refusal here, after the run, would lose its result and run it again)
        message = redact(record.message, self.forbidden)
        if message != record.message:
            record = replace(record, message=message)
        self._write(record_job(replace(self.lockfile, stack=self.stack), job, record))

    job_finished = job_started  # the ledger keeps a job's latest record either way

    def pinned(self, pod_id: str, keys: tuple[str, ...]) -> None:
        """A pod's SSH host keys, pinned on first use."""
        if tuple(self.lockfile.host_keys.get(pod_id, ())) != keys:
            self._write(record_host_keys(self.lockfile, pod_id, keys))

    # --- serverless endpoints (reconciler.executor.endpoints.EndpointJournal) ---------------

    def endpoint_recorded(self, name: str, record: EndpointRecord) -> None:
        if self.lockfile.endpoints.get(name) != record:
            self._write(record_endpoint(replace(self.lockfile, stack=self.stack), name, record))

    def endpoint_forgotten(self, name: str, endpoint_id: str | None) -> None:
        existing = self.lockfile.endpoints.get(name)
        if existing is not None and endpoint_id in (None, existing.endpoint_id):
            self._write(forget_endpoint(self.lockfile, name))
