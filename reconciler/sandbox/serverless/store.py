"""Endpoints and jobs on disk: `serverless.json` in the sandbox data dir, beside `state.json`.

A file of its own rather than a key in `state.json`: the pod store rewrites its whole file on
every pod change and its SSH supervisor watches those saves, while jobs change many times a
second and can carry outputs of megabytes; keeping them apart leaves the pod store untouched.
Written atomically (temp file, fsync, rename), as the pod state is.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from reconciler.sandbox import layout
from reconciler.sandbox.serverless.jobs import Job

STATE_FILE = "serverless.json"
DIR = "serverless"  # worker logs
VERSION = 1


def load(
    data_dir: Path,
) -> tuple[dict[str, dict[str, Any]], dict[str, Job], dict[str, dict[str, int]]]:
    try:
        data = json.loads((data_dir / STATE_FILE).read_text())
    except FileNotFoundError:
        return {}, {}, {}
    endpoints = {e["id"]: e for e in data.get("endpoints", [])}
    jobs = {j["id"]: Job.from_dict(j) for j in data.get("jobs", [])}
    return endpoints, jobs, dict(data.get("counts", {}))


def save(
    data_dir: Path,
    endpoints: dict[str, dict[str, Any]],
    jobs: dict[str, Job],
    counts: dict[str, Any],
) -> None:
    data = {
        "version": VERSION,
        "endpoints": list(endpoints.values()),
        "jobs": [j.to_dict() for j in jobs.values()],
        "counts": {k: dict(v) for k, v in counts.items()},
    }
    layout.atomic_write(data_dir / STATE_FILE, json.dumps(data, separators=(",", ":")).encode())


def worker_log(data_dir: Path, endpoint_id: str, worker_id: str) -> Path:
    """Where a worker's stdout and stderr go (the handler's prints)."""
    folder = data_dir / DIR / endpoint_id
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{worker_id}.log"
