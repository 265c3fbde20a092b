"""Requests per command on each API: plan, apply (create, update, stop, resume), destroy.

Run: `.venv/bin/python -m benchmarks.api_requests`. Prints a table and rewrites the
"api_requests" section of BENCHMARKS.md. podctl runs in-process against a private sandbox
(start delay 0), once with `--api graphql` and once with `--api rest`; every request is counted
by operation at the client's transport (`RunPodClient._post`, `RestClient._round_trip`), so the
counts are exact, not timings.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks.report import record, table
from reconciler.backends.runpod_graphql.client import RunPodClient
from reconciler.backends.runpod_rest import RestClient
from reconciler.cli import run
from reconciler.sandbox import control

SPEC = """\
version: 1
stack: bench
pods:
  box:
    image: img:1
    gpu: {{type: [NVIDIA RTX A4000, NVIDIA RTX A5000], count: 1}}
    ports: [8888/http]
    env: {{MODE: "{mode}"}}
    state: {state}
"""

# (label, command, spec mode, spec state)
STEPS: tuple[tuple[str, str, str, str], ...] = (
    ("plan (nothing exists yet)", "plan", "a", "running"),
    ("apply: create", "apply", "a", "running"),
    ("plan (converged)", "plan", "a", "running"),
    ("apply (converged: no change)", "apply", "a", "running"),
    ("apply: in-place update (env)", "apply", "b", "running"),
    ("apply: stop", "apply", "b", "stopped"),
    ("apply: resume", "apply", "b", "running"),
    ("destroy", "destroy", "b", "running"),
)


@contextlib.contextmanager
def counting(counts: Counter[str]) -> Iterator[None]:
    """Count every request either client sends, by operation name."""
    post, trip = RunPodClient._post, RestClient._round_trip

    async def graphql(
        self: RunPodClient, document: str, variables: Any, operation: str, *rest: Any
    ) -> Any:
        counts[operation] += 1
        return await post(self, document, variables, operation, *rest)

    async def rest(
        self: RestClient, method: str, url: str, body: object, operation: str, ends: float
    ) -> Any:
        counts[operation] += 1
        return await trip(self, method, url, body, operation, ends)

    setattr(RunPodClient, "_post", graphql)  # noqa: B010 (a counting wrapper, restored below)
    setattr(RestClient, "_round_trip", rest)  # noqa: B010
    try:
        yield
    finally:
        setattr(RunPodClient, "_post", post)  # noqa: B010
        setattr(RestClient, "_round_trip", trip)  # noqa: B010


def measure(api: str, data_dir: Path, work: Path) -> list[Counter[str]]:
    """Each step's requests by operation, on one API, from an empty account."""
    control.reset(data_dir)
    folder = work / api
    folder.mkdir()
    spec = folder / "podctl.yaml"
    results: list[Counter[str]] = []
    for label, command, mode, state in STEPS:
        spec.write_text(SPEC.format(mode=mode, state=state))
        counts: Counter[str] = Counter()
        argv = ["--api", api, command, "-f", str(spec), "--sandbox"]
        if command != "plan":
            argv.insert(3, "-y")
        out = io.StringIO()
        with counting(counts), contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            code = run(argv)
        if code != 0:
            raise SystemExit(f"{api}: {label}: podctl exited {code}:\n{out.getvalue()}")
        results.append(counts)
    return results


def cell(counts: Counter[str]) -> str:
    ops = ", ".join(f"{op} {n}" for op, n in sorted(counts.items()))
    return f"{sum(counts.values())} ({ops})" if counts else "0"


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="podctl-bench-api-") as tmp:
        base = Path(tmp)
        data_dir = base / "sandbox"
        os.environ["PODCTL_SANDBOX_DIR"] = str(data_dir)
        os.environ["PODCTL_POLL_INTERVAL"] = "0.05"
        os.environ["HOME"] = str(base / "home")
        for name in ("RUNPOD_API_KEY", "RUNPOD_API_BASE_URL", "PODCTL_API"):
            os.environ.pop(name, None)
        control.start_detached(data_dir, start_delay=0)
        try:
            measured = {api: measure(api, data_dir, base) for api in ("graphql", "rest")}
        finally:
            control.reset(data_dir)
            control.stop(data_dir)
    rows = [
        [label, cell(g), cell(r)]
        for (label, *_), g, r in zip(STEPS, measured["graphql"], measured["rest"], strict=True)
    ]
    body = table(("command (one pod)", "--api graphql: requests", "--api rest: requests"), rows)
    print(body)
    record(
        "api_requests",
        "Requests per command, GraphQL vs REST v2",
        body,
        note=(
            "One pod, counted by operation at each client's transport against the sandbox "
            "(start delay 0, so a readiness poll is rarely needed); exact counts, not timings. "
            "REST v2 reads the GPU catalogue once per cloud (GraphQL: both clouds in one query), "
            "and its create answer has no runtime yet, so apply polls the list once more."
        ),
    )


if __name__ == "__main__":
    main()
