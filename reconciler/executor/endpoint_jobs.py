"""A run-job change of an endpoint job: each request sent once, reattached by id, collected.

For every request (a single job's input, or a batch line): write `submitting` durably, send
/run (or /runsync), record the job id the moment it answers, poll /status (one request per
running job per round, backoff with jitter from the first delay to 10 s) and record the
output as soon as the job ends, before RunPod's retention drops it. A request whose /run
answer was lost is `unknown` and is not sent again here; one already sent by an earlier
apply is reattached by its id. At most `parallel` requests are in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from reconciler import events as ev
from reconciler.errors import JobApiError, JobGone, SubmitLost
from reconciler.executor.context import ChangeFailed, StepContext
from reconciler.jobs.endpoint_ledger import (
    DONE,
    FAILED,
    LOST,
    PENDING,
    SENT,
    TERMINAL,
    UNKNOWN,
    Folded,
    fold,
    job_parts,
    line_prints,
    numbers,
)
from reconciler.model import EndpointJobSpec, JobRecord, JobStatus, Rerun
from reconciler.planner.endpoint_jobs import request_target
from reconciler.plans import Change, ChangeResult, Outcome

POLL_MAX_S = 10.0
POLL_GROWTH = 1.5
PROGRESS_EVERY_S = 1.0
CANCEL_WAIT_S = 10.0
RUNSYNC_WAIT_MS = 60_000


class JobApiPort(Protocol):
    async def run(self, endpoint_id: str, body: Mapping[str, Any]) -> dict[str, Any]: ...
    async def runsync(
        self, endpoint_id: str, body: Mapping[str, Any], wait_ms: int = ...
    ) -> dict[str, Any]: ...
    async def status(self, endpoint_id: str, job_id: str) -> dict[str, Any]: ...
    async def stream(self, endpoint_id: str, job_id: str) -> dict[str, Any]: ...
    async def cancel(self, endpoint_id: str, job_id: str) -> dict[str, Any]: ...
    async def retry(self, endpoint_id: str, job_id: str) -> dict[str, Any]: ...
    async def purge_queue(self, endpoint_id: str) -> dict[str, Any]: ...
    async def aclose(self) -> None: ...


class LedgerPort(Protocol):
    records: list[dict[str, Any]]

    async def append(self, *records: Mapping[str, Any], durable: bool = True) -> None: ...
    async def aclose(self) -> None: ...


@dataclass
class EndpointJobs:
    """What endpoint jobs need from the composition root."""

    api: JobApiPort
    ledger: Callable[[str], LedgerPort]
    endpoint_id: Callable[[EndpointJobSpec], str | None]
    write_output: Callable[[str, str | None, bytes], str]  # (path, sha podctl wrote, data)
    poll_first_s: float = 0.5
    cancel_on_interrupt: bool = False
    ask_cancel: Callable[[int], bool] | None = None  # Ctrl-C on a terminal: cancel them?
    _answer: bool | None = None  # asked once per apply
    rand: Callable[[], float] = random.random
    started: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # job -> ids

    async def run(self, ctx: StepContext, change: Change) -> ChangeResult:
        return await run_endpoint_job(ctx, change, self)

    def should_cancel(self, running: int) -> bool:
        """On an interrupt: --cancel-on-interrupt, else the terminal's answer (asked once)."""
        if self.cancel_on_interrupt:
            return True
        if self.ask_cancel is None or not running:
            return False
        if self._answer is None:
            try:
                self._answer = self.ask_cancel(running)
            except (KeyboardInterrupt, EOFError):
                self._answer = False
        return self._answer


def request_body(job: EndpointJobSpec, input_text: str) -> dict[str, Any]:
    """The /run body (§2.2): input, and policy and webhook when the spec sets them."""
    body: dict[str, Any] = {"input": json.loads(input_text)}
    policy: dict[str, Any] = {}
    if job.policy.execution_timeout_s is not None:
        policy["executionTimeout"] = job.policy.execution_timeout_s * 1000
    if job.policy.ttl_s is not None:
        policy["ttl"] = job.policy.ttl_s * 1000
    if job.policy.low_priority:
        policy["lowPriority"] = True
    if policy:
        body["policy"] = policy
    if job.webhook:
        body["webhook"] = job.webhook
    return body


