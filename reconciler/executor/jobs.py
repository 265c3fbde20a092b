"""A run-job change: upload, start (or reattach, or collect) exactly once, stream, download."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from reconciler import events as ev
from reconciler.errors import PodctlError
from reconciler.executor.context import ChangeFailed, StepContext
from reconciler.executor.ports import PodShell, Transferred
from reconciler.executor.teardown import terminate_pod
from reconciler.jobs.loglines import split_lines
from reconciler.jobs.remote import RemoteJob, archive_command, run_dir
from reconciler.model import ActualPod, Address, JobRecord, JobSpec, JobStatus, PodSpec, SecretRef
from reconciler.plans import Change, ChangeResult, Outcome

RETRY_BACKOFF_CAP_S = 30.0


@dataclass
class _Tally:
    """Files moved by one job, for its summary line."""

    files: int = 0
    bytes: int = 0
    skipped: int = 0

    def add(self, moved: Transferred) -> None:
        self.files += moved.files
        self.bytes += moved.bytes
        self.skipped += moved.skipped

    def text(self, verb: str) -> str:
        if not (self.files or self.skipped):
            return ""
        text = f"{verb} {self.files} file(s), {_size(self.bytes)}"
        return text + (f", {self.skipped} unchanged" if self.skipped else "")


def _size(n: int) -> str:
    """42 B, 2.0 kB, 104.9 MB (decimal units)."""
    if n < 1000:
        return f"{n} B"
    value = float(n)
    for unit in ("kB", "MB", "GB"):
        value /= 1000
        if value < 1000 or unit == "GB":
            break
    return f"{value:.1f} {unit}"


def job_env(job: JobSpec, secrets: Mapping[str, str]) -> dict[str, str]:
    """The job's env with from_env values filled in (sent on stdin, never written)."""
    return {
        k: secrets.get(v.from_env, "") if isinstance(v, SecretRef) else v
        for k, v in job.env.items()
    }


async def _job_pod(ctx: StepContext, change: Change, spec: PodSpec) -> ActualPod:
    """The job's pod, running with its SSH port mapped (waits if it was just resumed)."""
    pod = ctx.ready.get(spec.name)
    if pod is not None and pod.ssh is not None:
        return pod
    pod_id = ctx.pod_id_of(change)
    seen = ctx.actual.get(pod_id) if ctx.actual is not None and pod_id else None
    if seen is None:
        raise ChangeFailed(
            f"{spec.address} is not running, so the job cannot run (its pod change failed "
            "or the pod was removed)"
        )
    ready = await ctx.readiness.wait(seen, needs_ssh=True, timeout_s=ctx.timeout_s)
    ctx.ready[spec.name] = ready
    return ready


async def _open(ctx: StepContext, change: Change, spec: PodSpec, pod: ActualPod) -> PodShell:
    if ctx.shells is None:
        raise ChangeFailed("jobs need SSH, and this apply has no SSH access (a bug)")
    try:
        return await ctx.shells.open(pod)
    except PodctlError as exc:
        if spec.name in ctx.created:
            await terminate_pod(ctx, change, pod.pod_id, "SSH never answered")
            ctx.ready.pop(spec.name, None)
            raise ChangeFailed(f"{exc}; podctl terminated the pod it created") from exc
        raise


def _now() -> datetime:
    return datetime.now(UTC)


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def _run_seconds(remote: RemoteJob) -> float | None:
    """The run's own duration by its pod's clock (as the ledger records it), once it ended."""
    start, end = _parse_time(remote.started_at), _parse_time(remote.finished_at)
    return round((end - start).total_seconds(), 1) if start and end else None


