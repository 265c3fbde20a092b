"""Benchmark the sandbox: start time, and `myself { pods }` with 1,000 pods.

Run: `.venv/bin/python -m benchmarks.bench_sandbox`. Prints a table and updates the
"Sandbox" section of BENCHMARKS.md (via benchmarks.report). Targets: start <= 1 s,
`myself { pods }` <= 200 ms.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

from benchmarks.report import TIMING_HEADERS, record, table, timing_row, verdict
from reconciler.sandbox import control
from reconciler.sandbox.state import Store

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
    rows: list[list[object]] = []
    with tempfile.TemporaryDirectory() as tmp:
        empty = Path(tmp) / "empty"
        starts = [time_start(empty) for _ in range(5)]
        target = verdict(statistics.median(starts), 1.0, "1 s")
        rows.append(timing_row("start (empty state), to first answer", starts, target))
        full = Path(tmp) / "full"
        t0 = time.perf_counter()
        seed(full, PODS)
        print(f"seeded {PODS} pods in {time.perf_counter() - t0:.2f} s", file=sys.stderr)
        starts = [time_start(full) for _ in range(3)]
        target = verdict(statistics.median(starts), 1.0, "1 s")
        rows.append(timing_row(f"start ({PODS} pods in state)", starts, target))
        info = control.start_detached(full, start_delay=0)
        try:
            times = time_queries(info, QUERY_POD)
            target = verdict(statistics.median(times), 0.2, "200 ms")
            rows.append(timing_row(f"myself {{ pods }} ({PODS} pods, SDK's query)", times, target))
            resp = httpx.post(
                info.url + "/graphql",
                json={"query": QUERY_POD},
                headers={"Authorization": f"Bearer {info.api_key}"},
            )
            assert len(resp.json()["data"]["myself"]["pods"]) == PODS
            pod_id = resp.json()["data"]["myself"]["pods"][0]["id"]
            one = (
                f'{{ pod(input: {{podId: "{pod_id}"}}) {{ id desiredStatus'
                " runtime { ports { publicPort } } } }"
            )
            times = time_queries(info, one)
            rows.append(timing_row(f"pod(input) ({PODS} pods)", times, "-"))
        finally:
            control.stop(info.data_dir)
    text = table(TIMING_HEADERS, rows)
    print(text)
    note = f"Server in a subprocess, httpx client, {RUNS} queries after a warm-up."
    record("bench_sandbox", "Sandbox", text, note=note)
    return 0


if __name__ == "__main__":
    sys.exit(main())
