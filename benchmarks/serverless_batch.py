"""A batch of trivial inputs on a sandbox endpoint: podctl vs the official SDK (runpod-python).

Run: `.venv/bin/python -m benchmarks.serverless_batch [--inputs 1000] [--width 32] [--quick]`.
One private sandbox, one endpoint (the echo handler, 4 warm workers: the sandbox's most),
measured in one run, in this order:
- podctl: a spec with `inputs_file` (N lines), `parallel: WIDTH` and `output`, applied with
  `podctl --sandbox apply -y` in this process (so its requests can be counted; CLI start-up
  is in BENCHMARKS.md's cli_startup section). Polls start at 0.5 s and back off to 10 s.
- the SDK sequentially: `job = Endpoint.run(x)` then `job.output(timeout=60)` per input, the
  loop RunPod's docs show (`output` polls /status every 1 s).
- the SDK in a thread pool of WIDTH threads, each doing the same run + output.
Reported: wall time, inputs/s, requests per input (podctl: its job API client's count,
retries included; the SDK: its RunPodClient requests, not the urllib3 retries below them),
and the ratios. Writes its section of BENCHMARKS.md (not with `--quick`).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import textwrap
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from benchmarks.report import record, table
from reconciler.sandbox import control

ENDPOINT = {
    "name": "bench",
    "type": "QUEUE",
    "image": "bench/echo:1",
    "gpu": {"pools": ["ADA_24"], "count": 1},
    "workers": {"min": 4, "max": 4, "idleTimeout": 60},  # the sandbox runs 4 at most
    "scaling": {"type": "QUEUE_DELAY", "queueDelay": 4},
    "timeout": 600000,
    "flashboot": "OFF",
}


def counted(cls: Any, name: str) -> list[int]:
    """Count calls of cls.name (the one request method of a client)."""
    box = [0]
    original = getattr(cls, name)

    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        box[0] += 1
        return original(self, *args, **kwargs)

    async def async_wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        box[0] += 1
        return await original(self, *args, **kwargs)

    import inspect

    setattr(cls, name, async_wrapper if inspect.iscoroutinefunction(original) else wrapper)
    return box


def timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=1000)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--quick", action="store_true", help="50 inputs, no BENCHMARKS.md")
    args = parser.parse_args(argv)
    n = 50 if args.quick else args.inputs
    root = Path(tempfile.mkdtemp(prefix="podctl-slb-"))
    data_dir = root / "sandbox"
    info = control.start_detached(data_dir, start_delay=0)
    auth = {"Authorization": f"Bearer {info.api_key}"}
    try:
        resp = httpx.post(info.url + "/v2/serverless", json=ENDPOINT, headers=auth, timeout=10)
        resp.raise_for_status()
        endpoint_id = resp.json()["id"]
        base = info.url + "/serverless/v2"
        os.environ["RUNPOD_ENDPOINT_BASE_URL"] = base
        import logging

        import runpod
        from runpod.endpoint.runner import RunPodClient

        # the SDK's import turns request logging on; every client here runs without it
        for name in ("", "httpx", "httpcore", "urllib3", "runpod"):
            logging.getLogger(name).setLevel(logging.WARNING)

        runpod.api_key = info.api_key
        runpod.endpoint_url_base = base
        endpoint = runpod.Endpoint(endpoint_id)
        for i in range(4):  # warm the workers for everyone alike
            endpoint.run({"warm": i}).output(timeout=60)

        os.environ["PODCTL_SANDBOX_DIR"] = str(data_dir)
        os.environ.pop("PODCTL_POLL_INTERVAL", None)
        from reconciler.backends.serverless.client import JobApi
        from reconciler.cli import run

        podctl_requests = counted(JobApi, "_send")
        sdk_requests = counted(RunPodClient, "_request")

        def podctl_once(index: int) -> float:
            folder = root / f"stack{index}"
            folder.mkdir()
            inputs = "".join(json.dumps({"i": i}) + "\n" for i in range(n))
            (folder / "inputs.jsonl").write_text(inputs)
            (folder / "podctl.yaml").write_text(
                textwrap.dedent(
                    f"""\
                    version: 1
                    stack: bench{index}
                    jobs:
                      batch:
                        endpoint_id: {endpoint_id}
                        inputs_file: ./inputs.jsonl
                        parallel: {args.width}
                        output: ./out.jsonl
                    """
                )
            )
            cwd = os.getcwd()
            os.chdir(folder)
            code = [0]
            try:
                seconds = timed(
                    lambda: code.__setitem__(
                        0, run(["--sandbox", "apply", "-y", "-f", str(folder / "podctl.yaml")])
                    )
                )
            finally:
                os.chdir(cwd)
            rows = (folder / "out.jsonl").read_text().splitlines()
            assert code[0] == 0 and [json.loads(r) for r in rows] == [{"i": i} for i in range(n)]
            return seconds

        def one(i: int) -> object:
            return endpoint.run({"i": i}).output(timeout=60)

        def pool_once() -> float:
            with ThreadPoolExecutor(args.width) as pool:
                return timed(lambda: list(pool.map(one, range(n))))

        # alternated, twice each, so that a load change on the shared machine hits both
        pool_runs, podctl_runs = [], []
        for index in range(2):
            before = sdk_requests[0]
            pool_runs.append(pool_once())
            pool_requests = sdk_requests[0] - before
            before = podctl_requests[0]
            podctl_runs.append(podctl_once(index))
            requests_podctl = podctl_requests[0] - before
        podctl_s, pool_s = statistics.mean(podctl_runs), statistics.mean(pool_runs)
        before = sdk_requests[0]
        seq_s = timed(lambda: [one(i) for i in range(n)])
        seq_requests = sdk_requests[0] - before
    finally:
        control.reset(data_dir)
        control.stop(data_dir, kill_pods=True)
        shutil.rmtree(root, ignore_errors=True)

    def row(label: str, seconds: float, requests: int, ratio: str) -> list[object]:
        return [label, f"{seconds:.1f}", f"{n / seconds:.1f}", f"{requests / n:.2f}", ratio]

    body = table(
        ("run", "seconds", "inputs/s", "requests per input", "vs podctl"),
        [
            row(f"podctl apply, parallel: {args.width}", podctl_s, requests_podctl, "1.0x"),
            row("SDK run + output, sequential", seq_s, seq_requests, f"{seq_s / podctl_s:.1f}x"),
            row(
                f"SDK run + output, {args.width} threads",
                pool_s,
                pool_requests,
                f"{pool_s / podctl_s:.1f}x",
            ),
        ],
    )
    body += (
        f"\n\n{n} inputs; podctl and the thread pool alternated, twice each (the mean is shown: "
        f"podctl {podctl_runs[0]:.1f} s and {podctl_runs[1]:.1f} s, the pool "
        f"{pool_runs[0]:.1f} s and {pool_runs[1]:.1f} s); the sequential loop ran once, last. "
        "podctl's time includes its plan, its state and ledger writes (each "
        "request's write-ahead record is on disk before its /run) and writing out.jsonl in input "
        "order; each request costs one /run and its /status polls (the first after 0.5 s, "
        "then backing off to 10 s), so a trivial input costs 2 requests and waits at least "
        "0.5 s: with 32 in flight podctl tops out near 64 inputs/s. The SDK's `output()` asks "
        "/status at once (a trivial input is often done by then), then every 1 s: faster on "
        "trivial inputs, at more requests per input, with nothing recorded (a crash loses "
        "which inputs were sent and their results)."
    )
    print(body)
    if not args.quick:
        record(
            "serverless_batch",
            f"Serverless batch: {n} trivial inputs, podctl vs the official SDK",
            body,
            note=(
                "One private sandbox, one endpoint (echo handler, 4 warm workers, the sandbox's "
                "most); all runs in one process."
            ),
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
