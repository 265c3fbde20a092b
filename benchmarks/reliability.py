"""Fault and crash campaigns: kill -9, API faults, lost responses, preemption, restarts, locks.

Run: `.venv/bin/python -m benchmarks.reliability [--trials 50] [--seed 1] [--quick] [--no-jobs]`.
Every trial drives the real `podctl` command (subprocesses) against a private sandbox in a
temp dir, reset between trials, injects one kind of failure, re-applies until
`podctl plan --detailed-exitcode` exits 0, then checks through the sandbox's API and the
lockfile: one pod per spec pod carrying the stack's markers (0 duplicates), no pod of the
stack missing from the lockfile (0 orphans), the lockfile parses, and (with jobs) no job ran
twice and no downloaded result is missing. Prints a table and writes RELIABILITY.md (not
with `--quick`). tests/e2e/test_reliability.py runs a few of the same trials in CI.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.cli_startup import podctl_command
from benchmarks.report import table
from reconciler.errors import LockfileError
from reconciler.lockfile.codec import loads
from reconciler.sandbox import control, layout

ROOT = Path(__file__).resolve().parent.parent
RELIABILITY_MD = ROOT / "RELIABILITY.md"
STACK = "rel"
POD_NAMES = ("a", "b", "c", "d")
EXHAUSTED = "NVIDIA A40"  # the first GPU type of pod b's fallback chain: never has capacity
STOCK = 64
POLL = "0.02"  # PODCTL_POLL_INTERVAL: readiness polls every 20 ms instead of 1 s
API_FAULT_KINDS = ["429", "500", "502", "reset"]
MAX_ROUNDS = 5
JOBS_UNSUPPORTED = "jobs not supported by this podctl yet"
JOB_NAMES = ("j1", "j2", "j3")
J4_SECONDS = 1.5  # long enough for a preemption to land while it runs
RECOVERY_WORDS = ("podctl state rebuild", "upgrade podctl")
PODS_QUERY = "query { myself { pods { id name desiredStatus env } } }"


def spec_text(states: dict[str, str] | None = None, *, with_jobs: bool = False) -> str:
    """Four pods: plain, a GPU fallback chain (its first type exhausted), 2 GPUs, spot.

    `states` overrides a pod's `state` (running, stopped, absent). With jobs, pods a and b
    open 22/tcp and three jobs append a line to a ledger on the pod's volume, then write a
    result that apply downloads to ./results/<job>/.
    """
    states = states or {}
    ports = "[22/tcp, 8888/http]" if with_jobs else "[8888/http]"
    lines = [
        "version: 1",
        f"stack: {STACK}",
        "defaults:",
        "  image: runpod/base:0.6.2-cpu",
        "pods:",
        "  a:",
        "    gpu: {type: NVIDIA RTX A4000, count: 1}",
        f"    ports: {ports}",
        "  b:",
        f"    gpu: {{type: [{EXHAUSTED}, NVIDIA L4, NVIDIA RTX A5000], count: 1}}",
        f"    ports: {ports}",
        "  c:",
        "    gpu: {type: NVIDIA RTX A4000, count: 2}",
        "    ports: [8888/http]",
        "    env: {MODE: campaign}",
        "  d:",
        "    gpu: {type: NVIDIA RTX A6000, count: 1}",
        "    spot: {bid_per_gpu: 0.5}",
        "    on_resume_failure: recreate",
        f"    ports: {ports}",
    ]
    out: list[str] = []
    for line in lines:
        out.append(line)
        name = line.strip().rstrip(":")
        if line.startswith("  ") and not line.startswith("   ") and name in states:
            out.append(f"    state: {states[name]}")
    if with_jobs:
        out.append("jobs:")
        out += [  # on the spot pod: a preemption kills it midway; its ledger line comes last
            "  j4:",
            "    pod: d",
            "    run: |",
            "      mkdir -p /workspace/ledger /workspace/out/j4",
            f"      sleep {J4_SECONDS}",
            "      echo run >> /workspace/ledger/j4",
            "      echo ok > /workspace/out/j4/result",
            "    download: [{from: /workspace/out/j4, to: ./results/j4/}]",
        ]
        for job, pod, needs in (("j1", "a", None), ("j2", "b", None), ("j3", "a", "j1")):
            out += [
                f"  {job}:",
                f"    pod: {pod}",
                *([f"    needs: [{needs}]"] if needs else []),
                "    run: |",
                f"      mkdir -p /workspace/ledger /workspace/out/{job}",
                f"      echo run >> /workspace/ledger/{job}",
                "      sleep 0.3",
                f"      echo ok > /workspace/out/{job}/result",
                f"    download: [{{from: /workspace/out/{job}, to: ./results/{job}/}}]",
            ]
    return "\n".join(out) + "\n"


@dataclass
class Run:
    """One finished `podctl` command."""

    code: int
    out: str
    err: str
    seconds: float


@dataclass
class Check:
    """What the sandbox and the lockfile say once a trial has converged (or given up)."""

    duplicates: int = 0  # extra pods with this stack's markers for one spec pod
    orphans: int = 0  # pods with this stack's markers that the lockfile does not record
    missing: int = 0  # spec pods that should exist and do not, or are in the wrong state
    lockfile_ok: bool = True  # parses, and records the pods that run
    stale_intents: int = 0  # create intents still pending once the plan is empty
    double_runs: int = 0  # jobs recorded succeeded whose ledger has more than one line
    lost_results: int = 0  # jobs recorded succeeded whose downloaded result is missing
    jobs_recorded: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class Trial:
    """One seeded trial of one campaign."""

    campaign: str
    seed: int
    rounds: int | None  # applies after the fault until the plan was empty; None: never
    faults: int  # failures injected (API faults, lost answers, kills, restarts, ...)
    seconds: float
    check: Check
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.rounds is not None and self.check.ok

    def describe(self) -> str:
        rounds = "did not converge" if self.rounds is None else f"{self.rounds} round(s)"
        problems = "; ".join(self.check.problems) or "ok"
        return f"{self.campaign} seed {self.seed}: {rounds}, {problems} {self.note}".strip()


class Lab:
    """A private sandbox, a spec folder and the `podctl` command, reset between trials."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.data_dir = root / "sandbox"
        self.work = root / "stack"
        self.home = root / "home"
        self.home.mkdir(parents=True, exist_ok=True)
        self.info = control.start_detached(self.data_dir, start_delay=0, stock=STOCK)
        self.with_jobs = False
        self.states: dict[str, str] = {}
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNPOD_", "PODCTL_"))}
        self.env = {
            **env,
            "HOME": str(self.home),
            "XDG_CACHE_HOME": str(self.home / ".cache"),
            "PODCTL_SANDBOX_DIR": str(self.data_dir),
            "PODCTL_POLL_INTERVAL": POLL,
        }

    @property
    def spec(self) -> Path:
        return self.work / "podctl.yaml"

    @property
    def lockfile(self) -> Path:
        return self.work / f"{STACK}.podctl.lock"

    def close(self) -> None:
        try:
            control.reset(self.data_dir)
        finally:
            control.stop(self.data_dir, kill_pods=True)

    # --- setting up -----------------------------------------------------------------------------

    def reset(self, *, with_jobs: bool = False, states: dict[str, str] | None = None) -> None:
        """Terminate every pod, clear faults and counters, start from an empty spec folder."""
        control.reset(self.data_dir)
        self.faults({"clear": True, "exhaust": [EXHAUSTED], "start_delay": 0})
        shutil.rmtree(self.work, ignore_errors=True)
        self.work.mkdir(parents=True)
        self.with_jobs = with_jobs
        self.write_spec(states or {})

    def write_spec(self, states: dict[str, str]) -> None:
        self.states = dict(states)
        self.spec.write_text(spec_text(states, with_jobs=self.with_jobs))

    def faults(self, spec: dict[str, Any]) -> dict[str, Any]:
        answer: dict[str, Any] = control.request(self.info, "POST", "/_sandbox/faults", spec)
        return answer

    def injected(self) -> int:
        """Faults the sandbox injected since the last clear (API errors, lost answers)."""
        answer = control.request(self.info, "GET", "/_sandbox/faults")
        return int(sum(answer.get("injected", {}).values()))

    def restart_sandbox(self, pause: float) -> None:
        """Stop the server (pods keep running, as on RunPod) and start it again on its port."""
        control.stop(self.data_dir)
        time.sleep(pause)
        self.info = control.start_detached(
            self.data_dir, port=self.info.port, start_delay=0, stock=STOCK
        )
        self.faults({"exhaust": [EXHAUSTED]})  # faults live in memory: set them again

    # --- running podctl ---------------------------------------------------------------------------

    def argv(self, *args: str) -> list[str]:
        return [*podctl_command(), "--sandbox", *args, "-f", str(self.spec)]

    def podctl(self, *args: str, timeout: float = 180) -> Run:
        start = time.perf_counter()
        proc = subprocess.run(
            self.argv(*args),
            env=self.env,
            cwd=self.work,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        return Run(proc.returncode, proc.stdout, proc.stderr, time.perf_counter() - start)

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.argv(*args),
            env=self.env,
            cwd=self.work,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def apply(self) -> Run:
        return self.podctl("apply", "-y")

    def wait_for_lock_holder(self, pid: int, timeout: float = 60.0) -> None:
        """Until process `pid` holds the lockfile's exclusive lock (its sidecar names it)."""
        sidecar = self.lockfile.with_name(self.lockfile.name + ".lock")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                holder = json.loads(sidecar.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                holder = {}
            if holder.get("pid") == pid and holder.get("mode") == "exclusive":
                return
            time.sleep(0.02)
        raise TimeoutError(f"pid {pid} did not take the lock within {timeout:.0f} s")

    def converge(self, max_rounds: int = MAX_ROUNDS) -> int | None:
        """Apply until `plan --detailed-exitcode` exits 0; the number of applies, or None."""
        for rounds in range(1, max_rounds + 1):
            self.apply()
            if self.podctl("plan", "--detailed-exitcode").code == 0:
                return rounds
        return None

    # --- checking ---------------------------------------------------------------------------------

    def live_pods(self) -> list[dict[str, Any]]:
        """Pods the sandbox has that are not terminated, with their env as a dict."""
        answer = control.request(self.info, "POST", "/graphql", {"query": PODS_QUERY})
        pods = answer["data"]["myself"]["pods"]
        out = []
        for pod in pods:
            if pod["desiredStatus"] == "TERMINATED":
                continue
            env = dict(item.split("=", 1) for item in pod.get("env") or [] if "=" in item)
            out.append({**pod, "env": env})
        return out

    def check(self) -> Check:
        """Duplicates, orphans, missing pods, the lockfile, and the job ledger (see Check)."""
        check = Check()
        ours = [p for p in self.live_pods() if p["env"].get("PODCTL_STACK") == STACK]
        by_name: dict[str, list[dict[str, Any]]] = {}
        for pod in ours:
            by_name.setdefault(pod["env"].get("PODCTL_POD", "?"), []).append(pod)
        for name in POD_NAMES:
            found = by_name.get(name, [])
            check.duplicates += max(0, len(found) - 1)
            state = self.states.get(name, "running")
            want = {"running": "RUNNING", "stopped": "EXITED"}.get(state)
            if want is None and found:
                check.missing += len(found)  # wanted absent: any pod is one too many
                check.problems.append(f"pod {name} should be absent, found {len(found)}")
            elif want is not None and not any(p["desiredStatus"] == want for p in found):
                check.missing += 1
                statuses = [p["desiredStatus"] for p in found]
                check.problems.append(f"pod {name}: want {want}, found {statuses}")
        strangers = [n for n in by_name if n not in POD_NAMES]
        check.duplicates += sum(len(by_name[n]) for n in strangers)
        if check.duplicates:
            check.problems.append(f"{check.duplicates} duplicate pod(s)")
        recorded_ids: set[str] = set()
        try:
            lockfile = loads(self.lockfile.read_text(encoding="utf-8"), str(self.lockfile))
        except (OSError, LockfileError, UnicodeDecodeError) as exc:
            check.lockfile_ok = False
            check.problems.append(f"lockfile unreadable: {exc}")
            lockfile = None
        if lockfile is not None:
            recorded_ids = {r.pod_id for r in lockfile.pods.values()}
            live = {p["env"].get("PODCTL_POD"): p["id"] for p in ours}
            stale = [n for n, r in lockfile.pods.items() if live.get(n) != r.pod_id]
            check.stale_intents = len(lockfile.intents)
            if stale:
                check.lockfile_ok = False
                check.problems.append(f"lockfile records pods that do not run: {sorted(stale)}")
            if lockfile.intents:  # a known defect, counted apart from an unreadable lockfile
                pods = sorted({i.pod for i in lockfile.intents})
                check.problems.append(
                    f"{len(lockfile.intents)} create intent(s) still pending for {pods}"
                )
            self._check_jobs(check, lockfile.jobs)
        check.orphans = sum(1 for p in ours if p["id"] not in recorded_ids)
        if check.orphans:
            check.problems.append(f"{check.orphans} orphan pod(s)")
        return check

    def _check_jobs(self, check: Check, jobs: Any) -> None:
        for name, record in jobs.items():
            check.jobs_recorded += 1
            if getattr(record.status, "value", record.status) != "succeeded":
                continue
            ledger = layout.volume_dir(self.data_dir, record.pod_id) / "ledger" / name
            runs = len(ledger.read_text().splitlines()) if ledger.exists() else 0
            if runs > 1:
                check.double_runs += 1
                check.problems.append(f"job {name} ran {runs} times")
            results = self.work / "results" / name
            if not (results.is_dir() and any(results.rglob("result"))):
                check.lost_results += 1
                check.problems.append(f"job {name} succeeded but its result is not downloaded")


# --- the campaigns ----------------------------------------------------------------------------


def measure_apply(lab: Lab, *, with_jobs: bool = False, runs: int = 2) -> float:
    """The median wall time of a fresh apply of the campaign spec (the kill -9 window)."""
    samples = []
    for _ in range(runs):
        lab.reset(with_jobs=with_jobs)
        samples.append(lab.apply().seconds)
    return sorted(samples)[len(samples) // 2]


def jobs_supported(lab: Lab) -> bool:
    """Whether this podctl runs jobs: a fresh apply of the jobs spec records them."""
    from reconciler.spec import load_spec

    lab.reset(with_jobs=True)
    load_spec([lab.spec])  # a spec this podctl refuses is a bug here, not "no jobs yet"
    lab.apply()
    try:
        recorded = json.loads(lab.lockfile.read_text()).get("jobs") or {}
    except (OSError, ValueError):
        return False
    return bool(recorded)


def _trial(campaign: str, seed: int, start: float, rounds: int | None, faults: int, lab: Lab,
           note: str = "", check: Check | None = None) -> Trial:  # fmt: skip
    lab.faults({"clear": True, "exhaust": [EXHAUSTED]})
    check = check or lab.check()
    return Trial(campaign, seed, rounds, faults, time.perf_counter() - start, check, note)


def kill9_trial(lab: Lab, seed: int, window: float, *, with_jobs: bool = False) -> Trial:
    """SIGKILL `podctl apply` at a seeded moment in [0, window], then re-apply until converged."""
    rng = random.Random(seed)
    lab.reset(with_jobs=with_jobs)
    start = time.perf_counter()
    delay = rng.uniform(0, window)
    proc = lab.popen("apply", "-y")
    try:
        proc.wait(timeout=delay)
        note = "finished before the kill"
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        note = f"killed at {delay:.2f} s"
    proc.communicate()
    rounds = lab.converge()
    killed = int(note.startswith("killed"))
    return _trial("kill -9", seed, start, rounds, killed, lab, note)


def api_fault_trial(lab: Lab, seed: int, probability: float = 0.3) -> Trial:
    """429/500/502/resets on `probability` of requests plus latency, during every round."""
    lab.reset()
    start = time.perf_counter()
    errors = {"probability": probability, "kinds": API_FAULT_KINDS, "retry_after": 0}
    lab.faults({"seed": seed, "latency_ms": 20, "errors": errors})
    rounds = lab.converge()
    return _trial("API faults 30 %", seed, start, rounds, lab.injected(), lab)


def lost_response_trial(lab: Lab, seed: int, operation: str) -> Trial:
    """The mutation is applied, its answer lost (connection reset): create, stop or terminate."""
    lab.reset()
    start = time.perf_counter()
    if operation == "create":
        lose = {"count": 2, "operations": ["create"]}
    else:
        if lab.converge() is None:
            return _trial(f"lost {operation}", seed, start, None, 0, lab, "setup failed")
        target = random.Random(seed).choice(POD_NAMES)
        lab.write_spec({target: "stopped" if operation == "stop" else "absent"})
        lose = {"count": 1, "operations": [operation]}
    lab.faults({"seed": seed, "lose_responses": lose})
    first = lab.apply()
    faults = lab.injected()
    lab.faults({"lose_responses": 0})
    rounds = lab.converge()
    rounds = None if rounds is None else rounds + 1
    note = f"first apply exit {first.code}"
    return _trial(f"lost {operation} response", seed, start, rounds, faults, lab, note)


def preemption_trial(lab: Lab, seed: int, *, gpu_taken: bool) -> Trial:
    """Preempt the running spot pod; apply resumes it, or recreates it when its GPU is taken."""
    lab.reset()
    start = time.perf_counter()
    campaign = "spot preemption" + (", GPU taken (recreate)" if gpu_taken else " (resume)")
    if lab.converge() is None:
        return _trial(campaign, seed, start, None, 0, lab, "setup failed")
    (before,) = [p["id"] for p in lab.live_pods() if p["env"].get("PODCTL_POD") == "d"]
    lab.faults({"preempt": [before], **({"gpu_taken": [before]} if gpu_taken else {})})
    rounds = lab.converge()
    after = [p["id"] for p in lab.live_pods() if p["env"].get("PODCTL_POD") == "d"]
    lab.faults({"gpu_free": [before]})
    check = lab.check()
    if gpu_taken and before in after:
        check.problems.append("the preempted pod was not recreated although its GPU was taken")
    if not gpu_taken and after != [before]:
        check.problems.append(f"the preempted pod was not resumed in place: {after}")
    return _trial(campaign, seed, start, rounds, 1, lab, check=check)


def reconcile_fault_trial(lab: Lab, seed: int, probability: float = 0.3) -> Trial:
    """`podctl reconcile --once` rounds (with jobs) while `probability` of API requests fail."""
    lab.reset(with_jobs=True)
    start = time.perf_counter()
    errors = {"probability": probability, "kinds": API_FAULT_KINDS, "retry_after": 0}
    lab.faults({"seed": seed, "latency_ms": 20, "errors": errors, "exhaust": [EXHAUSTED]})
    rounds = None
    for n in range(1, MAX_ROUNDS * 2 + 1):
        if lab.podctl("reconcile", "--once", "--interval", "1s").code != 0:
            continue
        faults = lab.injected()
        lab.faults({"errors": {"probability": 0.0}})
        if lab.podctl("plan", "--detailed-exitcode").code == 0:
            rounds = n
            break
        lab.faults({"seed": seed + n, "errors": errors})
    else:
        faults = lab.injected()
    return _trial("reconcile, API faults 30 %, with jobs", seed, start, rounds, faults, lab)


def preempt_mid_job_trial(lab: Lab, seed: int) -> Trial:
    """Preempt the spot pod while its job runs; re-apply resumes it and runs the job to its end
    exactly once (the killed run never wrote its ledger line)."""
    lab.reset(with_jobs=True)
    start = time.perf_counter()
    campaign = "spot preemption mid-job"
    proc = lab.popen("apply", "-y")
    deadline = time.monotonic() + 60
    pod_id = None
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            jobs = json.loads(lab.lockfile.read_text()).get("jobs", {})
        except (OSError, ValueError):
            jobs = {}
        if jobs.get("j4", {}).get("status") == "running":
            pod_id = jobs["j4"]["pod_id"]
            break
        time.sleep(0.05)
    if pod_id is None:
        proc.kill()
        proc.communicate()
        return _trial(campaign, seed, start, None, 0, lab, "j4 never started")
    time.sleep(random.Random(seed).uniform(0.1, J4_SECONDS / 2))
    lab.faults({"preempt": [pod_id]})
    proc.communicate(timeout=120)
    first = proc.returncode
    rounds = lab.converge()
    check = lab.check()
    ledger = layout.volume_dir(lab.data_dir, pod_id) / "ledger" / "j4"
    if rounds is not None and not ledger.exists():
        check.problems.append("j4 never completed on the resumed pod")
    return _trial(
        campaign, seed, start, rounds, 1, lab, f"the preempted apply exited {first}", check
    )


def sandbox_restart_trial(lab: Lab, seed: int, window: float) -> Trial:
    """Stop and start the sandbox server while apply runs (latency makes apply last)."""
    rng = random.Random(seed)
    lab.reset()
    start = time.perf_counter()
    lab.faults({"latency_ms": 200})
    proc = lab.popen("apply", "-y")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:  # wait for podctl to connect
        status = control.request(lab.info, "GET", "/_sandbox/status")
        if status["requests"]["total"] > 0:
            break
        time.sleep(0.01)
    time.sleep(rng.uniform(0, window / 2))
    during = "mid-apply" if proc.poll() is None else "after apply had finished"
    lab.restart_sandbox(pause=rng.uniform(0.1, 1.0))
    try:
        _out, _err = proc.communicate(timeout=180)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
    rounds = lab.converge()
    note = f"restarted {during}; that apply exited {proc.returncode}"
    mid = int(during == "mid-apply")
    return _trial("sandbox restart mid-apply", seed, start, rounds, mid, lab, note)


def concurrent_trial(lab: Lab, seed: int) -> Trial:
    """Two applies at once: one wins, the other exits non-zero naming the lock holder."""
    lab.reset()
    start = time.perf_counter()
    lab.faults({"latency_ms": 150})  # the winner holds the lock for a few seconds
    first = lab.popen("apply", "-y")
    # the second starts once the first holds the lock: started together on a loaded machine,
    # the first could finish before the second asks, and both would (rightly) succeed
    lab.wait_for_lock_holder(first.pid)
    procs = [first, lab.popen("apply", "-y")]
    results = [(p.wait(timeout=180), *p.communicate()) for p in procs]
    lab.faults({"latency_ms": 0})
    codes = sorted(code for code, _out, _err in results)
    losers = [err for code, _out, err in results if code != 0]
    rounds = lab.converge()
    check = lab.check()
    if codes[0] != 0 or len(losers) != 1:
        check.problems.append(f"want one winner and one refused apply, got exits {codes}")
    elif "is locked by pid" not in losers[0] or "Traceback" in losers[0]:
        check.problems.append(f"the refused apply did not name the holder: {losers[0][-300:]!r}")
    return _trial("two concurrent applies", seed, start, rounds, 1, lab, check=check)


CORRUPTIONS = ("truncated", "binary garbage", "empty", "future format_version")


def corrupt(text: bytes, how: str, rng: random.Random) -> bytes:
    """`text` (a valid lockfile) damaged in one of the CORRUPTIONS ways."""
    if how == "truncated":
        return text[: rng.randrange(1, len(text.rstrip()))]
    if how == "binary garbage":
        at = rng.randrange(len(text))
        return text[:at] + bytes([0xFF, 0xFE, 0x00, 0x9C]) + text[at + 4 :]
    if how == "empty":
        return b""
    document = json.loads(text)
    document["format_version"] = 99
    return json.dumps(document).encode()


def corrupt_lockfile_trial(lab: Lab, seed: int, how: str | None = None) -> Trial:
    """A damaged lockfile: plan and apply refuse it (exit 1, a recovery hint), never rewrite it.

    Then the recovery the message names (`podctl state rebuild`, which keeps the damaged file
    aside) converges by adoption, 0 duplicates.
    """
    rng = random.Random(seed)
    how = how or rng.choice(CORRUPTIONS)
    lab.reset()
    start = time.perf_counter()
    if lab.converge() is None:
        return _trial("corrupted lockfile", seed, start, None, 0, lab, "setup failed")
    damaged = corrupt(lab.lockfile.read_bytes(), how, rng)
    lab.lockfile.write_bytes(damaged)
    problems = []
    for args in (("plan",), ("apply", "-y")):
        run = lab.podctl(*args)
        words = [w for w in RECOVERY_WORDS if w in run.err + run.out]
        if run.code != 1 or not words or "Traceback" in run.err:
            tail = (run.err or run.out)[-300:]
            problems.append(f"{args[0]} on a {how} lockfile: exit {run.code}, {tail!r}")
        if lab.lockfile.read_bytes() != damaged:
            problems.append(f"{args[0]} rewrote the {how} lockfile")
    if "upgrade podctl" in (run.err + run.out):  # a newer format: not ours to rebuild
        lab.lockfile.rename(lab.lockfile.with_name(lab.lockfile.name + ".damaged"))
    else:  # the recovery the message names
        rebuilt = lab.podctl("state", "rebuild")
        kept = list(lab.lockfile.parent.glob(lab.lockfile.name + ".corrupt-*"))
        if rebuilt.code != 0 or len(kept) != 1 or kept[0].read_bytes() != damaged:
            problems.append(f"state rebuild after a {how} lockfile: exit {rebuilt.code}")
    rounds = lab.converge()
    check = lab.check()
    check.problems += problems
    return _trial("corrupted lockfile", seed, start, rounds, 1, lab, how, check)


# --- the table ----------------------------------------------------------------------------------

HEADERS = (
    "campaign",
    "trials",
    "faults injected",
    "duplicates",
    "orphans",
    "double runs",
    "lost results",
    "stale intents",
    "max rounds",
    "wall time",
    "result",
)


def summarize(trials: Sequence[Trial], *, jobs: bool = False) -> list[list[object]]:
    """One row per campaign, in the order they first appear."""
    rows: list[list[object]] = []
    for name in dict.fromkeys(t.campaign for t in trials):
        group = [t for t in trials if t.campaign == name]
        rounds = [t.rounds for t in group]
        done = [r for r in rounds if r is not None]
        max_rounds: object = max(done) if done else "-"
        if None in rounds:
            max_rounds = f"{max_rounds}; {rounds.count(None)} not in {MAX_ROUNDS}"
        with_jobs = jobs and ("with jobs" in name or "mid-job" in name)
        failed = sum(1 for t in group if not t.ok)
        rows.append(
            [
                name,
                len(group),
                sum(t.faults for t in group),
                sum(t.check.duplicates for t in group),
                sum(t.check.orphans for t in group),
                sum(t.check.double_runs for t in group) if with_jobs else "n/a",
                sum(t.check.lost_results for t in group) if with_jobs else "n/a",
                sum(t.check.stale_intents for t in group),
                max_rounds,
                f"{sum(t.seconds for t in group):.1f} s",
                "ok" if not failed else f"{failed} FAILED",
            ]
        )
    return rows


@contextmanager
def lab_in_tempdir() -> Iterator[Lab]:
    with tempfile.TemporaryDirectory(prefix="podctl-reliability-") as tmp:
        lab = Lab(Path(tmp))
        try:
            yield lab
        finally:
            lab.close()


def jobs_campaign(lab: Lab, trials: int, seed: int, facts: dict[str, Any]) -> Iterator[Trial]:
    """kill -9 trials with the jobs spec; says JOBS_UNSUPPORTED and yields none if no jobs run."""
    if not jobs_supported(lab):
        print(JOBS_UNSUPPORTED)
        facts["jobs"] = JOBS_UNSUPPORTED
        return
    window = measure_apply(lab, with_jobs=True)
    facts["jobs_window"] = window
    for i in range(trials):
        trial = kill9_trial(lab, seed * 1000 + i, window, with_jobs=True)
        trial.campaign = "kill -9, with jobs"
        yield trial


def run_campaigns(
    lab: Lab, trials: int, seed: int, *, quick: bool, with_jobs: bool, log: Any = print
) -> tuple[list[Trial], dict[str, Any]]:
    """Every campaign in turn; returns the trials and facts for the report."""
    facts: dict[str, Any] = {}
    small = 2 if quick else 5
    out: list[Trial] = []

    def done(trial: Trial) -> None:
        out.append(trial)
        log(("  " if trial.ok else "  FAILED ") + trial.describe())

    window = measure_apply(lab)
    facts["window"] = window
    log(f"kill -9 window: 0 to {window:.2f} s (a fresh apply's median wall time)")
    for i in range(trials):
        done(kill9_trial(lab, seed * 1000 + i, window))
    if with_jobs:
        for trial in jobs_campaign(lab, trials, seed, facts):
            done(trial)
    for i in range(small * 2):
        done(api_fault_trial(lab, seed * 1000 + i))
    for operation in ("create", "stop", "terminate"):
        for i in range(small):
            done(lost_response_trial(lab, seed * 1000 + i, operation))
    if with_jobs:
        for i in range(small):
            done(reconcile_fault_trial(lab, seed * 1000 + i))
        for i in range(small):
            done(preempt_mid_job_trial(lab, seed * 1000 + i))
    for gpu_taken in (False, True):
        for i in range(small):
            done(preemption_trial(lab, seed * 1000 + i, gpu_taken=gpu_taken))
    for i in range(small):
        done(sandbox_restart_trial(lab, seed * 1000 + i, window))
    for i in range(small):
        done(concurrent_trial(lab, seed * 1000 + i))
    for i, how in enumerate(CORRUPTIONS * (1 if quick else 2)):
        done(corrupt_lockfile_trial(lab, seed * 1000 + i, how))
    return out, facts


def report(
    trials: Sequence[Trial], facts: dict[str, Any], argv: Sequence[str], total: float
) -> str:
    """The body of RELIABILITY.md."""
    jobs = "jobs_window" in facts
    rows = summarize(trials, jobs=jobs)
    killed = sum(1 for t in trials if t.campaign.startswith("kill") and t.faults)
    kills = sum(1 for t in trials if t.campaign.startswith("kill"))
    temp = re.compile(r"\S*/podctl-reliability-[^/\s]+/")  # the private temp dir: noise
    failures = [temp.sub("", t.describe()) for t in trials if not t.ok]
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    command = " ".join(["python -m benchmarks.reliability", *argv])
    lines = [
        "# Reliability: fault and crash campaigns",
        "",
        f"_{stamp}, Python {platform.python_version()}, {platform.machine()}; "
        f"`{command}`, {total:.0f} s in all._",
        "",
        "Each trial runs the real `podctl` command against a private sandbox (reset between "
        "trials), injects one failure, then re-applies until `podctl plan --detailed-exitcode` "
        "exits 0 (a round is one apply; at most "
        f"{MAX_ROUNDS}). Then it checks through the sandbox's API and the lockfile: one pod "
        "per spec pod carrying the stack's `PODCTL_*` markers (duplicates), no pod of the "
        "stack missing from the lockfile (orphans), every spec pod in its desired state, the "
        "lockfile parses, records the live pods and holds no pending create intent. With "
        "jobs, a job recorded as succeeded must have run once (its ledger on the pod's "
        "volume has one line: double runs) and have its result downloaded (lost results).",
        "",
        table(HEADERS, rows),
        "",
        "- The spec: 4 pods (one with a GPU fallback chain whose first type has no capacity, "
        "one with 2 GPUs, one spot pod with `on_resume_failure: recreate`).",
        f"- kill -9: SIGKILL at a seeded moment between 0 and {facts['window']:.2f} s (the "
        f"median wall time of a fresh apply, measured first); {killed} of {kills} applies were "
        "killed mid-way, the others had finished.",
        "- API faults: 429 (Retry-After 0), 500, 502 and connection resets on 30 % of "
        "requests, plus 20 ms latency on every request, for every round until converged.",
        "- Lost responses: the mutation is applied and the connection reset before the answer "
        "(2 of the 4 creates; the stop or terminate of one pod whose spec changed).",
        "- Spot preemption: the running spot pod is preempted; apply resumes it in place, or, "
        "when its host's GPU is taken, recreates it (old pod gone, new one running).",
        "- Sandbox restart: the server is stopped and started again (same port, state kept) "
        "at a seeded moment while apply runs with 200 ms latency per request (faults "
        "injected counts the restarts that landed mid-apply).",
        "- Concurrent applies: exactly one exits 0; the other exits non-zero naming the lock "
        "holder.",
        "- Corrupted lockfile (truncated, binary garbage, empty, a future format_version): "
        "plan and apply exit 1 with a recovery hint and leave the file byte for byte; the "
        "recovery the hint names (`podctl state rebuild`, which keeps the damaged file aside; "
        "for a future format, moving it aside) converges by adoption with 0 duplicates.",
        "- With jobs (pods a, b and the spot pod d open 22/tcp; j1 and j3 on a, j2 on b, j4 "
        "on d): kill -9 of apply at a seeded moment of a fresh apply with jobs; `podctl "
        "reconcile --once` rounds under the same 30 % API faults; and the spot pod preempted "
        f"while j4 runs (j4 writes its ledger line after {J4_SECONDS:g} s, so a run killed "
        "midway leaves none): the preempted apply exits 1, the next resumes the pod and runs "
        "j4 again to its end, once.",
        "- Findings of the first runs, fixed since (each has a test in "
        "tests/e2e/test_reliability.py): create intents whose create never reached RunPod "
        "stayed in the lockfile for good (now settled once a listing shows no pod with their "
        "uid); a create answered 500/502/reset was only retried by the next apply (now one "
        "listing looks for its uid, adopts the pod or sends the create once more); a lockfile "
        "that is not UTF-8 got no recovery hint.",
    ]
    if "jobs" in facts:
        lines.append(f"- jobs: {facts['jobs']}; the job columns are n/a.")
    elif not jobs:
        lines.append("- Double runs and lost results need jobs: rerun without `--no-jobs`.")
    if any(t.check.stale_intents for t in trials):
        lines += ["", "**Regression: create intents left pending** (see the failures below)."]
    lines += [
        "",
        "Failures: " + ("none." if not failures else ""),
        *[f"- {f}" for f in failures],
        "",
        "## Rerun",
        "",
        "```",
        ".venv/bin/python -m benchmarks.reliability --trials 50 --seed 1   # writes this file",
        ".venv/bin/python -m benchmarks.reliability --quick                # a few trials, prints",
        ".venv/bin/python -m benchmarks.reliability --no-jobs              # pods only, faster",
        ".venv/bin/pytest -q tests/e2e/test_reliability.py                 # the CI version",
        "```",
        "",
        "The same seed gives the same fault schedule and kill moments; timing on a shared "
        "machine still varies, so where a kill lands in apply can differ between runs.",
    ]
    return "\n".join(lines) + "\n"


def kept_sections() -> str:
    """The sections other scripts record in RELIABILITY.md (`benchmarks.report.record`)."""
    if not RELIABILITY_MD.exists():
        return ""
    pattern = re.compile(r"<!-- bench:([\w.-]+) -->.*?<!-- /bench:\1 -->", re.S)
    return "".join("\n" + m.group(0) + "\n" for m in pattern.finditer(RELIABILITY_MD.read_text()))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=50, help="kill -9 trials (default 50)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="few trials; RELIABILITY.md kept")
    parser.add_argument("--no-jobs", action="store_true", help="skip the campaigns with jobs")
    args = parser.parse_args(argv)
    trials = min(args.trials, 5) if args.quick else args.trials
    start = time.perf_counter()
    with lab_in_tempdir() as lab:
        results, facts = run_campaigns(
            lab, trials, args.seed, quick=args.quick, with_jobs=not args.no_jobs
        )
    total = time.perf_counter() - start
    print(table(HEADERS, summarize(results, jobs="jobs_window" in facts)))
    print(f"{total:.0f} s in all")
    if not args.quick:
        shown = [f"--trials {args.trials}", f"--seed {args.seed}"]
        shown += ["--no-jobs"] if args.no_jobs else []
        RELIABILITY_MD.write_text(report(results, facts, shown, total) + kept_sections())
        print(f"wrote {RELIABILITY_MD.relative_to(ROOT)}")
    return 0 if all(t.ok for t in results) else 1


if __name__ == "__main__":
    sys.exit(main())
