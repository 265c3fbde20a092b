"""Lifetime campaign: podctl killed at random moments, its lockfile lost; every pod must still end.

Run: `.venv/bin/python -m benchmarks.lifetimes [--trials 8] [--seed 1] [--lifetime 20]
[--quick]`. Each trial is its own stack (2 pods with 22/tcp and a short `max_lifetime`) in one
private sandbox, all trials at once: `podctl apply -y` is killed with SIGKILL at a random
moment, its lockfile is deleted, then one `podctl reconcile --once` runs from a fresh folder
(a CI runner that lost everything: it adopts the pods by their markers, or creates those the
killed apply never made, and arms their watchdogs), and the lockfile is deleted again. podctl
never runs again: each pod must end by itself (its on-pod watchdog) within its deadline (its
`PODCTL_CREATED` marker + max_lifetime) + 60 s, and none may be left billing. Writes its
section of RELIABILITY.md (not with `--quick`).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks.cli_startup import podctl_command
from benchmarks.report import record, table
from reconciler.sandbox import control

ROOT = Path(__file__).resolve().parent.parent
RELIABILITY_MD = ROOT / "RELIABILITY.md"
GRACE_S = 60.0  # a pod must be gone within its deadline + this
PODS = ("a", "b")
PODS_QUERY = "query { myself { pods { id name desiredStatus env } } }"
ROUND_TIMEOUT_S = 120.0
KILL_WINDOW_S = 4.0  # apply is killed within this long after it starts (create, ready, arm)


def spec_text(stack: str, lifetime_s: int) -> str:
    lines = ["version: 1", f"stack: {stack}", "pods:"]
    for name in PODS:
        lines += [
            f"  {name}:",
            "    image: runpod/base:0.6.2-cpu",
            "    gpu: {type: NVIDIA RTX A4000}",
            "    ports: [22/tcp]",
            f"    max_lifetime: {lifetime_s}s",
        ]
    return "\n".join(lines) + "\n"


@dataclass
class Trial:
    stack: str
    killed_apply_at: float = 0.0  # s after its start
    reconcile: str = ""  # how the fresh runner's round ended
    # pod id -> (deadline, when it was seen gone or None)
    pods: dict[str, tuple[datetime, datetime | None]] = field(default_factory=dict)


class Campaign:
    def __init__(self, root: Path, trials: int, seed: int, lifetime_s: int) -> None:
        self.root = root
        self.rng = random.Random(seed)
        self.lifetime_s = lifetime_s
        self.data_dir = root / "sandbox"
        self.home = root / "home"
        self.home.mkdir(parents=True)
        self.info = control.start_detached(self.data_dir, start_delay=0, stock=64)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNPOD_", "PODCTL_"))}
        self.env = {
            **env,
            "HOME": str(self.home),
            "XDG_CACHE_HOME": str(self.home / ".cache"),
            "PODCTL_SANDBOX_DIR": str(self.data_dir),
            "PODCTL_POLL_INTERVAL": "0.05",
        }
        self.trials = [Trial(f"lt{i}") for i in range(trials)]
        self.plans = [self.rng.uniform(0, KILL_WINDOW_S) for _ in self.trials]

    def close(self) -> None:
        try:
            control.reset(self.data_dir)
        finally:
            control.stop(self.data_dir, kill_pods=True)

    def folder(self, trial: Trial, run: str) -> Path:
        path = self.root / trial.stack / run
        path.mkdir(parents=True, exist_ok=True)
        (path / "podctl.yaml").write_text(spec_text(trial.stack, self.lifetime_s))
        return path

    def popen(self, folder: Path, *args: str) -> subprocess.Popen[bytes]:
        argv = [*podctl_command(), *args, "--sandbox", "-f", str(folder / "podctl.yaml")]
        return subprocess.Popen(
            argv, cwd=folder, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    def run_trial(self, index: int) -> None:
        trial = self.trials[index]
        kill_at = self.plans[index]
        first = self.folder(trial, "first")
        proc = self.popen(first, "apply", "-y")
        time.sleep(kill_at)
        trial.killed_apply_at = round(kill_at, 2)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        for lock in first.glob("*.podctl.lock*"):
            lock.unlink()
        # a fresh runner (its own folder, no lockfile, the same key) runs one round
        fresh = self.folder(trial, "fresh")
        for key in first.glob("*.id_ed25519*"):
            shutil.copy2(key, fresh / key.name)
        proc = self.popen(fresh, "reconcile", "--once")
        try:
            trial.reconcile = f"exit {proc.wait(timeout=ROUND_TIMEOUT_S)}"
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            trial.reconcile = f"killed after {ROUND_TIMEOUT_S:.0f}s"
        for lock in fresh.glob("*.podctl.lock*"):
            lock.unlink()

    def live(self) -> list[dict[str, Any]]:
        answer = control.request(self.info, "POST", "/graphql", {"query": PODS_QUERY})
        pods = answer["data"]["myself"]["pods"]
        out = []
        for pod in pods:
            if pod["desiredStatus"] == "TERMINATED":
                continue
            env = dict(item.split("=", 1) for item in pod.get("env") or [] if "=" in item)
            out.append({**pod, "env": env})
        return out

    def watch(self) -> None:
        """Poll until every pod is gone or its deadline + GRACE_S has passed."""
        by_stack = {t.stack: t for t in self.trials}
        seen: dict[str, tuple[Trial, datetime]] = {}
        while True:
            now = datetime.now(UTC)
            live = {p["id"]: p for p in self.live()}
            for pod_id, pod in live.items():
                trial = by_stack.get(pod["env"].get("PODCTL_STACK", ""))
                created = pod["env"].get("PODCTL_CREATED")
                if trial is None or created is None or pod_id in seen:
                    continue
                when = datetime.fromisoformat(created) + timedelta(seconds=self.lifetime_s)
                seen[pod_id] = (trial, when)
                trial.pods[pod_id] = (when, None)
            for pod_id, (trial, when) in seen.items():
                if pod_id not in live and trial.pods[pod_id][1] is None:
                    trial.pods[pod_id] = (when, now)
            pending = [w for p, (_t, w) in seen.items() if p in live]
            if not pending or now > max(pending) + timedelta(seconds=GRACE_S):
                return
            time.sleep(0.5)


def summarize(trials: Sequence[Trial]) -> tuple[list[list[object]], dict[str, int]]:
    rows: list[list[object]] = []
    totals = {"pods": 0, "late": 0, "billing": 0, "early": 0}
    for t in trials:
        lags = []
        for deadline, gone in t.pods.values():
            totals["pods"] += 1
            if gone is None:
                totals["billing"] += 1
                continue
            lag = (gone - deadline).total_seconds()
            lags.append(lag)
            totals["late"] += lag > GRACE_S
            totals["early"] += lag < -1  # poll-quantised; earlier than 1 s would be a bug
        worst = f"{max(lags):+.1f}s" if lags else "-"
        left = sum(1 for _d, g in t.pods.values() if g is None)
        rows.append([t.stack, f"{t.killed_apply_at:.2f}s", t.reconcile, len(t.pods), worst, left])
    return rows, totals


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.lifetimes")
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--lifetime", type=int, default=20, help="max_lifetime in seconds")
    parser.add_argument("--quick", action="store_true", help="2 trials; RELIABILITY.md untouched")
    args = parser.parse_args(argv)
    trials = 2 if args.quick else args.trials
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="podctl-lifetimes-") as tmp:
        campaign = Campaign(Path(tmp), trials, args.seed, args.lifetime)
        try:
            threads = [
                threading.Thread(target=campaign.run_trial, args=(i,)) for i in range(trials)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            campaign.watch()
        finally:
            campaign.close()
    rows, totals = summarize(campaign.trials)
    headers = [
        "stack",
        "apply killed at",
        "fresh runner's round",
        "pods",
        "worst end vs deadline",
        "left billing",
    ]
    body = table(headers, rows)
    elapsed = time.perf_counter() - started
    verdict = (
        f"{totals['pods']} pods; ended later than deadline + {GRACE_S:.0f} s: {totals['late']}; "
        f"left billing: {totals['billing']}; ended more than 1 s early: {totals['early']}"
    )
    print(body)
    print(verdict)
    print(f"({elapsed:.0f}s)")
    if not args.quick:
        rerun = (
            f"`.venv/bin/python -m benchmarks.lifetimes --trials {trials} --seed {args.seed} "
            f"--lifetime {args.lifetime}`"
        )
        record(
            "lifetimes",
            "Lifetimes: podctl killed, lockfile lost, every pod still ends",
            f"{body}\n\n**{verdict}.** Rerun: {rerun} (about {elapsed:.0f} s).",
            note=(
                f"{trials} stacks at once in one private sandbox, 2 pods each with 22/tcp and "
                f"max_lifetime {args.lifetime}s: apply SIGKILLed at a random moment (0 to "
                f"{KILL_WINDOW_S:.0f} s), lockfile deleted, one `reconcile --once` from a fresh "
                "folder, lockfile deleted again; "
                "then no podctl at all: each pod's watchdog must end it. The deadline is the "
                "pod's PODCTL_CREATED marker + max_lifetime; ends are seen by polling every 0.5 s."
            ),
            path=RELIABILITY_MD,
        )
    return 0 if totals["late"] == totals["billing"] == totals["early"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