@dataclass
class _Run:
    """One apply's run of one endpoint job."""

    ctx: StepContext
    change: Change
    job: EndpointJobSpec
    wiring: EndpointJobs
    endpoint_id: str
    ledger: LedgerPort
    folded: Folded
    prints: tuple[str, ...]
    running: set[str] = field(default_factory=set)  # prints with a live id now
    queued: int = 0
    finished: dict[str, int] = field(default_factory=lambda: {DONE: 0, FAILED: 0})
    log: Callable[[str], None] = lambda _line: None

    @property
    def address(self) -> str:
        return self.change.address

    async def record(self, *records: Mapping[str, Any], durable: bool = True) -> None:
        await self.ledger.append(*records, durable=durable)

    def delays(self) -> Callable[[], float]:
        delay = [self.wiring.poll_first_s]

        def next_delay() -> float:
            now = delay[0]
            delay[0] = min(POLL_MAX_S, now * POLL_GROWTH)
            return now * (0.75 + 0.5 * self.wiring.rand())  # jitter: +-25%

        return next_delay

    async def one(self, number: int, print_: str) -> str:
        """Bring one request to an end; returns its final state."""
        line = self.folded.line(print_)
        attempt = 0
        while True:
            if line.state in (PENDING, FAILED):
                sent = await self.submit(number, print_)
                if sent is None:
                    return line.state
                answer = sent
            else:
                answer = None
            result = await self.follow(number, print_, answer)
            if result != FAILED or attempt >= self.job.retries:
                return result
            attempt += 1
            self.log(
                f"line {number}: {line.runpod_state} ({line.error or 'no error text'}); "
                f"retry {attempt}/{self.job.retries}"
            )
            if line.job_id is not None and await self.retry(print_, line.job_id):
                continue
            line.state = FAILED  # /retry refused (or the job expired): a new submission

    async def submit(self, number: int, print_: str) -> dict[str, Any] | None:
        """Write-ahead, then /run; None when the request did not get an id."""
        line = self.folded.line(print_)
        await self.record({"e": "submitting", "p": print_, "n": number, "a": line.attempts + 1})
        line.attempts += 1
        body = request_body(self.job, self.job.inputs[number - 1])
        try:
            if self.job.sync:
                answer = await self.wiring.api.runsync(self.endpoint_id, body, RUNSYNC_WAIT_MS)
            else:
                answer = await self.wiring.api.run(self.endpoint_id, body)
        except SubmitLost as exc:
            line.state, line.error = UNKNOWN, str(exc)
            await self.record({"e": "unknown", "p": print_, "why": str(exc)})
            self.log(f"line {number}: /run answer lost: unknown, not sent again ({exc})")
            return None
        except JobApiError as exc:
            line.state, line.error = FAILED, str(exc)
            line.runpod_state = "REFUSED"
            await self.record({"e": "failed", "p": print_, "s": "REFUSED", "err": str(exc)})
            return None
        job_id = answer.get("id")
        if not isinstance(job_id, str) or not job_id:
            line.state, line.error = UNKNOWN, "the /run answer has no job id"
            await self.record({"e": "unknown", "p": print_, "why": line.error})
            return None
        line.state, line.job_id = SENT, job_id
        self.wiring.started.setdefault(self.job.name, []).append((self.endpoint_id, job_id))
        await self.record({"e": "submitted", "p": print_, "id": job_id}, durable=False)
        if not self.job.batch:
            self.ctx.emit(ev.Note(self.address, f"submitted {job_id} to {self.endpoint_id}"))
        return answer

    async def retry(self, print_: str, job_id: str) -> bool:
        try:
            await self.wiring.api.retry(self.endpoint_id, job_id)
        except JobApiError:
            return False
        line = self.folded.line(print_)
        line.state, line.runpod_state = SENT, "IN_QUEUE"
        await self.record({"e": "retrying", "p": print_, "id": job_id}, durable=False)
        return True

    async def follow(self, number: int, print_: str, answer: dict[str, Any] | None) -> str:
        """Poll the job until it ends, then record its output (or error)."""
        line = self.folded.line(print_)
        job_id = line.job_id
        if job_id is None:  # pragma: no cover - a sent line always has an id
            return line.state
        self.running.add(print_)
        next_delay = self.delays()
        try:
            while True:
                if answer is None:
                    try:
                        if self.job.stream:
                            answer = await self.wiring.api.stream(self.endpoint_id, job_id)
                            for chunk in answer.get("stream") or ():
                                out = chunk.get("output") if isinstance(chunk, dict) else chunk
                                await self.record(
                                    {"e": "stream", "p": print_, "c": out}, durable=False
                                )
                                self.log(_text(out))
                            if str(answer.get("status")) in TERMINAL:
                                answer = await self.wiring.api.status(self.endpoint_id, job_id)
                        else:
                            answer = await self.wiring.api.status(self.endpoint_id, job_id)
                    except JobGone:
                        why = (
                            f"job {job_id} is gone (404) before podctl saw it end: its result "
                            "expired or its TTL passed; it may have run"
                        )
                        line.state, line.error = LOST, why
                        await self.record({"e": "lost", "p": print_, "why": why})
                        self.log(f"line {number}: {why}")
                        return LOST
                state = str(answer.get("status", ""))
                if state and state != line.runpod_state:
                    if line.runpod_state == "IN_PROGRESS" and state == "IN_QUEUE":
                        line.requeued += 1
                    line.runpod_state = state
                    await self.record({"e": "state", "p": print_, "s": state}, durable=False)
                    if not self.job.batch:
                        self.ctx.emit(ev.Note(self.address, f"{job_id}: {state}"))
                if state == "COMPLETED":
                    line.state, line.output = DONE, answer.get("output")
                    await self.record({"e": "done", "p": print_, "o": line.output})
                    return DONE
                if state in TERMINAL:
                    error = answer.get("error")
                    line.state = FAILED
                    line.error = error if isinstance(error, str) else json.dumps(error)
                    await self.record({"e": "failed", "p": print_, "s": state, "err": line.error})
                    return FAILED
                answer = None
                if not self.job.stream:  # /stream holds the request itself
                    await asyncio.sleep(next_delay())
        finally:
            self.running.discard(print_)

    async def cancel_running(self) -> list[str]:
        """/cancel every job of this run still in flight; the ids that were cancelled."""
        cancelled: list[str] = []

        async def one(print_: str) -> None:
            line = self.folded.line(print_)
            if line.job_id is None:
                return
            with contextlib.suppress(JobApiError):
                await self.wiring.api.cancel(self.endpoint_id, line.job_id)
                cancelled.append(line.job_id)
                line.state, line.runpod_state = FAILED, "CANCELLED"
                await self.record(
                    {"e": "failed", "p": print_, "s": "CANCELLED", "err": "cancelled by podctl"}
                )

        # sent and not ended (a worker cancelled first has left `running` already)
        prints = [p for p in self.prints if self.folded.line(p).state == SENT]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*(one(p) for p in prints)), CANCEL_WAIT_S)
        return cancelled


