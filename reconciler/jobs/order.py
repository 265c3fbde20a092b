"""The order jobs run in: `needs` first (the spec loader has refused cycles and unknown names)."""

from __future__ import annotations

from collections.abc import Mapping

from reconciler.model import JobSpec


def job_order(jobs: Mapping[str, JobSpec]) -> tuple[str, ...]:
    """Job names, each after everything it needs; ties by spec order (stable, deterministic)."""
    done: dict[str, None] = {}

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in done or name not in jobs or name in path:
            return
        for need in jobs[name].needs:
            visit(need, (*path, name))
        done[name] = None

    for name in jobs:
        visit(name, ())
    return tuple(done)
