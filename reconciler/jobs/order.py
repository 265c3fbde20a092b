"""The order jobs run in: `needs` first (the spec loader has refused cycles and unknown names)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

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


def dependants(jobs: Mapping[str, JobSpec], names: Iterable[str]) -> frozenset[str]:
    """Every job that needs one of `names`, directly or through others (not `names` itself)."""
    found: set[str] = set()
    frontier = set(names)
    while frontier:
        nxt = {n for n, j in jobs.items() if n not in found and any(d in frontier for d in j.needs)}
        nxt -= set(names)
        found |= nxt
        frontier = nxt
    return frozenset(found)
