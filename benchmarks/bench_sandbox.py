"""Benchmark the sandbox: start time, and `myself { pods }` with 1,000 pods.

Run: `.venv/bin/python benchmarks/bench_sandbox.py`. Prints a table and updates the
"Sandbox" section of BENCHMARKS.md. Targets: start <= 1 s, `myself { pods }` <= 200 ms.
"""

from __future__ import annotations

import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

from reconciler.sandbox import control
from reconciler.sandbox.state import Store

ROOT = Path(__file__).resolve().parent.parent
BENCH_FILE = ROOT / "BENCHMARKS.md"
START, END = "<!-- bench_sandbox:start -->", "<!-- bench_sandbox:end -->"
PODS = 1000
RUNS = 20

QUERY_POD = """query myPods { myself { pods { id containerDiskInGb costPerHr desiredStatus
  dockerArgs dockerId env gpuCount imageName lastStatusChange machineId memoryInGb name
  podType port ports
  uptimeSeconds vcpuCount volumeInGb volumeMountPath
  runtime { ports { ip isIpPublic privatePort publicPort type } }
  machine { gpuDisplayName } } } }"""


def seed(data_dir: Path, count: int) -> None:
    """Write a state file with `count` running pods (the SDK's create input, no SSH keys)."""
    store = Store(data_dir, start_delay=0, default_stock=count * 8)
    real_save = store.save
    store.save = lambda: None  # type: ignore[method-assign]
    for i in range(count):
        store.create(
            {
                "name": f"bench-{i}",
                "imageName": "runpod/pytorch:2.1",
                "gpuTypeId": "NVIDIA RTX A4000",
                "cloudType": "SECURE",
                "ports": "8888/http,22/tcp",
                "env": [{"key": "PODCTL", "value": "1"}],
            }
        )
    real_save()


def time_start(data_dir: Path) -> float:
    t0 = time.perf_counter()
    info = control.start_detached(data_dir, start_delay=0)
    elapsed = time.perf_counter() - t0
    control.stop(info.data_dir)
    return elapsed


def time_queries(info: control.SandboxInfo, query: str) -> list[float]:
    headers = {"Authorization": f"Bearer {info.api_key}"}
    out = []
    with httpx.Client(base_url=info.url, headers=headers, timeout=30) as client:
        client.post("/graphql", json={"query": query}).raise_for_status()  # warm-up
        for _ in range(RUNS):
            t0 = time.perf_counter()
            resp = client.post("/graphql", json={"query": query})
            out.append(time.perf_counter() - t0)
            resp.raise_for_status()
    return out


def main() -> int:
    rows: list[tuple[str, float, float, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        empty = Path(tmp) / "empty"
        starts = [time_start(empty) for _ in range(5)]
        rows.append(("start (empty state), to first answer", statistics.median(starts),
                     max(starts), "<= 1 s"))  # fmt: skip
        full = Path(tmp) / "full"
        t0 = time.perf_counter()
        seed(full, PODS)
        print(f"seeded {PODS} pods in {time.perf_counter() - t0:.2f} s", file=sys.stderr)
        starts = [time_start(full) for _ in range(3)]
        rows.append((f"start ({PODS} pods in state)", statistics.median(starts), max(starts),
                     "<= 1 s"))  # fmt: skip
        info = control.start_detached(full, start_delay=0)
        try:
            times = time_queries(info, QUERY_POD)
            rows.append((f"myself {{ pods }} ({PODS} pods, SDK's query)",
                         statistics.median(times), max(times), "<= 200 ms"))  # fmt: skip
            resp = httpx.post(info.url + "/graphql", json={"query": QUERY_POD},
                              headers={"Authorization": f"Bearer {info.api_key}"})  # fmt: skip
            assert len(resp.json()["data"]["myself"]["pods"]) == PODS
            pod_id = resp.json()["data"]["myself"]["pods"][0]["id"]
            one = (
                f'{{ pod(input: {{podId: "{pod_id}"}}) {{ id desiredStatus'
                " runtime { ports { publicPort } } } }"
            )
            times = time_queries(info, one)
            rows.append((f"pod(input) ({PODS} pods)", statistics.median(times), max(times), "-"))
        finally:
            control.stop(info.data_dir)
    table = ["| measurement | median | max | target |", "| --- | --- | --- | --- |"]
    for name, med, worst, target in rows:
        table.append(f"| {name} | {med * 1000:.0f} ms | {worst * 1000:.0f} ms | {target} |")
    text = "\n".join(table)
    print(text)
    machine = (
        f"{platform.python_implementation()} {platform.python_version()}, {platform.machine()}"
    )
    section = (
        f"{START}\n## Sandbox (`benchmarks/bench_sandbox.py`)\n\n"
        f"{time.strftime('%Y-%m-%d')}, {machine}; server in a subprocess, httpx client, "
        f"{RUNS} runs after a warm-up.\n\n{text}\n{END}"
    )
    old = BENCH_FILE.read_text() if BENCH_FILE.exists() else "# Benchmarks\n"
    if START in old and END in old:
        new = old[: old.index(START)] + section + old[old.index(END) + len(END) :]
    else:
        new = old.rstrip("\n") + "\n\n" + section + "\n"
    BENCH_FILE.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
