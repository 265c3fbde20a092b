"""The state store's cost: apply adopting 1,000 pods and 100 creates, PostgreSQL vs lockfile.

Run: `.venv/bin/python -m benchmarks.state_pg [--runs 3]` (about 3 minutes). Prints the
table and rewrites the "state_pg" section of BENCHMARKS.md. One run, one private sandbox, one
throwaway PostgreSQL 15 server (fsync off, as the tests run it; loopback), `podctl` as a
subprocess. Adopting: 1,000 pods carrying a stack's markers (made by one apply, whose
lockfile is then dropped) and an empty state: apply records all 1,000 and mutates nothing.
Creates: 100 new pods at the default parallelism, destroyed again between runs (not timed).
Each measured apply starts from a fresh lockfile or a fresh database; the state writes are
counted and timed inside the podctl process.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.cli_startup import compiled_env
from benchmarks.report import record, table
from reconciler.sandbox import control
from tests.postgres import NoPostgres, PgServer, throwaway_server

GPU = "NVIDIA RTX A4000"
IMAGE = "runpod/base:0.6.2-cpu"
ADOPT, CREATE = 1000, 100

# `podctl` with each store's writes counted and timed (in the process, at exit)
TIMED = """
import atexit, sys, time
report, sys.argv = sys.argv[1], ["podctl", *sys.argv[2:]]
spent = [0.0, 0]
def timed(real):
    def write(self, *args, **kwargs):
        start = time.perf_counter()
        try:
            return real(self, *args, **kwargs)
        finally:
            spent[0] += time.perf_counter() - start
            spent[1] += 1
    return write
from reconciler.lockfile.store import LockfileStore
from reconciler.state.postgres import PostgresStore
LockfileStore.write = timed(LockfileStore.write)
PostgresStore.write = timed(PostgresStore.write)
atexit.register(lambda: open(report, "w").write(f"{spent[0]} {spent[1]}"))
from reconciler.cli import main
main()
"""


def write_spec(folder: Path, stack: str, count: int) -> Path:
    lines = ["version: 1", f"stack: {stack}", "pods:"]
    for i in range(count):
        lines += [
            f"  p{i:04d}:",
            f"    image: {IMAGE}",
            f"    gpu: {{type: {GPU}, count: 1}}",
            "    ports: [8888/http]",
        ]
    path = folder / f"{stack}.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


@dataclass
class Applied:
    seconds: float
    write_seconds: float
    writes: int


class Bench:
    def __init__(self, work: Path, pg: PgServer) -> None:
        self.work, self.pg = work, pg
        self.info = control.start_detached(work / "sandbox", start_delay=0, stock=ADOPT * 8)
        self.env = {**compiled_env(), **self.info.env()}
        self.n = 0

    def fresh(self, store: str) -> list[str]:
        """`--state` of a fresh lockfile or a fresh database."""
        self.n += 1
        if store == "lockfile":
            return ["--state", str(self.work / f"run{self.n}.podctl.lock")]
        name = f"bench{self.n}"
        self.pg.sql(f"CREATE DATABASE {name}")
        return ["--state", self.pg.url(name)]

    def podctl(self, *args: str) -> Applied:
        report = self.work / "timing"
        argv = [sys.executable, "-c", TIMED, str(report), *args]
        start = time.perf_counter()
        proc = subprocess.run(argv, env=self.env, cwd=self.work, capture_output=True, text=True)
        elapsed = time.perf_counter() - start
        if proc.returncode != 0:
            raise SystemExit(f"podctl {args[:2]} failed:\n{(proc.stdout + proc.stderr)[-2000:]}")
        spent, writes = report.read_text().split()
        return Applied(elapsed, float(spent), int(writes))


def cell(runs: list[Applied]) -> list[object]:
    seconds = statistics.median(r.seconds for r in runs)
    writes = statistics.median(r.write_seconds for r in runs)
    count = runs[0].writes
    return [f"{seconds:.2f} s", f"{writes * 1000:.0f} ms", f"{count:,}",
            f"{writes / count * 1000:.2f} ms" if count else "n/a"]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="measured applies per cell")
    args = parser.parse_args(argv)
    results: dict[tuple[str, str], list[Applied]] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="podctl-bench-") as tmp, throwaway_server() as pg:
            bench = Bench(Path(tmp), pg)
            try:
                big = write_spec(bench.work, "big", ADOPT)
                small = write_spec(bench.work, "small", CREATE)
                seed = ["--state", str(bench.work / "seed.podctl.lock")]
                bench.podctl("apply", "-y", "--parallelism", "100", *seed, "-f", str(big))
                for _ in range(args.runs):  # interleaved, so drift hits both stores alike
                    for store in ("lockfile", "postgres"):
                        state = bench.fresh(store)
                        adopt = bench.podctl("apply", "-y", *state, "-f", str(big))
                        results.setdefault(("adopt", store), []).append(adopt)
                        state = bench.fresh(store)
                        made = bench.podctl("apply", "-y", *state, "-f", str(small))
                        results.setdefault(("create", store), []).append(made)
                        bench.podctl("destroy", "-y", *state, "-f", str(small))
            finally:
                control.stop(bench.work / "sandbox", kill_pods=True)
    except NoPostgres as exc:
        raise SystemExit(str(exc)) from None
    rows = []
    for what, label in (("adopt", f"apply adopting {ADOPT:,} pods"),
                        ("create", f"apply creating {CREATE} pods")):  # fmt: skip
        lock, pgs = results[(what, "lockfile")], results[(what, "postgres")]
        ratio = statistics.median(r.seconds for r in pgs) / statistics.median(
            r.seconds for r in lock
        )
        rows.append([label, "lockfile", *cell(lock), ""])
        rows.append([label, "PostgreSQL", *cell(pgs), f"{ratio:.2f}x the lockfile"])
    headers = ("apply", "store", "wall (median)", "in state writes", "writes", "per write",
               "PostgreSQL vs lockfile")  # fmt: skip
    body = table(headers, rows)
    print(body)
    record(
        "state_pg",
        "State store: PostgreSQL vs the lockfile",
        body,
        note=f"Median of {args.runs} applies per cell, lockfile and PostgreSQL interleaved in one "
        "run; PostgreSQL on loopback with fsync off (a networked server adds its round trip "
        "to every write). A PostgreSQL write stores only the records that changed (rows); a "
        "lockfile write rewrites the whole file (as of this measurement: one write per "
        "change, not yet grouped per wave).",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
