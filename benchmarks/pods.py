"""Pods at any size: plan, adopt and create, each as a ratio to its floor, in one run.

Run: `.venv/bin/python -m benchmarks.pods` (about 5 minutes). Prints the table and rewrites
the "pods" section of BENCHMARKS.md. Everything runs against private sandboxes in a temp
dir; `podctl` runs as a subprocess, as a user runs it, from compiled bytecode: the package
and its dependencies are compiled first and the subprocesses run without
PYTHONDONTWRITEBYTECODE, as after `pip install`.

The floors: `benchmarks/floor.py`, a stdlib script that fetches the account's pods once with
podctl's own query and parses them (no plan can be faster); the 1,000-pod plan for adopting
and creating; the round trips for 100 creates under injected latency (2 reads, then one
create per wave of `--parallelism`); podctl for the official SDK's sequential creates.
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.cli_startup import podctl_command
from benchmarks.report import record, table
from reconciler.backends.runpod_graphql.documents import LIST_PODS, create_input
from reconciler.executor.request import create_request
from reconciler.model import CloudType
from reconciler.plans import Placement
from reconciler.sandbox import control
from reconciler.sandbox.state import Store
from reconciler.spec import load_spec

GPU = "NVIDIA RTX A4000"
IMAGE = "runpod/base:0.6.2-cpu"
ROOT = Path(__file__).resolve().parent.parent
FLOOR = Path(__file__).resolve().parent / "floor.py"
BIG, SMALL, OTHERS = 1000, 10, 100  # an account of 1,110 pods: two stacks and unmanaged pods

# `podctl` with the lockfile's writes timed: to tell their cost (another module's) from the rest
TIMED_PODCTL = """
import atexit, sys, time
report, sys.argv = sys.argv[1], ["podctl", *sys.argv[2:]]
spent = [0.0, 0]
try:
    from reconciler.lockfile.store import LockfileStore
except ImportError:  # moved: the total is still measured
    LockfileStore = None
if LockfileStore is not None:
    real = LockfileStore.write
    def timed(self, *args, **kwargs):
        start = time.perf_counter()
        try:
            return real(self, *args, **kwargs)
        finally:
            spent[0] += time.perf_counter() - start
            spent[1] += 1
    LockfileStore.write = timed
atexit.register(lambda: open(report, "w").write(f"{spent[0]} {spent[1]}"))
from reconciler.cli import main
main()
"""


def compiled_env() -> dict[str, str]:
    """The environment podctl runs in here: bytecode written and used, as after pip install."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def compile_everything() -> None:
    """`python -m compileall` of podctl and the venv's packages (what pip install does)."""
    targets = [str(ROOT / "reconciler"), sysconfig.get_paths()["purelib"]]
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", "-j", "0", *targets],
        env=compiled_env(),
        capture_output=True,
        check=False,
    )


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


def seed(data_dir: Path, specs: list[Path], others: int) -> None:
    """Put in the sandbox's state exactly the pods podctl would create for these specs, plus
    `others` pods podctl did not create (no markers)."""
    desired = [load_spec([spec]) for spec in specs]
    total = sum(len(d.pods) for d in desired) + others
    store = Store(data_dir, start_delay=0, default_stock=total * 8 + 100)
    real_save = store.save
    store.save = lambda: None  # type: ignore[method-assign]
    now = datetime.now(UTC)
    for state in desired:
        for name, spec in state.pods.items():
            request = create_request(
                spec,
                Placement(gpu_type_id=GPU, cloud=CloudType.SECURE),
                stack=state.stack,
                uid=f"uid-{state.stack}-{name}",
                secrets={},
                now=now,
            )
            store.create(create_input(request))
    for i in range(others):
        store.create(
            {"name": f"other-{i}", "imageName": IMAGE, "gpuTypeId": GPU, "cloudType": "SECURE"}
        )
    real_save()


def run(argv: list[str], env: dict[str, str], cwd: Path, ok: tuple[int, ...] = (0,)) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode not in ok:
        tail = (proc.stdout + proc.stderr)[-2000:]
        raise SystemExit(f"{argv[:3]} failed ({proc.returncode}):\n{tail}")
    return elapsed


