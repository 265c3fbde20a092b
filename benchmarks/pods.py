"""Plan at scale and parallel apply: plan over 10 / 100 / 1,000 pods, 100 creates vs the SDK.

Run: `.venv/bin/python -m benchmarks.pods`. Prints tables and rewrites the "pods" section of
BENCHMARKS.md. Everything runs against a private sandbox in a temp dir; `podctl` runs as a
subprocess, as a user runs it. Targets (issue 4): requests per plan <= 2 for every N, plan
wall time <= 1.5 s for 1,000 pods, apply of 100 creates under 100 ms of injected latency
>= 5x faster than a sequential script using the official SDK.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.cli_startup import podctl_command
from benchmarks.report import record, table
from reconciler.executor.request import create_request
from reconciler.model import CloudType
from reconciler.plans import Placement
from reconciler.sandbox import control
from reconciler.sandbox.state import Store
from reconciler.spec import load_spec

GPU = "NVIDIA RTX A4000"
IMAGE = "runpod/base:0.6.2-cpu"


def write_spec(directory: Path, stack: str, count: int) -> Path:
    """A spec of `count` small pods without SSH (no jobs): plan/apply cost, not SSH cost."""
    lines = ["version: 1", f"stack: {stack}", "pods:"]
    for i in range(count):
        lines += [
            f"  p{i:04d}:",
            f"    image: {IMAGE}",
            f"    gpu: {{type: {GPU}, count: 1}}",
            "    ports: [8888/http]",
            "    env: {MODEL: small}",
        ]
    path = directory / f"{stack}.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def seed(data_dir: Path, spec_path: Path) -> None:
    """Put in the sandbox's state exactly the pods podctl would create for this spec."""
    desired = load_spec([spec_path])
    store = Store(data_dir, start_delay=0, default_stock=len(desired.pods) * 8 + 100)
    real_save = store.save
    store.save = lambda: None  # type: ignore[method-assign]
    now = datetime.now(UTC)
    for name, spec in desired.pods.items():
        request = create_request(
            spec,
            Placement(gpu_type_id=GPU, cloud=CloudType.SECURE),
            stack=desired.stack,
            uid=f"uid-{name}",
            secrets={},
            now=now,
        )
        store.create(request.to_input())
    real_save()


def requests_made(info: control.SandboxInfo) -> dict[str, Any]:
    status = control.request(info, "GET", "/_sandbox/status")
    counted: dict[str, Any] = status["requests"]
    return counted


def run_podctl(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[float, int, str]:
    start = time.perf_counter()
    proc = subprocess.run(
        [*podctl_command(), *argv], env=env, cwd=cwd, capture_output=True, text=True, check=False
    )
    return time.perf_counter() - start, proc.returncode, proc.stdout + proc.stderr


def bench_plan(tmp: Path, sizes: list[int], runs: int) -> tuple[str, dict[int, float]]:
    rows: list[list[object]] = []
    medians: dict[int, float] = {}
    for count in sizes:
        work = tmp / f"plan{count}"
        work.mkdir()
        spec = write_spec(work, f"bench{count}", count)
        data_dir = work / "sandbox"
        seed(data_dir, spec)
        info = control.start_detached(data_dir, start_delay=0)
        try:
            env = {**os.environ, **info.env()}
            argv = ["plan", "-f", str(spec), "--lockfile", str(work / "podctl.lock")]
            argv += ["--detailed-exitcode"]
            before = requests_made(info)["total"]
            samples, codes = [], set()
            for _ in range(runs):
                elapsed, code, output = run_podctl(argv, env, work)
                samples.append(elapsed)
                codes.add(code)
                if code not in (0, 2):
                    raise SystemExit(f"podctl plan failed ({code}):\n{output[-2000:]}")
            per_plan = (requests_made(info)["total"] - before) / runs
        finally:
            control.stop(info.data_dir)
        medians[count] = statistics.median(samples)
        met = per_plan <= 2 and (count < 1000 or medians[count] <= 1.5)
        rows.append(
            [
                count,
                f"{per_plan:g}",
                f"{medians[count] * 1000:.0f}",
                f"{max(samples) * 1000:.0f}",
                "no changes" if codes == {0} else f"exit {sorted(codes)}",
                "met" if met else "MISSED",
            ]
        )
    headers = ["pods", "requests/plan", "median ms", "max ms", "plan", "target"]
    return table(headers, rows), medians


def sdk_creates(info: control.SandboxInfo, count: int) -> float:
    """The sequential script a user writes with the official SDK: one create after another."""
    code = f"""
import os, time, runpod
runpod.api_key = os.environ["RUNPOD_API_KEY"]
start = time.perf_counter()
for i in range({count}):
    runpod.create_pod(name=f"sdk-{{i}}", image_name="{IMAGE}", gpu_type_id="{GPU}",
                      gpu_count=1, ports="8888/http", env={{"MODEL": "small"}})
print(time.perf_counter() - start)
"""
    env = {**os.environ, **info.env()}
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise SystemExit(f"SDK script failed:\n{proc.stderr[-2000:]}")
    return float(proc.stdout.strip().splitlines()[-1])


def bench_apply(tmp: Path, count: int, latency_ms: int) -> str:
    work = tmp / "apply"
    work.mkdir()
    spec = write_spec(work, "parallel", count)
    info = control.start_detached(work / "sandbox", start_delay=0, stock=count * 4)
    try:
        control.faults(info.data_dir, {"latency_ms": latency_ms})
        env = {**os.environ, **info.env()}
        argv = ["apply", "-y", "-f", str(spec), "--lockfile", str(work / "podctl.lock")]
        podctl_s, code, output = run_podctl(argv, env, work)
        if code != 0:
            raise SystemExit(f"podctl apply failed ({code}):\n{output[-2000:]}")
        sdk_s = sdk_creates(info, count)
        pods = control.request(info, "GET", "/_sandbox/status")["pods"]
    finally:
        control.stop(info.data_dir)
    ratio = sdk_s / podctl_s
    rows = [
        ["podctl apply -y (parallelism 10, waits for readiness)", f"{podctl_s:.2f}", ""],
        [f"official SDK, sequential create_pod x {count}", f"{sdk_s:.2f}", ""],
        ["ratio (SDK / podctl)", f"{ratio:.1f}x", ">= 5x: " + ("met" if ratio >= 5 else "MISSED")],
    ]
    note = (
        f"\n\n{count} creates each way, {latency_ms} ms injected latency per request;"
        f" {pods} pods at the end."
    )
    return table(["run", "seconds", "target"], rows) + note


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--sizes", default="10,100,1000")
    parser.add_argument("--creates", type=int, default=100, help="0: plan only, nothing recorded")
    parser.add_argument("--latency-ms", type=int, default=100)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        plan_table, _ = bench_plan(tmp, sizes, args.runs)
        print(plan_table)
        if args.creates <= 0:
            return  # a plan-only probe: BENCHMARKS.md keeps its full run
        apply_table = bench_apply(tmp, args.creates, args.latency_ms)
        print(apply_table)
    body = (
        "`podctl plan` against a sandbox already holding every pod of the spec (no lockfile:"
        " every pod is adopted by its markers), as a subprocess:\n\n"
        f"{plan_table}\n\nApply creating pods vs the official SDK, measured in one run:\n\n"
        f"{apply_table}"
    )
    record("pods", "Pods: plan at scale, parallel apply", body)


if __name__ == "__main__":
    main()
