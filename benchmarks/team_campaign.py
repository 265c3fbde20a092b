"""The team campaign: two runners sharing one stack's state on PostgreSQL, under failures.

Run: `.venv/bin/python -m benchmarks.team_campaign [--trials 24] [--seed 1] [--quick]`.
Every trial starts from an empty sandbox and an empty database on a throwaway PostgreSQL
server, with two runner folders (a and b: no shared disk, one team SSH key), and injects one
failure: two concurrent applies, a kill -9 of runner a mid-apply (runner b then applies at
once with `--lock-timeout 0`), a database restart mid-apply, or a kill -9 of the leading
`podctl reconcile` of two replicas. Runner b then re-applies until `podctl plan
--detailed-exitcode` exits 0, and the trial checks: duplicates (more than one pod with the
stack's markers per spec pod), orphans (a pod of the stack the store does not record), double
runs (a job's ledger, a file outside every pod, has more than one line), lost results (a job
not recorded succeeded, or its downloaded result in neither runner's folder), stale locks
(an advisory lock still held once every podctl is gone, or runner b refused the lock for
5 s after runner a died) and tracebacks. Writes its section of RELIABILITY.md (not with
`--quick`).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.cli_startup import podctl_command
from benchmarks.report import record, table
from reconciler.model import JobStatus
from reconciler.sandbox import control
from reconciler.ssh import ensure_stack_key
from reconciler.state.postgres import PostgresStore
from tests.postgres import NoPostgres, PgServer, throwaway_server

ROOT = Path(__file__).resolve().parent.parent
RELIABILITY_MD = ROOT / "RELIABILITY.md"
STACK = "team"
PODS = ("a", "b")
JOBS = {"j1": "a", "j2": "b", "j3": "a"}  # j3 needs j1
POLL = "0.02"
MAX_ROUNDS = 5
PODS_QUERY = "query { myself { pods { id name desiredStatus env } } }"
KINDS = ("concurrent applies", "kill -9 mid-apply", "database restart mid-apply", "leader kill -9")


def spec_text(ledger: Path) -> str:
    lines = [
        "version: 1",
        f"stack: {STACK}",
        "defaults:",
        "  image: runpod/base:0.6.2-cpu",
        "  ports: [22/tcp]",
        "pods:",
        *(f"  {pod}:\n    gpu: {{type: NVIDIA RTX A4000}}" for pod in PODS),
        "jobs:",
    ]
    for job, pod in JOBS.items():
        lines += [
            f"  {job}:",
            f"    pod: {pod}",
            *(["    needs: [j1]"] if job == "j3" else []),
            "    run: |",
            f"      echo run >> {ledger}/{job}",
            "      sleep 1",
            f"      mkdir -p /workspace/out/{job} && echo ok > /workspace/out/{job}/result",
            f"    download: [{{from: /workspace/out/{job}, to: ./results/{job}/}}]",
        ]
    return "\n".join(lines) + "\n"


@dataclass
class Outcome:
    """What one trial found (each count should be 0)."""

    kind: str
    seed: int
    rounds: int | None = None  # applies of runner b until the plan was empty; None: never
    duplicates: int = 0
    orphans: int = 0
    double_runs: int = 0
    lost_results: int = 0
    stale_locks: int = 0
    tracebacks: int = 0
    waited_for_lock: int = 0  # runner b's `--lock-timeout 0` apply found the lock still held
    landed: bool = False  # the failure hit mid-way (not after the run had finished)
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.rounds is not None and not self.problems


class Lab:
    """A sandbox, a PostgreSQL server, the team key and two runner folders per trial."""

    def __init__(self, root: Path, pg: PgServer) -> None:
        self.root, self.pg = root, pg
        self.data_dir = root / "sandbox"
        self.info = control.start_detached(self.data_dir, start_delay=0, stock=64)
        self.key = root / "team_id_ed25519"
        ensure_stack_key(self.key)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNPOD_", "PODCTL_"))}
        self.env = {
            **env,
            "HOME": str(root / "home"),
            "PODCTL_SANDBOX_DIR": str(self.data_dir),
            "PODCTL_POLL_INTERVAL": POLL,
            "PODCTL_SSH_KEY": str(self.key),
            "PODCTL_DEBUG": "1",  # an internal error shows its whole traceback here
        }
        self.database = ""
        self.trial = 0

    @property
    def url(self) -> str:
        return self.pg.url(self.database)

    def folder(self, runner: str) -> Path:
        return self.root / "trial" / runner

    @property
    def ledger(self) -> Path:
        return self.root / "trial" / "ledger"

    def reset(self) -> None:
        control.reset(self.data_dir)
        shutil.rmtree(self.root / "trial", ignore_errors=True)
        self.ledger.mkdir(parents=True)
        for runner in ("a", "b"):
            self.folder(runner).mkdir()
            (self.folder(runner) / "podctl.yaml").write_text(spec_text(self.ledger))
        self.trial += 1
        self.database = f"trial{self.trial}"
        self.pg.sql(f"CREATE DATABASE {self.database}")

    def close(self) -> None:
        control.stop(self.data_dir, kill_pods=True)

    def argv(self, runner: str, *args: str) -> list[str]:
        spec = str(self.folder(runner) / "podctl.yaml")
        return [*podctl_command(), "--sandbox", "--state", self.url, *args, "-f", spec]

    def run(
        self, runner: str, *args: str, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.argv(runner, *args),
            env=self.env,
            cwd=self.folder(runner),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def popen(self, runner: str, *args: str, out: Path | None = None) -> subprocess.Popen[str]:
        sink = out.open("w") if out is not None else subprocess.PIPE
        try:
            return CHILDREN.add(subprocess.Popen(
                self.argv(runner, *args),
                env=self.env,
                cwd=self.folder(runner),
                stdout=sink,
                stderr=subprocess.PIPE,
                text=True,
            ))  # fmt: skip
        finally:
            if out is not None and not isinstance(sink, int):
                sink.close()

    def advisory_locks(self) -> int:
        rows = self.pg.sql(
            "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
            "WHERE l.locktype = 'advisory' AND d.datname = %s",
            self.database,
        )
        return int(rows[0][0])

    def live_pods(self) -> list[dict[str, Any]]:
        answer = control.request(self.info, "POST", "/graphql", {"query": PODS_QUERY})
        pods = [p for p in answer["data"]["myself"]["pods"] if p["desiredStatus"] != "TERMINATED"]
        for pod in pods:
            pod["env"] = dict(i.split("=", 1) for i in pod.get("env") or [] if "=" in i)
        return pods


def _stderr(proc: subprocess.Popen[str]) -> str:
    return proc.stderr.read() if proc.stderr is not None else ""


def _traceback(text: str, outcome: Outcome | None = None) -> bool:
    found = "Traceback" in text or "Internal error" in text
    if found and outcome is not None:
        outcome.problems.append("traceback: " + text[-600:].replace("\n", " | "))
        Path(f"/tmp/teams-traceback-{outcome.seed}.txt").write_text(text)
    return found


class Children:
    """The podctl processes a trial started: killed when it ends, however it ends."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[str]] = []

    def add(self, proc: subprocess.Popen[str]) -> subprocess.Popen[str]:
        self.procs.append(proc)
        return proc

    def kill_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        self.procs.clear()


