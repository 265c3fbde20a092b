"""Serverless campaign: endpoint batches run once per line while podctl is killed (-9) at random
moments and the job API is unkind (429 storms, lost /run answers, workers dying mid-job).

Run: `.venv/bin/python -m benchmarks.serverless_campaign [--trials 12] [--lines 150]
[--seed 1] [--quick]`. Each trial (a fresh sandbox state, one endpoint whose handler sleeps a
few ms) writes a batch spec, then: up to 3 times `podctl apply -y` is SIGKILLed at a random
moment (faults armed before some rounds), then `podctl apply -y` runs until `podctl plan
--detailed-exitcode` exits 0. Checked through the sandbox's admin view (every accepted
submission, and how often a worker took each job) and the files a user gets:
- lines submitted twice by podctl (two accepted submissions of one input): must be 0;
- lost outputs (a line whose request podctl knows by id, but whose output is not in
  out.jsonl): must be 0;
- lines left unknown (their /run answer was lost, or podctl died between writing
  `submitting` and recording the id): reported by podctl, not sent again; counted apart, as
  is whether RunPod had actually queued them;
- RunPod's own requeues (a worker died mid-job, the job ran twice under one id): counted apart.
Writes its section of RELIABILITY.md (not with `--quick`).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import tempfile
import textwrap
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from benchmarks.cli_startup import podctl_command
from benchmarks.report import record, table
from reconciler.sandbox import control

ROOT = Path(__file__).resolve().parent.parent
RELIABILITY_MD = ROOT / "RELIABILITY.md"
STACK = "slc"
MAX_ROUNDS = 6
KILLS = 3
HANDLER = """\
import random, time
def handler(job):
    time.sleep(random.uniform(0.002, 0.03))
    return {"line": job["input"]["i"], "twice": job["input"]["i"] * 2}