def _text(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _fresh(job: EndpointJobSpec, ctx: StepContext) -> bool:
    """rerun: always starts over, unless the last apply stopped while this run went on."""
    recorded = ctx.recorded_jobs.get(job.name)
    return job.rerun is Rerun.ALWAYS and not (
        recorded is not None and recorded.status is JobStatus.RUNNING
    )


async def run_endpoint_job(ctx: StepContext, change: Change, wiring: EndpointJobs) -> ChangeResult:
    name = change.job or change.address.removeprefix("job.")
    job = ctx.desired.endpoint_jobs.get(name)
    if job is None or change.fingerprint is None:
        raise ChangeFailed(f"job {name} is not in the spec (or the plan has no fingerprint)")
    endpoint_id = wiring.endpoint_id(job)
    if not endpoint_id:
        raise ChangeFailed(
            f"{job.target} has no id yet (it was not created): the job cannot be sent"
        )
    started = time.monotonic()
    ledger = wiring.ledger(name)
    fresh = _fresh(job, ctx)
    folded = fold(ledger.records)
    if fresh:
        folded = Folded(outputs=folded.outputs)
    await ledger.append(
        {"e": "begin", "fp": change.fingerprint, "lines": len(job.inputs), "fresh": fresh}
    )
    target = request_target(ctx.desired, job)
    prints = line_prints(job, target)
    run = _Run(ctx, change, job, wiring, endpoint_id, ledger, folded, prints)

    def log(line: str) -> None:
        if ctx.on_job_line is not None:
            ctx.on_job_line(name, line)
        else:
            ctx.emit(ev.LogLine(change.address, line))

    run.log = log
    inputs = job_parts(job, target)

    began = ctx.now()

    def record(status: JobStatus, message: str = "") -> JobRecord:
        return JobRecord(
            fingerprint=change.fingerprint or "",
            pod_id=endpoint_id,
            status=status,
            started_at=began,
            finished_at=None if status is JobStatus.RUNNING else ctx.now(),
            inputs=inputs,
            message=message,
        )

    await ctx.write(ctx.journal.job_started, name, record(JobStatus.RUNNING))
    todo = [
        (n, p)
        for n, p in enumerate(prints, start=1)
        if folded.line(p).state in (PENDING, FAILED, SENT)
    ]
    reattach = sum(1 for _, p in todo if folded.line(p).state == SENT)
    if reattach:
        ctx.emit(ev.JobReattached(change.address, endpoint_id, ended=False))
        log(f"reattaching to {reattach} request(s) already sent (by id; not sent again)")
    queue: asyncio.Queue[tuple[int, str]] = asyncio.Queue()
    for item in todo:
        queue.put_nowait(item)
    run.queued = len(todo)
    rate_start = time.monotonic()

    async def worker() -> None:
        while True:
            try:
                number, print_ = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            run.queued -= 1
            state = await run.one(number, print_)
            run.finished[DONE if state == DONE else FAILED] += 1

    def progress() -> ev.BatchProgress:
        lines = folded.lines
        done = sum(1 for p in prints if p in lines and lines[p].state == DONE)
        failed = sum(1 for p in prints if p in lines and lines[p].state in (FAILED, UNKNOWN, LOST))
        elapsed = max(time.monotonic() - rate_start, 1e-6)
        return ev.BatchProgress(
            change.address,
            done=done,
            running=len(run.running),
            queued=run.queued,
            failed=failed,
            total=len(prints),
            per_s=round(run.finished[DONE] / elapsed, 2),
        )

    async def ticker() -> None:
        while True:
            await asyncio.sleep(PROGRESS_EVERY_S)
            ctx.emit(progress())

    workers = [asyncio.create_task(worker()) for _ in range(max(1, min(job.parallel, len(todo))))]
    tick = asyncio.create_task(ticker()) if job.batch else None
    timed_out = False
    try:
        if workers:
            done_set, _ = await asyncio.wait(
                workers, timeout=job.timeout_s, return_when=asyncio.FIRST_EXCEPTION
            )
            broken = [t.exception() for t in done_set if t.exception() is not None]
            if broken:  # the ledger could not be written (a full disk...): stop sending
                for task in workers:
                    task.cancel()
                await asyncio.gather(*workers, return_exceptions=True)
                await asyncio.shield(ledger.aclose())
                error = broken[0]
                if isinstance(error, OSError):
                    raise ChangeFailed(
                        f"its ledger could not be written ({error}); nothing more was sent, "
                        "and the requests already sent are reattached by the next apply"
                    ) from error
                raise error  # type: ignore[misc]
            if len(done_set) < len(workers):
                timed_out = True
    except asyncio.CancelledError:
        for task in workers:
            task.cancel()
        in_flight = sum(1 for p in prints if folded.line(p).state == SENT)
        if wiring.should_cancel(in_flight):
            ids = await asyncio.shield(run.cancel_running())
            log(f"interrupted: cancelled {len(ids)} job(s) podctl started: {', '.join(ids)}")
        elif in_flight:
            log(
                f"interrupted: {in_flight} request(s) go on on RunPod; the next apply "
                f"reattaches to them, `podctl cancel {name}` cancels them"
            )
        await asyncio.shield(ledger.aclose())
        raise
    finally:
        if tick is not None:
            tick.cancel()
    cancelled: list[str] = []
    if timed_out:
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        cancelled = await run.cancel_running()
    if job.batch:
        ctx.emit(progress())
    message, ok = await _finish(run, started, cancelled if timed_out else None)
    await ledger.aclose()
    await ctx.write(
        ctx.journal.job_finished,
        name,
        record(JobStatus.SUCCEEDED if ok else JobStatus.FAILED, message),
    )
    if not ok:
        raise ChangeFailed(message + f"; log: podctl logs {name}")
    return ChangeResult(
        change.address,
        change.action,
        Outcome.DONE,
        message=message,
        pod_id=endpoint_id,
        duration_s=round(time.monotonic() - started, 1),
    )


async def _finish(run: _Run, started: float, cancelled: list[str] | None) -> tuple[str, bool]:
    """Write the output file, and word how the job ended."""
    job, folded, prints = run.job, run.folded, run.prints
    by_state: dict[str, list[int]] = {}
    for number, print_ in enumerate(prints, start=1):
        by_state.setdefault(folded.line(print_).state, []).append(number)
    done = len(by_state.get(DONE, ()))
    parts: list[str] = []
    wrote = ""
    if job.output is not None and done:
        if job.batch:
            rows = [
                json.dumps(
                    folded.line(p).output if folded.line(p).state == DONE else None,
                    ensure_ascii=False,
                )
                for p in prints
            ]
            data = ("\n".join(rows) + "\n").encode()
        else:
            data = (json.dumps(folded.line(prints[0]).output, indent=2) + "\n").encode()
        try:
            sha = run.wiring.write_output(job.output, folded.outputs.get(job.output), data)
        except OSError as exc:
            parts.append(f"its output was not written: {exc}")
        else:
            folded.outputs[job.output] = sha
            await run.record({"e": "output", "path": job.output, "sha": sha})
            wrote = f"; output in {job.output}"
    took = round(time.monotonic() - started, 1)
    total = len(prints)
    requeued = sum(folded.line(p).requeued for p in prints)
    if cancelled is not None:
        ids = ", ".join(cancelled) or "none in flight"
        parts.insert(
            0, f"timed out after {job.timeout_s}s; cancelled the jobs podctl started: {ids}"
        )
    for state, words in (
        (FAILED, "failed"),
        (UNKNOWN, "unknown (the /run answer was lost: it may have run; not sent again)"),
        (LOST, "lost (its result expired before podctl collected it)"),
        (PENDING, "not sent"),
        (SENT, "still running on RunPod"),
    ):
        lines = by_state.get(state, [])
        if lines:
            what = f"line(s) {numbers(lines)}" if job.batch else "the request"
            parts.append(f"{what} {words}")
            if state == FAILED and not job.batch:
                error = folded.line(prints[0]).error
                parts[-1] += f": {error[:300]}" if error else ""
    extra = f" (RunPod requeued {requeued} after a worker died)" if requeued else ""
    if not parts:
        head = f"{done}/{total} done in {took:g}s" if job.batch else f"succeeded in {took:g}s"
        return head + extra + wrote, True
    head = f"{done}/{total} done" if job.batch else "did not succeed"
    return f"{head}{extra}: " + "; ".join(parts) + wrote, False