async def _archive(shell: PodShell, where: str) -> None:
    """Move a finished (or lost) run aside, so a fresh start gets an empty run dir."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    code, _, err = await shell.run(archive_command(where, stamp))
    if code != 0:
        raise ChangeFailed(f"could not move the old run {where} aside: {err.strip()}")


async def run_job(ctx: StepContext, change: Change) -> ChangeResult:
    """Run one job exactly once: a run already on the pod is reattached or collected."""
    name = change.job or Address.strip(change.address, "job")
    job = ctx.desired.jobs.get(name)
    if job is None or change.fingerprint is None:
        raise ChangeFailed(f"job {name} is not in the spec (or the plan has no fingerprint)")
    spec = ctx.desired.pods[job.pod]
    pod = await _job_pod(ctx, change, spec)
    shell = await _open(ctx, change, spec, pod)
    lock = None if job.parallel else ctx.pod_lock(job.pod)
    if lock is not None:
        await lock.acquire()
    try:
        return await _run_locked(ctx, change, job, spec, pod, shell, change.fingerprint)
    finally:
        if lock is not None:
            lock.release()


async def _run_locked(
    ctx: StepContext,
    change: Change,
    job: JobSpec,
    spec: PodSpec,
    pod: ActualPod,
    shell: PodShell,
    fingerprint: str,
) -> ChangeResult:
    started = time.monotonic()
    up, down = _Tally(), _Tally()
    for t in job.upload:
        ctx.emit(ev.Transfer(change.address, "upload", t.source, t.target))
        sent = await shell.upload(Path(t.source), t.target)
        up.add(sent)
        ctx.emit(
            ev.Transfer(change.address, "upload", t.source, t.target, True, sent.files, sent.bytes)
        )
        for warning in sent.warnings:
            ctx.event(change, f"warning: {warning}")
    where = run_dir(spec.volume_mount, job.name, fingerprint)
    inputs = ctx.job_inputs.get(job.name, {})
    recorded = ctx.recorded_jobs.get(job.name)
    unfinished = (
        recorded is not None
        and recorded.status is JobStatus.RUNNING
        and recorded.fingerprint == fingerprint
    )

    def record(status: JobStatus, remote: RemoteJob | None, message: str = "") -> JobRecord:
        return JobRecord(
            fingerprint=fingerprint,
            pod_id=pod.pod_id,
            status=status,
            exit_code=None if remote is None else remote.exit_code,
            started_at=(_parse_time(remote.started_at) if remote else None) or _now(),
            finished_at=_parse_time(remote.finished_at) if remote else None,
            inputs=inputs,
            message=message,
        )

    def on_line(line: str) -> None:
        if ctx.on_job_line is not None:
            ctx.on_job_line(job.name, line)
        else:
            ctx.emit(ev.LogLine(change.address, line))

    counted = (
        recorded is not None
        and recorded.status is JobStatus.SUCCEEDED
        and recorded.fingerprint == fingerprint
    )

    async def start(attempt: int) -> RemoteJob:
        """Write-ahead, then one round trip that starts the run, or reports a live or ended
        one (the on-pod script starts nothing over an existing run)."""
        await ctx.write(ctx.journal.job_started, job.name, record(JobStatus.RUNNING, None))
        try:
            remote = await shell.start_job(
                where,
                job.run,
                env=job_env(job, ctx.secrets),
                workdir=job.workdir,
                timeout_s=job.timeout_s,
            )
        except PodctlError as exc:
            # never left `running`: a run the pod did start anyway is reattached (or
            # collected) by the next apply, as the start script starts nothing over it
            why = f"it could not be started: {exc}"
            await ctx.write(ctx.journal.job_finished, job.name, record(JobStatus.FAILED, None, why))
            raise ChangeFailed(why) from exc
        if remote.started_now:
            ctx.emit(ev.JobStarted(change.address, pod.pod_id, attempt + 1))
        return remote

    remote = await start(0)
    # A run of this fingerprint ended on the pod. A success the ledger does not hold yet
    # (podctl died before recording it) is collected, never run again; a failure, or a
    # success already counted (rerun: always, or a job it needs ran again) runs anew.
    ended = not remote.started_now and remote.state == "exited" and not unfinished
    if ended and (counted or not remote.succeeded):
        await _archive(shell, where)
        remote = await start(0)
    if not remote.started_now:
        if remote.state == "running":
            ctx.emit(ev.JobReattached(change.address, pod.pod_id, ended=False))
        elif remote.succeeded:
            ctx.emit(ev.JobReattached(change.address, pod.pod_id, ended=True))
    attempt = 0
    while True:
        if remote.log_text is not None:  # it ended within the start: its whole log came along
            for line in split_lines(remote.log_text.encode()):  # as follow_log splits
                on_line(line)
        elif remote.state in ("running", "exited"):
            # stream (or, for a run that already ended, replay) its log: every run's lines
            # reach the terminal and the local copy once
            remote = await shell.follow_log(where, on_line)
        if remote.succeeded:
            break
        code = remote.exit_code
        why = "timed out" if remote.timed_out else f"exit {code}"
        if remote.state != "exited":
            why = f"its run was lost ({remote.state}: the pod restarted or the folder is gone)"
        if attempt >= job.retries:
            await ctx.write(
                ctx.journal.job_finished, job.name, record(JobStatus.FAILED, remote, why)
            )
            tries = "1 try" if attempt == 0 else f"{attempt + 1} tries"
            raise ChangeFailed(f"{why} after {tries}; log: podctl logs {job.name}", job_exit=code)
        attempt += 1
        delay = min(ctx.readiness.policy.initial_s * 2**attempt, RETRY_BACKOFF_CAP_S)
        ctx.emit(ev.JobRetrying(change.address, why, delay, attempt, job.retries))
        await ctx.sleep(delay)
        await _archive(shell, where)
        remote = await start(attempt)
    landed: list[str] = []
    try:
        for t in job.download:
            ctx.emit(ev.Transfer(change.address, "download", t.source, t.target))
            got = await shell.download(t.source, t.target)
            down.add(got)
            ctx.emit(
                ev.Transfer(
                    change.address, "download", t.source, t.target, True, got.files, got.bytes
                )
            )
            for warning in got.warnings:
                ctx.event(change, f"warning: {warning}")
            if got.landed and got.landed not in landed:
                landed.append(got.landed)
    except PodctlError as exc:
        message = f"succeeded, but its results could not be downloaded: {exc}"
        await ctx.write(
            ctx.journal.job_finished, job.name, record(JobStatus.FAILED, remote, message)
        )
        raise ChangeFailed(
            message + "; the next apply downloads them without running it again"
        ) from exc
    where_to = f"results in {', '.join(landed)}" if landed else ""
    await ctx.write(
        ctx.journal.job_finished, job.name, record(JobStatus.SUCCEEDED, remote, where_to)
    )
    took = _run_seconds(remote)  # what the ledger and `podctl status` say, a reattach too
    took = round(time.monotonic() - started, 1) if took is None else took
    downloaded = down.text("downloaded") + (f" to {', '.join(landed)}" if landed else "")
    parts = [f"succeeded in {took:g}s"] + [t for t in (up.text("uploaded"), downloaded) if t]
    return ChangeResult(
        change.address,
        change.action,
        Outcome.DONE,
        message="; ".join(parts),
        pod_id=pod.pod_id,
        duration_s=took,
    )