def median_of(runs: int, once: Callable[[], float]) -> float:
    once()  # warm-up: the OS file cache, the sandbox's first answers
    return statistics.median(once() for _ in range(runs))


@dataclass
class Sandbox:
    info: control.SandboxInfo
    work: Path

    @property
    def env(self) -> dict[str, str]:
        return {**compiled_env(), **self.info.env()}

    def plan(self, spec: Path, runs: int) -> float:
        argv = [*podctl_command(), "plan", "-f", str(spec), "--detailed-exitcode"]
        argv += ["--lockfile", str(self.work / "none.lock")]
        return median_of(runs, lambda: run(argv, self.env, self.work, ok=(0, 2)))

    def floor(self, runs: int) -> float:
        query = self.work / "list-pods.graphql"
        query.write_text(LIST_PODS)
        argv = [sys.executable, str(FLOOR), str(query)]
        return median_of(runs, lambda: run(argv, self.env, self.work))

    def apply(self, spec: Path, lockfile: str, parallelism: int) -> Applied:
        report = self.work / f"{lockfile}.timing"
        argv = [sys.executable, "-c", TIMED_PODCTL, str(report), "apply", "-y", "-f", str(spec)]
        argv += ["--lockfile", str(self.work / lockfile), "--parallelism", str(parallelism)]
        server, ours = self.sandbox_cpu(), children_cpu()
        total = run(argv, self.env, self.work)
        server, ours = self.sandbox_cpu() - server, children_cpu() - ours
        spent, writes = report.read_text().split()
        return Applied(total, float(spent), int(writes), ours, server)

    def sandbox_cpu(self) -> float:
        """CPU seconds the sandbox server has used so far (Linux /proc)."""
        try:
            fields = Path(f"/proc/{self.info.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Applied:
    """One apply: its wall time, its lockfile writes, and the CPU of podctl and the sandbox."""

    seconds: float
    lockfile_seconds: float  # inside LockfileStore.write, in a worker thread beside the API
    lockfile_writes: int
    podctl_cpu: float
    sandbox_cpu: float

    def ratio(self, floor: float, unit: str) -> str:
        return (
            f"{self.seconds / floor:.1f}x {unit}; {self.lockfile_writes:,} lockfile writes"
            f" ({self.lockfile_seconds:.2f} s, off the event loop); CPU: podctl"
            f" {self.podctl_cpu:.1f} s, sandbox {self.sandbox_cpu:.1f} s"
        )


def start(work: Path, stock: int | None = None) -> Sandbox:
    info = control.start_detached(work / "sandbox", start_delay=0, stock=stock)
    return Sandbox(info, work)


def sdk_creates(box: Sandbox, count: int) -> float:
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
    proc = subprocess.run(
        [sys.executable, "-c", code], env=box.env, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise SystemExit(f"SDK script failed:\n{proc.stderr[-2000:]}")
    return float(proc.stdout.strip().splitlines()[-1])


def verdict(ratio: float, limit: float, at_least: bool = False) -> str:
    met = ratio >= limit if at_least else ratio <= limit
    sign = ">=" if at_least else "<="
    return f"{sign} {limit:g}x: {'met' if met else 'MISSED'}"


@dataclass
class Results:
    rows: list[list[object]]
    notes: list[str]


def bench(tmp: Path, args: argparse.Namespace) -> Results:
    rows: list[list[object]] = []
    notes: list[str] = []
    account = tmp / "account"
    account.mkdir()
    big = write_spec(account, "big", BIG)
    small = write_spec(account, "small", SMALL)
    seed(account / "sandbox", [big, small], OTHERS)
    box = start(account)
    try:
        floor = box.floor(args.runs)
        plan_big = box.plan(big, args.runs)
        plan_small = box.plan(small, args.runs)
        adopt_big = box.apply(big, "adopt.lock", 20)
    finally:
        control.stop(box.info.data_dir)
    rows.append(["floor: stdlib fetch + parse of 1,110 pods", s(floor), "1x", ""])
    ratio = plan_big / floor
    rows.append([f"`podctl plan`, {BIG:,} pods", s(plan_big), f"{ratio:.1f}x", verdict(ratio, 3)])
    ratio = plan_small / floor
    rows.append([f"`podctl plan`, {SMALL} pods", s(plan_small), f"{ratio:.1f}x", verdict(ratio, 2)])
    rows.append(
        [
            f"`podctl apply`, no lockfile, adopting {BIG:,}",
            s(adopt_big.seconds),
            adopt_big.ratio(plan_big, "plan"),
            verdict(adopt_big.seconds / plan_big, 2.5),
        ]
    )

    if args.adopt_large:
        huge = tmp / "huge"
        huge.mkdir()
        large = args.adopt_large
        spec = write_spec(huge, "huge", large)
        seed(huge / "sandbox", [spec], OTHERS + SMALL)
        box = start(huge)
        try:
            plan_huge = box.plan(spec, 1)
            adopt_huge = box.apply(spec, "adopt.lock", 20)
        finally:
            control.stop(box.info.data_dir)
        growth = adopt_huge.seconds / adopt_big.seconds
        linear = large / BIG
        rows.append(
            [
                f"`podctl apply`, no lockfile, adopting {large:,}",
                s(adopt_huge.seconds),
                f"{growth:.1f}x the {BIG:,} adoption; " + adopt_huge.ratio(plan_huge, "its plan"),
                f"linear: ~{linear:g}x: {'met' if growth <= linear * 1.5 else 'MISSED'}",
            ]
        )

    if args.creates_large:
        fresh = tmp / "fresh"
        fresh.mkdir()
        spec = write_spec(fresh, "fresh", args.creates_large)
        box = start(fresh, stock=args.creates_large * 4)
        try:
            create_big = box.apply(spec, "fresh.lock", 20)
        finally:
            control.stop(box.info.data_dir)
        rows.append(
            [
                f"first apply creating {args.creates_large:,} pods (0 ms, parallelism 20)",
                s(create_big.seconds),
                create_big.ratio(plan_big, "plan"),
                verdict(create_big.seconds / plan_big, 12),
            ]
        )

    if args.creates:
        latency = tmp / "latency"
        latency.mkdir()
        spec = write_spec(latency, "latency", args.creates)
        box = start(latency, stock=args.creates * 4)
        try:
            control.faults(box.info.data_dir, {"latency_ms": args.latency_ms})
            create_small = box.apply(spec, "latency.lock", 10)
            sdk = sdk_creates(box, args.creates)
        finally:
            control.stop(box.info.data_dir)
        limit = (2 + math.ceil(args.creates / 10)) * args.latency_ms / 1000
        rows.append(
            [
                f"{args.creates} creates, {args.latency_ms} ms latency, parallelism 10",
                s(create_small.seconds),
                create_small.ratio(limit, f"the round trips ({limit:.1f} s)"),
                verdict(create_small.seconds / limit, 1.6),
            ]
        )
        ratio = sdk / create_small.seconds
        rows.append(
            [
                f"official SDK, the same {args.creates} creates one after another",
                s(sdk),
                f"{ratio:.1f}x slower than podctl",
                verdict(ratio, 15, at_least=True),
            ]
        )
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    notes.append(
        f"Medians of {args.runs} runs after a warm-up for the floor and the plans; one run"
        " for each apply. Plans run with no lockfile (every pod adopted by its markers)."
        " Applies run podctl's entry point under a wrapper that times LockfileStore.write"
        " (which runs in a worker thread, beside the API calls); CPU is podctl's (the"
        " subprocess) and the sandbox server's (/proc), both on the same 2 cores."
        f" Load average at the end (1/5/15 min): {load}."
    )
    return Results(rows, notes)


def s(seconds: float) -> str:
    return f"{seconds:.2f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--adopt-large", type=int, default=3000, help="0: skip")
    parser.add_argument("--creates-large", type=int, default=1000, help="0: skip")
    parser.add_argument("--creates", type=int, default=100, help="0: skip")
    parser.add_argument("--latency-ms", type=int, default=100)
    parser.add_argument("--no-record", action="store_true", help="print only")
    args = parser.parse_args()
    compile_everything()
    with tempfile.TemporaryDirectory() as tmp_name:
        results = bench(Path(tmp_name), args)
    text = table(["measurement", "time", "ratio", "target"], results.rows)
    print(text)
    if not args.no_record:
        record("pods", "Pods at any size", text, note=" ".join(results.notes))


if __name__ == "__main__":
    main()