CHILDREN = Children()


def _wait(test: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if test():
            return True
        time.sleep(0.05)
    return False


def _finish(proc: subprocess.Popen[str], timeout: float = 300) -> str:
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    return err or ""


# --- the failures -----------------------------------------------------------------------------


def concurrent(lab: Lab, rng: random.Random, outcome: Outcome) -> None:
    first = lab.popen("a", "apply", "-y", "--lock-timeout", "5m")
    time.sleep(rng.uniform(0, 0.3))
    second = lab.popen("b", "apply", "-y", "--lock-timeout", "5m")
    errs = [_finish(first), _finish(second)]
    outcome.landed = True
    for proc, err in zip((first, second), errs, strict=True):
        outcome.tracebacks += _traceback(err, outcome)
        if proc.returncode != 0:
            outcome.problems.append(f"a concurrent apply exited {proc.returncode}: {err[-300:]}")


def _runner_b_takes_the_lock(lab: Lab, outcome: Outcome) -> None:
    """Runner b at once (`--lock-timeout 0`); a refusal waits at most 5 s, else a stale lock."""
    at_once = lab.run("b", "apply", "-y", "--lock-timeout", "0")
    outcome.tracebacks += _traceback(at_once.stderr, outcome)
    if "is locked by" in at_once.stderr:
        outcome.waited_for_lock += 1
        again = lab.run("b", "apply", "-y", "--lock-timeout", "5s")
        if "is locked by" in again.stderr:
            outcome.stale_locks += 1
            outcome.problems.append("the lock stayed held 5 s after its holder died")


def kill_mid_apply(lab: Lab, rng: random.Random, outcome: Outcome) -> None:
    proc = lab.popen("a", "apply", "-y")
    time.sleep(rng.uniform(0.3, 4.0))
    outcome.landed = proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    _finish(proc)
    _runner_b_takes_the_lock(lab, outcome)


def restart_mid_apply(lab: Lab, rng: random.Random, outcome: Outcome) -> None:
    proc = lab.popen("a", "apply", "-y")
    time.sleep(rng.uniform(0.3, 4.0))
    outcome.landed = proc.poll() is None
    lab.pg.restart(pause=rng.uniform(0, 1.0))
    err = _finish(proc)
    outcome.tracebacks += _traceback(err, outcome)
    if outcome.landed and proc.returncode not in (0, 1):
        outcome.problems.append(f"apply exited {proc.returncode} on the restart: {err[-300:]}")


def kill_the_leader(lab: Lab, rng: random.Random, outcome: Outcome) -> None:
    outs = {r: lab.root / "trial" / f"{r}.jsonl" for r in ("a", "b")}
    loop = ("--format", "json", "reconcile", "--interval", "1s")
    leader = lab.popen("a", *loop, out=outs["a"])

    def leads() -> bool:
        try:
            return bool(lab.pg.sql(
                "SELECT 1 FROM holders WHERE stack = %s", f"{STACK}.reconcile",
                database=lab.database,
            ))  # fmt: skip
        except Exception:  # the schema is not made yet
            return False

    held = _wait(leads, 60)
    standby = lab.popen("b", *loop, out=outs["b"])
    time.sleep(rng.uniform(0.2, 2.5))
    outcome.landed = held and not (lab.ledger / "j3").exists()
    leader.send_signal(signal.SIGKILL)
    _finish(leader)

    def rounds() -> list[dict[str, Any]]:
        text = outs["b"].read_text() if outs["b"].exists() else ""
        lines = [json.loads(t) for t in text.splitlines() if t.startswith("{")]
        return [line for line in lines if line.get("event") == "round"]

    took = _wait(
        lambda: any(r["role"] == "leader" and r["outcome"] == "converged" for r in rounds()), 120
    )
    standby.send_signal(signal.SIGTERM)
    err = _finish(standby, timeout=120)
    outcome.tracebacks += _traceback(err, outcome)
    if not took:
        outcome.problems.append(f"the standby never led a converged round: {err[-300:]}")


FAILURES: dict[str, Callable[[Lab, random.Random, Outcome], None]] = dict(
    zip(KINDS, (concurrent, kill_mid_apply, restart_mid_apply, kill_the_leader), strict=True)
)


# --- checking -------------------------------------------------------------------------------------


def converge(lab: Lab, outcome: Outcome) -> None:
    for rounds in range(1, MAX_ROUNDS + 1):
        applied = lab.run("b", "apply", "-y", "--lock-timeout", "30s")
        outcome.tracebacks += _traceback(applied.stderr, outcome)
        if lab.run("b", "plan", "--detailed-exitcode").returncode == 0:
            outcome.rounds = rounds
            return
    outcome.problems.append("runner b did not converge")


def check(lab: Lab, outcome: Outcome) -> None:
    ours = [p for p in lab.live_pods() if p["env"].get("PODCTL_STACK") == STACK]
    by_name: dict[str, list[str]] = {}
    for pod in ours:
        by_name.setdefault(pod["env"].get("PODCTL_POD", "?"), []).append(pod["id"])
    outcome.duplicates = sum(max(0, len(ids) - 1) for ids in by_name.values())
    outcome.duplicates += sum(len(ids) for name, ids in by_name.items() if name not in PODS)
    state = PostgresStore(lab.url, STACK).read()
    recorded = {r.pod_id for r in state.pods.values()}
    outcome.orphans = sum(1 for pod in ours if pod["id"] not in recorded)
    for job in JOBS:
        ledger = lab.ledger / job
        runs = len(ledger.read_text().splitlines()) if ledger.exists() else 0
        outcome.double_runs += runs > 1
        job_record = state.jobs.get(job)
        results = [lab.folder(r) / "results" / job / "result" for r in ("a", "b")]
        if (
            runs == 0
            or job_record is None
            or job_record.status is not JobStatus.SUCCEEDED
            or not any(p.exists() for p in results)
        ):
            outcome.lost_results += 1
    if not _wait(lambda: lab.advisory_locks() == 0, 5):
        outcome.stale_locks += 1
        outcome.problems.append("an advisory lock outlived every podctl")
    for name, count in (
        ("duplicate pod(s)", outcome.duplicates),
        ("orphan(s)", outcome.orphans),
        ("double run(s)", outcome.double_runs),
        ("lost result(s)", outcome.lost_results),
        ("traceback(s)", outcome.tracebacks),
    ):
        if count:
            outcome.problems.append(f"{count} {name}")


def trial(lab: Lab, kind: str, seed: int) -> Outcome:
    lab.reset()
    outcome = Outcome(kind, seed)
    start = time.perf_counter()
    try:
        FAILURES[kind](lab, random.Random(seed), outcome)
    finally:
        CHILDREN.kill_all()
    converge(lab, outcome)
    check(lab, outcome)
    outcome.seconds = time.perf_counter() - start
    return outcome


# --- reporting ------------------------------------------------------------------------------------


def summary(outcomes: list[Outcome]) -> str:
    rows = []
    for kind in KINDS:
        mine = [o for o in outcomes if o.kind == kind]
        if not mine:
            continue
        rounds = [o.rounds for o in mine if o.rounds is not None]
        rows.append(
            [
                kind,
                len(mine),
                sum(o.landed for o in mine),
                sum(o.duplicates for o in mine),
                sum(o.orphans for o in mine),
                sum(o.double_runs for o in mine),
                sum(o.lost_results for o in mine),
                sum(o.stale_locks for o in mine),
                sum(o.tracebacks for o in mine),
                sum(o.waited_for_lock for o in mine),
                max(rounds) if rounds else "n/a",
                f"{sum(o.seconds for o in mine):.1f} s",
                "ok" if all(o.ok for o in mine) else "FAILED",
            ]
        )
    headers = (
        "campaign", "trials", "landed mid-way", "duplicates", "orphans", "double runs",
        "lost results", "stale locks", "tracebacks", "lock busy at once", "max rounds",
        "wall time", "result",
    )  # fmt: skip
    return table(headers, rows)


NOTES = """\
- Two runners: folders a and b with the same spec (2 pods with 22/tcp; jobs j1 and j3 on pod
  a, j3 after j1, j2 on pod b; each appends a line to a ledger file outside every pod, then
  writes a result that apply downloads to the runner's ./results/), no shared disk, one
  team SSH key (`PODCTL_SSH_KEY`), the state in a fresh database of a throwaway PostgreSQL 15.
- concurrent applies: a and b start `apply -y --lock-timeout 5m` at once (b 0-0.3 s later):
  both exit 0, the second finding the first one's pods and job ledger.
- kill -9 mid-apply: SIGKILL of runner a at a seeded moment (0.3-4 s), then runner b applies
  at once with `--lock-timeout 0` ("lock busy at once": the server had not yet noticed the
  dead connection, and b waited for it up to 5 s; a lock held after that is a stale lock).
- database restart mid-apply: `pg_ctl stop -m immediate` (every session dropped, as in a
  crash), start again after 0-1 s; the apply must stop cleanly (exit 1, no traceback).
- leader kill -9: two `podctl reconcile --interval 1s` loops (a leads, b waits); SIGKILL of
  the leader at a seeded moment (0.2-2.5 s after b started); b must take over and reach a
  converged round; then SIGTERM.
- After each failure runner b re-applies until `plan --detailed-exitcode` exits 0 (rounds).
- Findings of the first runs, fixed since: a server gone right after podctl connected (its
  schema check) was an internal error, not "the state store failed"; an apply stopped by a
  lost connection while downloading printed the errors of asyncio tasks it had cancelled but
  not awaited (podctl's own, and asyncssh's parallel reads)."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=24, help="in all, spread over the kinds")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="one trial per kind; no write")
    parser.add_argument("--kind", choices=KINDS, help="only this kind of trial; no write")
    args = parser.parse_args(argv)
    trials = len(KINDS) if args.quick else max(args.trials, len(KINDS))
    kinds = (args.kind,) if args.kind else KINDS
    # SIGTERM (e.g. `timeout`) unwinds like ^C: the sandbox, the server, the children go
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    outcomes: list[Outcome] = []
    started = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix="podctl-team-") as tmp, throwaway_server() as pg:
            lab = Lab(Path(tmp), pg)
            try:
                for n in range(trials):
                    kind = kinds[n % len(kinds)]
                    outcome = trial(lab, kind, args.seed * 1000 + n)
                    outcomes.append(outcome)
                    status = "ok" if outcome.ok else "; ".join(outcome.problems)
                    print(f"{kind} #{n} seed {outcome.seed}: {outcome.seconds:.1f} s, {status}")
            finally:
                lab.close()
    except NoPostgres as exc:
        raise SystemExit(str(exc)) from None
    body = summary(outcomes)
    failures = [o for o in outcomes if not o.ok]
    listed = "\n".join(f"- {o.kind} seed {o.seed}: {'; '.join(o.problems)}" for o in failures)
    text = f"{body}\n\n{NOTES}\n\nFailures: {'none' if not failures else ''}\n{listed}".rstrip()
    print(body)
    if not args.quick and not args.kind:
        record(
            "team_campaign",
            "Teams: two runners on one PostgreSQL state, under kills and restarts",
            text,
            note=f"`--trials {trials} --seed {args.seed}`, {time.perf_counter() - started:.0f} s "
            "in all. Duplicates to tracebacks must all be 0; landed mid-way and lock busy at "
            "once are informational.",
            path=RELIABILITY_MD,
        )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
