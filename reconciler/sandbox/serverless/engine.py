"""The job engine: endpoints, their queues and the worker processes that run the jobs.

One engine per sandbox, driven by the server's event loop; handlers never run in it: each
worker is a subprocess (`worker.py`) in its own session, killed (whole process group) on an
execution timeout, a cancel, a scale-down or a release. A tick (0.2 s) applies timeouts, TTL
and result retention, scales workers between `workers.min` and `workers.max` and retries
webhooks. Endpoints and jobs persist in `serverless.json` (see `store`).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import ipaddress
import json
import logging
import os
import secrets
import signal
import string
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter, deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler.sandbox.faults import Faults
from reconciler.sandbox.serverless import store
from reconciler.sandbox.serverless.jobs import (
    CANCELLED,
    COMPLETED,
    DEFAULT_EXECUTION_TIMEOUT_MS,
    FAILED,
    IN_PROGRESS,
    IN_QUEUE,
    MAX_ATTEMPTS,
    TIMED_OUT,
    Job,
)

log = logging.getLogger("podctl.sandbox.serverless")
TICK = 0.2
HANDLER_ENV = "PODCTL_SANDBOX_HANDLER"
RETENTION = {"run": 30 * 60.0, "runsync": 60.0}  # §2.5
WORKER_CAP = 4  # worker processes per endpoint at most: the sandbox's "capacity" [INF]
MESSAGE_LIMIT = 64 * 1024 * 1024  # one worker message (an output) at most
STREAM_BACKLOG = 10_000  # stream chunks a job may hold unread [INF]
BOOT_TIMEOUT = 120.0  # a worker that does not say ready by then is killed
IDLE_REQUEST_COUNT_S = 5.0  # idle timeout where the endpoint has none (REQUEST_COUNT) [INF]
WEBHOOK_TRIES, WEBHOOK_GAP = 3, 10.0  # §2.6: one POST, retried twice 10 s apart
FATAL_BACKOFF = 2.0  # seconds before a crash-looping endpoint gets a new worker
PASS_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR")
_WORKER_ALPHABET = string.ascii_lowercase + string.digits


@dataclass
class Worker:
    id: str
    endpoint_id: str
    version: int
    proc: asyncio.subprocess.Process
    started_at: float
    ready_at: float | None = None  # booted (handler loaded) and past the cold start
    loaded_at: float | None = None  # when the handler was loaded
    job_id: str | None = None
    idle_since: float = 0.0
    dying: bool = False  # killed on purpose (timeout, cancel, scale-down)
    reader: asyncio.Task[None] | None = field(default=None, repr=False)

    @property
    def pgid(self) -> int:
        return self.proc.pid

    def status(self, now: float) -> str:
        """§1.5 WorkerStatus."""
        if self.job_id is not None:
            return "RUNNING"
        return "IDLE" if self.ready_at is not None and now >= self.ready_at else "INITIALIZING"


class Engine:
    def __init__(
        self, data_dir: Path, faults: Faults, start_delay: Callable[[], float] = float
    ) -> None:
        self.data_dir = data_dir
        self.faults = faults
        self.start_delay = start_delay  # a new worker's cold start, unless a fault sets one
        self.loaded = False
        self.endpoints: dict[str, dict[str, Any]] = {}
        self.jobs: dict[str, Job] = {}
        self.workers: dict[str, Worker] = {}
        self.counts: dict[str, Counter[str]] = {}  # per endpoint: completed, failed, retried
        self.changed: dict[str, asyncio.Event] = {}  # per job: set on every change
        self.webhooks: deque[dict[str, Any]] = deque(maxlen=200)
        # every accepted submission (test knob, admin view only): how often one input was sent,
        # and how often a worker took each job (RunPod's own requeues, apart from resubmits)
        self.submitted: deque[dict[str, Any]] = deque(maxlen=50_000)
        self.dirty = False
        self._task: asyncio.Task[None] | None = None
        self._spawning: Counter[str] = Counter()
        self._tasks: set[asyncio.Task[None]] = set()
        self._no_spawn_until: dict[str, float] = {}  # a handler that does not load: back off
        atexit.register(self._at_exit)

    # -- life ------------------------------------------------------------------------------

    def load(self) -> None:
        self.loaded = True
        self.endpoints, self.jobs, counts = store.load(self.data_dir)
        self.counts = {k: Counter(v) for k, v in counts.items()}
        for job in self.jobs.values():
            if job.status == IN_PROGRESS:  # its worker died with the sandbox: run it again
                job.status, job.worker_id = IN_QUEUE, None
                self._count(job.endpoint_id, "retried")

    def save(self) -> None:
        store.save(self.data_dir, self.endpoints, self.jobs, self.counts)
        self.dirty = False

    def ensure_started(self) -> None:
        """Start the tick in the running loop (the first request after start does it)."""
        if not self.loaded:
            self.load()
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._ticker())

    async def _ticker(self) -> None:
        while True:
            try:
                await self.tick()
            except Exception:
                log.exception("serverless tick failed")
            await asyncio.sleep(TICK)

    def _at_exit(self) -> None:
        self.kill_all()
        if self.dirty:
            with contextlib.suppress(OSError):
                self.save()

    def kill_all(self) -> None:
        for worker in list(self.workers.values()):
            self._kill(worker)

    def reset(self) -> None:
        self.kill_all()
        self.workers.clear()
        self.endpoints.clear()
        self.jobs.clear()
        self.counts.clear()
        self.webhooks.clear()
        self.submitted.clear()
        for event in self.changed.values():
            event.set()
        self.changed.clear()
        self.save()

    # -- endpoints -------------------------------------------------------------------------

    def put_endpoint(self, endpoint: dict[str, Any]) -> None:
        self.endpoints[endpoint["id"]] = endpoint
        self.save()
        self._schedule()

    def delete_endpoint(self, endpoint_id: str) -> None:
        """§1.1: terminates all workers, cancels queued and in-progress jobs."""
        self.endpoints.pop(endpoint_id, None)
        for worker in [w for w in self.workers.values() if w.endpoint_id == endpoint_id]:
            self._kill(worker)
        for job in [j for j in self.jobs.values() if j.endpoint_id == endpoint_id]:
            self._drop(job)
        self.counts.pop(endpoint_id, None)
        self.save()

    def endpoint_workers(self, endpoint_id: str) -> dict[str, Any]:
        """`GET /v2/serverless/{id}/workers` (§1.5)."""
        now = time.time()
        endpoint = self.endpoints[endpoint_id]
        mine = [w for w in self.workers.values() if w.endpoint_id == endpoint_id and not w.dying]
        statuses = Counter(w.status(now) for w in mine)
        gpu = endpoint.get("gpu") or {}
        return {
            "endpointVersion": endpoint.get("version", 1),
            "summary": {
                "running": statuses["RUNNING"],
                "idle": statuses["IDLE"],
                "initializing": statuses["INITIALIZING"],
                "throttled": 0,
                "unhealthy": 0,
                "total": len(mine),
            },
            "workers": [
                {
                    "id": w.id,
                    "status": w.status(now),
                    "isStale": w.version != endpoint.get("version", 1),
                    "version": w.version,
                    "gpuCount": gpu.get("count", 0),
                    "image": endpoint.get("image", ""),
                    "uptimeSeconds": int(now - w.started_at),
                    "gpuTypeId": None,
                    "dataCenterId": (endpoint.get("dataCenterIds") or ["US-TX-3"])[0],
                    "startedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(w.started_at)),
                }
                for w in mine
            ],
        }

    # -- jobs ------------------------------------------------------------------------------

    def submit(self, job: Job) -> None:
        self.jobs[job.id] = job
        self.submitted.append({"id": job.id, "endpoint_id": job.endpoint_id, "input": job.input})
        self.dirty = True
        self._schedule()

    def job(self, endpoint_id: str, job_id: str) -> Job | None:
        job = self.jobs.get(job_id)
        if job is None or job.endpoint_id != endpoint_id:
            return None
        self._expire(job, time.time())
        return self.jobs.get(job_id)

    def cancel(self, job: Job) -> None:
        """§2.3: stops an in-progress job or removes a queued one."""
        if job.terminal:
            return
        worker = self.workers.get(job.worker_id or "")
        if job.status == IN_PROGRESS and worker is not None:
            worker.job_id = None
            self._kill(worker)
        self._finish(job, CANCELLED)

    def retry(self, job: Job) -> None:
        """§2.3: same id, original input, previous output removed."""
        job.status = IN_QUEUE
        job.has_output, job.output, job.error = False, None, None
        job.started_at = job.finished_at = job.worker_id = None
        job.attempts = 0
        job.stream.clear()
        job.created_at = time.time()
        self._count(job.endpoint_id, "retried")
        self._changed(job)
        self._schedule()

    def purge(self, endpoint_id: str) -> int:
        """§2.3: queued jobs only; running ones continue."""
        queued = [
            j for j in self.jobs.values() if j.endpoint_id == endpoint_id and j.status == IN_QUEUE
        ]
        for job in queued:
            self._drop(job)
        self.dirty = True
        return len(queued)

    def health(self, endpoint_id: str) -> dict[str, Any]:
        """§2.9."""
        now = time.time()
        jobs = [j for j in self.jobs.values() if j.endpoint_id == endpoint_id]
        counts = self.counts.get(endpoint_id, Counter())
        statuses = Counter(
            w.status(now)
            for w in self.workers.values()
            if w.endpoint_id == endpoint_id and not w.dying
        )
        return {
            "jobs": {
                "completed": counts["completed"],
                "failed": counts["failed"],
                "inProgress": sum(1 for j in jobs if j.status == IN_PROGRESS),
                "inQueue": sum(1 for j in jobs if j.status == IN_QUEUE),
                "retried": counts["retried"],
            },
            "workers": {
                "idle": statuses["IDLE"],
                "initializing": statuses["INITIALIZING"],
                "running": statuses["RUNNING"],
                "throttled": 0,
                "unhealthy": 0,
            },
        }

    def event(self, job_id: str) -> asyncio.Event:
        return self.changed.setdefault(job_id, asyncio.Event())

    def take_stream(self, job: Job) -> list[dict[str, Any]]:
        """The chunks produced since the last `/stream` poll (§2.3)."""
        chunks = [{"output": c} for c in job.stream]
        job.stream.clear()
        if chunks:
            self.dirty = True
        return chunks

    def status(self) -> dict[str, Any]:
        """For `GET /_sandbox/serverless`: endpoints, workers, jobs by state, webhooks."""
        now = time.time()
        return {
            "endpoints": len(self.endpoints),
            "jobs": dict(Counter(j.status for j in self.jobs.values())),
            "workers": [
                {"id": w.id, "endpoint": w.endpoint_id, "status": w.status(now), "pid": w.pgid}
                for w in self.workers.values()
                if not w.dying
            ],
            "webhooks": list(self.webhooks),
            "submitted": [
                {**s, "taken": j.attempts if (j := self.jobs.get(s["id"])) else None}
                for s in self.submitted
            ],
        }

    # -- internals -------------------------------------------------------------------------

    def _count(self, endpoint_id: str, what: str) -> None:
        self.counts.setdefault(endpoint_id, Counter())[what] += 1

    def _changed(self, job: Job) -> None:
        self.dirty = True
        event = self.changed.pop(job.id, None)
        if event is not None:
            event.set()

    def _drop(self, job: Job) -> None:
        if job.status == IN_PROGRESS:
            worker = self.workers.get(job.worker_id or "")
            if worker is not None:
                worker.job_id = None
                self._kill(worker)
        self.jobs.pop(job.id, None)
        self._changed(job)

    def _finish(self, job: Job, status: str, *, error: str | None = None) -> None:
        now = time.time()
        job.status = status
        job.finished_at = now
        if job.started_at is None:
            job.started_at = now
        if error is not None:
            job.error = error
        if status == COMPLETED:
            self._count(job.endpoint_id, "completed")
        elif status in (FAILED, TIMED_OUT):
            self._count(job.endpoint_id, "failed")
        self._changed(job)
        if job.webhook and status != CANCELLED:
            self._background(self._webhook(job.webhook, job.view()))

    def _execution_timeout(self, job: Job) -> float:
        """Seconds: the job's policy, else the endpoint's `timeout` (0: the policy default)."""
        ms = job.execution_timeout_ms
        if ms is None:
            ms = int(self.endpoints.get(job.endpoint_id, {}).get("timeout") or 0)
        return (ms or DEFAULT_EXECUTION_TIMEOUT_MS) / 1000

    def _expire(self, job: Job, now: float) -> None:
        """§2.2 TTL (the job is deleted whatever its state) and §2.5 result retention."""
        if not job.terminal and now >= job.created_at + job.ttl_ms / 1000:
            self._drop(job)
            return
        if job.terminal and job.finished_at is not None:
            kind = "runsync" if job.sync else "run"
            keep = self.faults.serverless.retention.get(kind, RETENTION[kind])
            if now >= job.finished_at + keep:
                self._drop(job)

    async def tick(self) -> None:
        now = time.time()
        if self.faults.serverless.take("lose_queue"):  # §2.7: queued jobs lost with Redis
            self.faults.injected["serverless-lost-queue"] += 1
            for job in [j for j in self.jobs.values() if j.status == IN_QUEUE]:
                self._drop(job)
        for job in list(self.jobs.values()):
            self._expire(job, now)
            if (
                job.status == IN_PROGRESS
                and job.started_at is not None
                and now >= job.started_at + self._execution_timeout(job)
            ):
                worker = self.workers.get(job.worker_id or "")
                if worker is not None:
                    worker.job_id = None
                    self._kill(worker)
                self._finish(job, TIMED_OUT, error="Job timed out.")  # §2.4
        for worker in list(self.workers.values()):
            if (
                worker.ready_at is None
                and not worker.dying
                and now > worker.started_at + BOOT_TIMEOUT
            ):
                self._kill(worker)
        self._schedule()
        if self.dirty:
            self.save()

    def _schedule(self) -> None:
        """Hand queued jobs to ready workers; spawn or retire workers (min..max, §1.3)."""
        now = time.time()
        for endpoint_id, endpoint in self.endpoints.items():
            if endpoint.get("type") != "QUEUE":
                continue
            mine = [
                w for w in self.workers.values() if w.endpoint_id == endpoint_id and not w.dying
            ]
            version = endpoint.get("version", 1)
            queued = sorted(
                (
                    j
                    for j in self.jobs.values()
                    if j.endpoint_id == endpoint_id and j.status == IN_QUEUE
                ),
                key=lambda j: j.created_at,
            )
            for worker in mine:
                self._boot(worker, now)
                if worker.job_id is None and worker.version != version:
                    self._kill(worker)  # §1.4 rolling release: idle old workers go at once
            mine = [w for w in mine if not w.dying]
            for worker in mine:
                if not queued:
                    break
                if worker.job_id is None and worker.ready_at is not None and now >= worker.ready_at:
                    self._dispatch(worker, queued.pop(0))
            workers = endpoint["workers"]
            busy = sum(1 for w in mine if w.job_id is not None)
            demand = busy + sum(1 for j in queued if not j.low_priority)
            wanted = min(max(workers["min"], demand), workers["max"], WORKER_CAP)
            live = len(mine) + self._spawning[endpoint_id]
            if now >= self._no_spawn_until.get(endpoint_id, 0.0):
                for _ in range(wanted - live):
                    self._spawn(endpoint)
            idle_for = workers.get("idleTimeout") or IDLE_REQUEST_COUNT_S
            surplus = live - max(workers["min"], demand)
            for worker in mine:
                if surplus <= 0:
                    break
                if (
                    worker.job_id is None
                    and worker.ready_at is not None
                    and (len(mine) > workers["max"] or now >= worker.idle_since + idle_for)
                ):
                    self._kill(worker)
                    surplus -= 1

    def _boot(self, worker: Worker, now: float) -> None:
        """A loaded worker is ready after the cold start (the sandbox's start delay unless a
        fault sets one); re-read until it is ready, so that a changed fault applies."""
        if worker.loaded_at is None or (worker.ready_at is not None and now >= worker.ready_at):
            return
        cold = self.faults.serverless.cold_start
        delay = self.start_delay() if cold is None else cold
        worker.ready_at = max(worker.loaded_at, worker.started_at + delay)
        worker.idle_since = worker.ready_at

    def _dispatch(self, worker: Worker, job: Job) -> None:
        assert worker.proc.stdin is not None
        now = time.time()
        job.status, job.worker_id, job.started_at = IN_PROGRESS, worker.id, now
        job.finished_at = None
        job.attempts += 1
        worker.job_id = job.id
        line = json.dumps({"id": job.id, "input": job.input}, separators=(",", ":")).encode()
        worker.proc.stdin.write(line + b"\n")
        self._changed(job)

    def _background(self, work: Coroutine[Any, Any, None]) -> None:
        """Run `work` as a task the engine holds (the loop keeps only weak references)."""
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _spawn(self, endpoint: dict[str, Any]) -> None:
        self._spawning[endpoint["id"]] += 1
        self._background(self._start_worker(endpoint))

    async def _start_worker(self, endpoint: dict[str, Any]) -> None:
        endpoint_id = endpoint["id"]
        worker_id = "".join(secrets.choice(_WORKER_ALPHABET) for _ in range(14))
        env = {k: os.environ[k] for k in PASS_ENV if k in os.environ}
        env.update(endpoint.get("env") or {})
        env.update({"RUNPOD_ENDPOINT_ID": endpoint_id, "RUNPOD_POD_ID": worker_id})
        handler = (endpoint.get("env") or {}).get(HANDLER_ENV)
        args = [sys.executable, "-m", "reconciler.sandbox.serverless.worker"]
        cwd = str(self.data_dir)
        if handler:
            args.append(handler)
            cwd = os.path.dirname(handler) or cwd
        logs = store.worker_log(self.data_dir, endpoint_id, worker_id)
        try:
            with open(logs, "ab") as log_file:
                proc = await asyncio.create_subprocess_exec(
                    *args,
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=log_file,
                    env=env,
                    cwd=cwd if os.path.isdir(cwd) else str(self.data_dir),
                    start_new_session=True,
                    limit=MESSAGE_LIMIT,
                )
        except OSError:
            log.exception("cannot start a worker for %s", endpoint_id)
            return
        finally:
            self._spawning[endpoint_id] -= 1
        worker = Worker(
            worker_id, endpoint_id, endpoint.get("version", 1), proc, started_at=time.time()
        )
        self.workers[worker_id] = worker
        if endpoint_id not in self.endpoints:
            self._kill(worker)
        worker.reader = asyncio.get_running_loop().create_task(self._read(worker))

    async def _read(self, worker: Worker) -> None:
        assert worker.proc.stdout is not None
        try:
            while True:
                line = await worker.proc.stdout.readline()
                if not line:
                    break
                try:
                    message = json.loads(line)
                except ValueError:
                    break
                if not isinstance(message, dict) or not self._message(worker, message):
                    break
        except (ValueError, asyncio.LimitOverrunError):
            self._fail_running(worker, "worker output exceeds the sandbox's 64 MiB message limit")
        finally:
            self._kill(worker)
            with contextlib.suppress(ProcessLookupError):
                await worker.proc.wait()
            self._died(worker)

    def _message(self, worker: Worker, message: dict[str, Any]) -> bool:
        """Apply one worker message; False ends the worker."""
        kind = message.get("type")
        if kind == "ready":
            worker.loaded_at = time.time()
            self._boot(worker, worker.loaded_at)
            if worker.ready_at is not None:
                left = worker.ready_at - worker.loaded_at
                asyncio.get_running_loop().call_later(max(0.0, left) + 0.01, self._schedule)
            self._schedule()
            return True
        if kind == "fatal":  # the handler file does not load: the worker is unhealthy
            log.warning("worker %s: %s", worker.id, message.get("error"))
            self._no_spawn_until[worker.endpoint_id] = time.time() + FATAL_BACKOFF
            return False
        job = self.jobs.get(str(message.get("id")))
        if job is None or worker.job_id != job.id:
            return True  # a job cancelled or dropped meanwhile
        if kind == "chunk":
            if len(job.stream) >= STREAM_BACKLOG:  # nobody reads /stream: bound the backlog
                self._fail_running(worker, f"more than {STREAM_BACKLOG} stream chunks unread")
                return False
            job.stream.append(message.get("output"))
            self._changed(job)
            return True
        if kind != "done":
            return False
        if self.faults.serverless.take("kill_worker"):
            self.faults.injected["worker-death"] += 1
            return False  # dies before its result reaches the queue: _died requeues the job
        worker.job_id = None
        worker.idle_since = time.time()
        if "output" in message:
            job.has_output, job.output = True, message["output"]
        error = message.get("error")
        self._finish(job, FAILED if error else COMPLETED, error=str(error) if error else None)
        self._schedule()
        return True

    def _fail_running(self, worker: Worker, error: str) -> None:
        job = self.jobs.get(worker.job_id or "")
        worker.job_id = None
        if job is not None and not job.terminal:
            self._finish(job, FAILED, error=error)

    def _died(self, worker: Worker) -> None:
        """A worker ended; a job it still held is requeued (RunPod's automatic retry, §2.7)."""
        self.workers.pop(worker.id, None)
        job = self.jobs.get(worker.job_id or "")
        if job is not None and job.status == IN_PROGRESS and job.worker_id == worker.id:
            if job.attempts >= MAX_ATTEMPTS:
                self._finish(job, FAILED, error=f"worker exited {job.attempts} times running it")
            else:
                job.status, job.worker_id, job.started_at = IN_QUEUE, None, None
                job.stream.clear()
                self._count(job.endpoint_id, "retried")
                self._changed(job)
        with contextlib.suppress(RuntimeError):
            self._schedule()

    def _kill(self, worker: Worker) -> None:
        worker.dying = True
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(worker.pgid, signal.SIGKILL)

    async def _webhook(self, url: str, body: dict[str, Any]) -> None:
        """§2.6: POST the job once it ends; loopback URLs only, others are only recorded."""
        record: dict[str, Any] = {"url": url, "job": body["id"], "status": body["status"]}
        self.webhooks.append(record)
        if not _loopback(url):
            record["delivered"] = False
            record["note"] = "not loopback: recorded, not sent"
            return
        data = json.dumps(body).encode()
        for attempt in range(1, WEBHOOK_TRIES + 1):
            record["attempts"] = attempt
            code = await asyncio.to_thread(_post, url, data)
            record["answer"] = code
            if code == 200:
                record["delivered"] = True
                return
            if attempt < WEBHOOK_TRIES:
                await asyncio.sleep(WEBHOOK_GAP)
        record["delivered"] = False


def _loopback(url: str) -> bool:
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return False
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https"):
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A webhook answer that redirects is a failed delivery: never follow it off loopback."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _post(url: str, data: bytes) -> int:
    request = urllib.request.Request(
        url, data=data, method="POST", headers={"Content-Type": "application/json"}
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect)
    try:
        with opener.open(request, timeout=10) as resp:
            resp.read(65536)
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (OSError, ValueError):
        return 0
