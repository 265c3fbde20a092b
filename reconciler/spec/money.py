"""Warnings for money settings a spec asks for that podctl cannot hold on its own."""

from __future__ import annotations

from collections.abc import Sequence

from reconciler.errors import Problem
from reconciler.spec.stack import StackSource, effective_pod

SSH_PORT = "22/tcp"


def _no_watchdog(name: str, timed: Sequence[str]) -> str:
    head = f"pod {name!r} has no 22/tcp in ports, so podctl cannot arm its on-pod watchdog: "
    parts = []
    if "max_lifetime" in timed:
        parts.append("max_lifetime is enforced only while `podctl reconcile` (or an apply) runs")
    if "idle_timeout" in timed:
        parts.append("idle_timeout is never enforced (only the watchdog reads the GPUs)")
    return head + "; ".join(parts)


def check_money(stack: StackSource) -> list[Problem]:
    """A warning per pod whose max_lifetime or idle_timeout has no watchdog to hold it."""
    problems = []
    for name, pod in stack.pods.items():
        if not isinstance(pod.value, dict):
            continue
        fields = effective_pod(stack, pod)
        ports = fields.get("ports")
        values = ports.value if ports is not None else [SSH_PORT]
        if isinstance(values, list) and any(
            isinstance(p, str) and p.replace(" ", "") == SSH_PORT for p in values
        ):
            continue
        timed = [f for f in ("max_lifetime", "idle_timeout") if f in fields]
        if not timed:
            continue
        problems.append(
            pod.doc.problem(
                (*pod.path, "ports") if ports is not None and ports.doc is pod.doc else pod.path,
                _no_watchdog(name, timed),
                "add 22/tcp to ports, or keep `podctl reconcile` running",
                at_key=True,
                severity="warning",
            )
        )
    return problems