"""
ENDPOINT = {
    "type": "QUEUE",
    "image": "campaign/worker:1",
    "gpu": {"pools": ["ADA_24"], "count": 1},
    "workers": {"min": 0, "max": 6, "idleTimeout": 5},
    "scaling": {"type": "QUEUE_DELAY", "queueDelay": 4},
    "timeout": 600000,
    "flashboot": "OFF",
}


@dataclass
class Trial:
    name: str
    killed_at: list[float]
    faults: list[str]
    rounds: int = 0
    twice: int = 0
    lost_outputs: int = 0
    unknown: int = 0
    unknown_queued: int = 0
    requeued: int = 0
    done: int = 0
    converged: bool = False


class Campaign:
    def __init__(self, root: Path, lines: int, seed: int) -> None:
        self.root = root
        self.lines = lines
        self.rng = random.Random(seed)
        self.data_dir = root / "sandbox"
        self.home = root / "home"
        self.home.mkdir(parents=True)
        self.info = control.start_detached(self.data_dir, start_delay=0)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNPOD_", "PODCTL_"))}
        self.env = {
            **env,
            "HOME": str(self.home),
            "PODCTL_SANDBOX_DIR": str(self.data_dir),
            "PODCTL_POLL_INTERVAL": "0.05",
        }
        self.auth = {"Authorization": f"Bearer {self.info.api_key}"}

    def close(self) -> None:
        try:
            control.reset(self.data_dir)
        finally:
            control.stop(self.data_dir, kill_pods=True)

    def endpoint(self, folder: Path) -> str:
        handler = folder / "handler.py"
        handler.write_text(HANDLER)
        body = {"name": "campaign", **ENDPOINT, "env": {"PODCTL_SANDBOX_HANDLER": str(handler)}}
        resp = httpx.post(
            self.info.url + "/v2/serverless", json=body, headers=self.auth, timeout=10
        )
        resp.raise_for_status()
        endpoint_id: str = resp.json()["id"]
        return endpoint_id

    def spec(self, folder: Path, endpoint_id: str) -> Path:
        inputs = "".join(json.dumps({"i": i}) + "\n" for i in range(self.lines))
        (folder / "lines.jsonl").write_text(inputs)
        path = folder / "podctl.yaml"
        path.write_text(
            textwrap.dedent(
                f"""\
                version: 1
                stack: {STACK}
                jobs:
                  batch:
                    endpoint_id: {endpoint_id}
                    inputs_file: ./lines.jsonl
                    parallel: 16
                    retries: 1
                    output: ./out.jsonl
                """
            )
        )
        return path

    def podctl(self, folder: Path, *args: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [*podctl_command(), "--sandbox", *args, "-f", str(folder / "podctl.yaml")],
            cwd=folder,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def arm(self) -> str:
        """One fault for the next round, or none."""
        kind = self.rng.choice(["none", "429", "lose_run", "kill_worker"])
        specs: dict[str, dict[str, Any]] = {
            "none": {},
            "429": {"errors": {"routes": ["run", "status"], "count": self.rng.randint(5, 40)}},
            "lose_run": {"lose_run": self.rng.randint(1, 3)},
            "kill_worker": {"kill_worker": self.rng.randint(1, 4)},
        }
        spec = specs[kind]
        if spec:
            control.faults(self.data_dir, {"serverless": spec})
        return kind

    def submissions(self) -> list[dict[str, Any]]:
        resp = httpx.get(self.info.url + "/_sandbox/serverless", headers=self.auth, timeout=10)
        resp.raise_for_status()
        found: list[dict[str, Any]] = resp.json()["submitted"]
        return found

    def run(self, index: int) -> Trial:
        control.reset(self.data_dir)
        folder = self.root / f"t{index}"
        folder.mkdir()
        endpoint_id = self.endpoint(folder)
        self.spec(folder, endpoint_id)
        trial = Trial(f"t{index}", [], [])
        for _ in range(self.rng.randint(1, KILLS)):
            trial.faults.append(self.arm())
            proc = self.podctl(folder, "apply", "-y")
            at = self.rng.uniform(0.3, 4.0)
            time.sleep(at)
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                trial.killed_at.append(round(at, 2))
            proc.wait()
        for _ in range(MAX_ROUNDS):
            trial.rounds += 1
            self.podctl(folder, "apply", "-y").wait(timeout=600)
            if self.podctl(folder, "plan", "--detailed-exitcode").wait(timeout=120) == 0:
                trial.converged = True
                break
        self.check(trial, folder)
        return trial

    def check(self, trial: Trial, folder: Path) -> None:
        sent = self.submissions()
        by_input = Counter(json.dumps(s["input"], sort_keys=True) for s in sent)
        trial.twice = sum(1 for n in by_input.values() if n > 1)
        trial.requeued = sum(1 for s in sent if (s.get("taken") or 0) > 1)
        journal = folder / f"{STACK}.podctl.endpoint-jobs" / "batch.jsonl"
        records = [json.loads(x) for x in journal.read_text().splitlines() if x.endswith("}")]
        known = {r["p"] for r in records if r.get("e") == "submitted"}
        unknown = {r["p"] for r in records if r.get("e") == "unknown"} - known
        submitting = {r["p"] for r in records if r.get("e") == "submitting"}
        trial.unknown = len(unknown | (submitting - known))
        # which line is which print: the n recorded with each `submitting`
        number = {r["p"]: r["n"] for r in records if r.get("e") == "submitting"}
        out = folder / "out.jsonl"
        rows = [json.loads(x) for x in out.read_text().splitlines()] if out.exists() else []
        trial.done = sum(1 for i, row in enumerate(rows) if row == {"line": i, "twice": 2 * i})
        for p in known:
            n = number.get(p)
            if n is None or n > len(rows) or rows[n - 1] != {"line": n - 1, "twice": 2 * (n - 1)}:
                trial.lost_outputs += 1
        queued = {json.dumps(s["input"], sort_keys=True) for s in sent}
        trial.unknown_queued = sum(
            1
            for p in unknown | (submitting - known)
            if json.dumps({"i": number.get(p, 0) - 1}, sort_keys=True) in queued
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--lines", type=int, default=150)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="2 trials, no RELIABILITY.md")
    args = parser.parse_args(argv)
    trials_n = 2 if args.quick else args.trials
    root = Path(tempfile.mkdtemp(prefix="podctl-slc-"))
    started = time.monotonic()
    campaign = Campaign(root, args.lines, args.seed)
    trials: list[Trial] = []
    try:
        for index in range(trials_n):
            trials.append(campaign.run(index))
            t = trials[-1]
            print(
                f"{t.name}: killed at {t.killed_at} faults {t.faults} rounds {t.rounds} "
                f"done {t.done} twice {t.twice} lost {t.lost_outputs} unknown {t.unknown} "
                f"requeued {t.requeued}",
                flush=True,
            )
    finally:
        campaign.close()
        shutil.rmtree(root, ignore_errors=True)
    took = time.monotonic() - started
    rows = [
        [
            t.name,
            ", ".join(f"{k}s" for k in t.killed_at) or "-",
            ", ".join(f for f in t.faults if f != "none") or "-",
            t.rounds,
            "yes" if t.converged else "NO",
            f"{t.done}/{args.lines}",
            t.twice,
            t.lost_outputs,
            f"{t.unknown} ({t.unknown_queued} queued)",
            t.requeued,
        ]
        for t in trials
    ]
    headers = (
        "trial",
        "apply killed at",
        "faults",
        "rounds after",
        "converged",
        "outputs",
        "sent twice by podctl",
        "lost outputs",
        "unknown (RunPod had it)",
        "RunPod requeues",
    )
    text = table(headers, rows)
    lines_all = args.lines * len(trials)
    summary = (
        f"\n\n**{lines_all} lines in {len(trials)} trials; lines submitted twice by podctl: "
        f"{sum(t.twice for t in trials)}; lost outputs: {sum(t.lost_outputs for t in trials)}; "
        f"left unknown (reported, not resent): {sum(t.unknown for t in trials)}, of which "
        f"RunPod had queued {sum(t.unknown_queued for t in trials)}; RunPod's own requeues "
        f"(a worker died, the job ran twice under one id): {sum(t.requeued for t in trials)}; "
        f"trials not converged: {sum(1 for t in trials if not t.converged)}.** Rerun: "
        f"`.venv/bin/python -m benchmarks.serverless_campaign --trials {trials_n} "
        f"--lines {args.lines} --seed {args.seed}` (about {took:.0f} s)."
    )
    print(text + summary)
    if not args.quick:
        record(
            "serverless_campaign",
            "Serverless: batches run once per line across kill -9 and an unkind job API",
            text + summary,
            note=(
                f"Each trial: a batch of {args.lines} lines (parallel 16, retries 1) on one "
                "sandbox endpoint; `podctl apply -y` SIGKILLed 1 to 3 times at a random moment "
                "(0.3 to 4 s), a random fault armed before each (a 429 storm on /run and "
                "/status, 1 to 3 lost /run answers, 1 to 4 workers dying mid-job), then applied "
                "until `plan --detailed-exitcode` exits 0; counted from the sandbox's record of "
                "every accepted submission and from out.jsonl."
            ),
            path=RELIABILITY_MD,
        )
    bad = sum(t.twice + t.lost_outputs for t in trials) + sum(not t.converged for t in trials)
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
