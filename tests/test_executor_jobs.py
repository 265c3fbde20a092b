"""The executor's job step against a fake pod shell: exactly once, reattach, collect, retries."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from reconciler.executor import PollPolicy, execute
from reconciler.jobs.remote import RemoteJob
from reconciler.model import (
    ActualPod,
    AfterJobs,
    DesiredState,
    JobRecord,
    JobSpec,
    JobStatus,
    PodSpec,
    PodStatus,
    Rerun,
    Transfer,
)
from reconciler.plans import Action, ApplyResult, Change, Outcome, Plan
from tests.executor_fakes import FakeApi, ListJournal, change, spec

FAST = PollPolicy(initial_s=0.001, max_s=0.002)
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


@dataclass
class Moved:
    files: int = 1
    bytes: int = 10
    skipped: int = 0
    warnings: tuple[str, ...] = ()
    landed: str = ""


@dataclass
class FakeShell:
    """Run dirs in a dict; each start 'runs' at once with the next scripted exit code."""

    runs: dict[str, RemoteJob] = field(default_factory=dict)
    exit_codes: list[int] = field(default_factory=list)
    starts: Counter[str] = field(default_factory=Counter)
    commands: list[str] = field(default_factory=list)
    envs: list[Mapping[str, str]] = field(default_factory=list)
    uploads: list[tuple[Path, str]] = field(default_factory=list)
    downloads: list[tuple[str, Path | str]] = field(default_factory=list)
    log: list[str] = field(default_factory=lambda: ["line 1", "line 2"])
    quick: bool = False  # runs end within the start: the log comes back with it
    follows: int = 0

    async def run(
        self, command: str, *, stdin: str | None = None, timeout_s: float | None = None
    ) -> tuple[int, str, str]:
        self.commands.append(command)
        if command.startswith("mv "):
            where = command.split("'")[1]
            self.runs.pop(where, None)
        return 0, "", ""

    async def start_job(
        self,
        run_dir: str,
        command: str,
        *,
        env: Mapping[str, str],
        workdir: str | None,
        timeout_s: int | None,
    ) -> RemoteJob:
        existing = self.runs.get(run_dir)
        if existing is not None and existing.state in ("running", "exited"):
            return existing  # like the on-pod script: never starts over a live or ended run
        self.starts[run_dir] += 1
        self.envs.append(env)
        self.runs[run_dir] = RemoteJob("running", None, "2026-01-02T03:04:05Z", None, 0)
        if self.quick:
            code = self.exit_codes.pop(0) if self.exit_codes else 0
            done = RemoteJob("exited", code, "2026-01-02T03:04:05Z", "2026-01-02T03:04:06Z", 12)
            self.runs[run_dir] = done
            return replace(done, started_now=True, log_text="".join(f"{x}\n" for x in self.log))
        return replace(self.runs[run_dir], started_now=True)

    async def job_status(self, run_dir: str) -> RemoteJob:
        return self.runs.get(run_dir) or RemoteJob("absent", None, None, None, 0)

    async def follow_log(
        self, run_dir: str, on_line: Callable[[str], None], *, offset: int = 0
    ) -> RemoteJob:
        self.follows += 1
        for line in self.log:
            on_line(line)
        code = self.exit_codes.pop(0) if self.exit_codes else 0
        done = RemoteJob("exited", code, "2026-01-02T03:04:05Z", "2026-01-02T03:04:06Z", 12)
        self.runs[run_dir] = done
        return done

    async def upload(self, local: Path, remote_path: str) -> Moved:
        self.uploads.append((local, remote_path))
        return Moved()

    async def download(self, remote_path: str, local: Path | str) -> Moved:
        self.downloads.append((remote_path, local))
        return Moved(files=2, bytes=2000, warnings=("skipped 'x': a FIFO",), landed="out/")


@dataclass
class FakeShells:
    shell: FakeShell
    opened: list[str] = field(default_factory=list)

    async def open(self, pod: ActualPod) -> FakeShell:
        self.opened.append(pod.pod_id)
        return self.shell

    async def aclose(self) -> None:
        pass


JOB = JobSpec(
    name="train",
    pod="box",
    run="python train.py",
    env={"EPOCHS": "3"},
    upload=(Transfer("/tmp/data", "/workspace/data"),),
    download=(Transfer("/workspace/out", "/tmp/out"),),
)
RUN_DIR = "/workspace/.podctl/jobs/train/fp1"


def job_change(job: JobSpec = JOB, pod_id: str | None = "p1", **kw: Any) -> Change:
    values: dict[str, Any] = {
        "address": job.address,
        "action": Action.RUN_JOB,
        "reason": "new",
        "pod": job.pod,
        "pod_id": pod_id,
        "job": job.name,
        "fingerprint": "fp1",
    }
    values.update(kw)
    return Change(**values)


def run(
    changes: tuple[Change, ...],
    api: FakeApi,
    journal: ListJournal,
    shell: FakeShell,
    *,
    pod: PodSpec | None = None,
    jobs: tuple[JobSpec, ...] = (JOB,),
    **kw: Any,
) -> ApplyResult:
    pod = pod or spec(ports=("22/tcp",))
    d = DesiredState(stack="st", pods={pod.name: pod}, jobs={j.name: j for j in jobs})
    lines: list[tuple[str, str]] = kw.pop("lines", [])
    return asyncio.run(
        execute(
            Plan(stack="st", changes=changes),
            d,
            api,
            journal,
            secrets={},
            poll=FAST,
            now=lambda: NOW,
            fingerprint=lambda s: f"fp-{s.name}",
            shells=FakeShells(shell),
            actual=asyncio.run(api.list_pods()),
            on_job_line=lambda job, line: lines.append((job, line)),
            **kw,
        )
    )


def _pod_running(api: FakeApi) -> None:
    api.add("p1", "st", "box", PodStatus.RUNNING)


def test_a_job_runs_once_written_ahead_with_uploads_downloads_and_streamed_lines() -> None:
    api, journal, shell = FakeApi(), ListJournal(), FakeShell()
    _pod_running(api)
    lines: list[tuple[str, str]] = []
    result = run((job_change(),), api, journal, shell, lines=lines)
    assert result.ok, result
    assert shell.starts == Counter({RUN_DIR: 1})
    assert journal.entries == [
        ("job_started", "train", "p1", "fp1"),
        ("job_finished", "train", "succeeded", 0),
    ]
    assert lines == [("train", "line 1"), ("train", "line 2")]
    assert shell.uploads == [(Path("/tmp/data"), "/workspace/data")]
    assert shell.downloads == [("/workspace/out", "/tmp/out")]
    assert shell.envs == [{"EPOCHS": "3"}]
    message = result.results[0].message
    assert "uploaded 1 file(s), 10 B" in message
    assert "downloaded 2 file(s), 2.0 kB to out/" in message


def test_a_run_still_going_on_the_pod_is_reattached_not_started_again() -> None:
    api, journal, shell = FakeApi(), ListJournal(), FakeShell()
    _pod_running(api)
    shell.runs[RUN_DIR] = RemoteJob("running", None, "2026-01-02T03:04:05Z", None, 5)
    result = run((job_change(reason="unfinished"),), api, journal, shell)
    assert result.ok
    assert shell.starts == Counter()  # reattached
    assert journal.kinds() == ["job_started", "job_finished"]  # write-ahead, then the end


def test_a_run_that_finished_on_the_pod_is_collected_not_run_again() -> None:
    api, journal, shell = FakeApi(), ListJournal(), FakeShell()
    _pod_running(api)
    shell.runs[RUN_DIR] = RemoteJob("exited", 0, "t0", "t1", 5)
    result = run((job_change(),), api, journal, shell)
    assert result.ok and shell.starts == Counter()
    assert shell.downloads  # its results are still collected
    # rerun: always starts afresh once the last run was recorded
    always = replace(JOB, rerun=Rerun.ALWAYS)
    shell2 = FakeShell(runs={RUN_DIR: RemoteJob("exited", 0, "t0", "t1", 5)})
    recorded = {"train": JobRecord("fp1", "p1", JobStatus.SUCCEEDED, exit_code=0)}
    result = run(
        (job_change(always),), api, ListJournal(), shell2, jobs=(always,), recorded_jobs=recorded
    )
    assert result.ok and shell2.starts == Counter({RUN_DIR: 1})
    assert any(c.startswith("mv ") for c in shell2.commands)


def test_failures_retry_then_fail_and_skip_dependants() -> None:
    api, journal, shell = FakeApi(), ListJournal(), FakeShell(exit_codes=[3, 4])
    _pod_running(api)
    job = replace(JOB, retries=1, download=())
    after = JobSpec(name="eval", pod="box", run="eval", needs=("train",))
    changes = (job_change(job), job_change(after, depends_on=("job.train",), fingerprint="fp2"))
    result = run(changes, api, journal, shell, jobs=(job, after))
    assert [r.outcome for r in result.results] == [Outcome.FAILED, Outcome.SKIPPED]
    assert result.results[0].message == "exit 4 after 2 tries; log: podctl logs train"
    assert result.results[0].exit_code == 4
    assert shell.starts == Counter({RUN_DIR: 2})
    assert journal.entries[-1] == ("job_finished", "train", "failed", 4)


def test_create_then_jobs_then_terminate_after_jobs_uses_the_new_pod() -> None:
    api, journal, shell = FakeApi(), ListJournal(), FakeShell()
    pod = spec(ports=("22/tcp",), after_jobs=AfterJobs.TERMINATE)
    changes = (
        change(pod, Action.CREATE),
        job_change(pod_id=None, depends_on=("pod.box",)),
        change(pod, Action.TERMINATE, depends_on=("job.train",)),
    )
    result = run(changes, api, journal, shell, pod=pod)
    assert result.ok, result
    assert [r.pod_id for r in result.results] == ["pod1", "pod1", "pod1"]
    assert api.pods == {}  # created, ran its job, terminated
    assert journal.kinds() == ["intend", "created", "job_started", "job_finished", "terminated"]


def test_a_job_that_ended_within_its_start_is_not_followed_and_its_lines_still_show() -> None:
    api, journal, shell = FakeApi(), ListJournal(), FakeShell(quick=True)
    _pod_running(api)
    lines: list[tuple[str, str]] = []
    result = run((job_change(replace(JOB, download=())),), api, journal, shell, lines=lines)
    assert result.ok and shell.follows == 0
    assert lines == [("train", "line 1"), ("train", "line 2")]
    assert journal.kinds() == ["job_started", "job_finished"]


def test_a_start_that_fails_before_the_pod_runs_anything_is_recorded_failed() -> None:
    from reconciler.errors import JobError

    class Refusing(FakeShell):
        async def start_job(self, run_dir: str, command: str, **kw: Any) -> RemoteJob:
            raise JobError("a NUL character cannot be passed to a shell")

    api, journal, shell = FakeApi(), ListJournal(), Refusing()
    _pod_running(api)
    result = run((job_change(),), api, journal, shell)
    assert not result.ok
    assert journal.entries == [
        ("job_started", "train", "p1", "fp1"),
        ("job_finished", "train", "failed", None),
    ]
    assert "could not be started: a NUL character" in result.results[0].message
