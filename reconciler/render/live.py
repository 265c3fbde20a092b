"""The live view's block: a line per change in flight (phase, elapsed, last log line, bytes)."""

from __future__ import annotations

from reconciler.model import Address
from reconciler.render.progress import Tracker, elapsed, size
from reconciler.render.style import per_hour
from reconciler.textsafe import shown


def _fit(text: str, width: int) -> str:
    """One screen line: never wider than the terminal, or the redraw miscounts its lines."""
    return text if len(text) <= width else text[: max(1, width - 1)] + "…"


def _is_pod(address: str) -> bool:
    parsed = Address.parse(address)
    return parsed is not None and parsed.kind == "pod"


def _idle_pods(tracker: Tracker) -> dict[str, list[str]]:
    """Pods up and ready whose waiting jobs wait only on jobs elsewhere: they bill for nothing
    meanwhile. pod address -> the jobs they wait for."""
    steps = tracker.steps
    idle: dict[str, list[str]] = {}
    for s in steps.values():
        if s.ended or not s.waits_for:
            continue
        pods = [w for w in s.waits_for if _is_pod(w) and w in steps]
        left = [w for w in s.waits_for if w not in steps or not steps[w].ended]
        if not pods or not left or any(_is_pod(w) for w in left):
            continue
        for pod in pods:
            if steps[pod].ended == "done":
                idle.setdefault(pod, [])
                idle[pod] += [w for w in left if w not in idle[pod]]
    return idle


def live_block(tracker: Tracker, width: int, cost_per_hr: float | None = None) -> list[str]:
    """What runs now, what waits on what, and the cost; already escaped for a terminal."""
    running = [s for s in tracker.steps.values() if not s.ended]
    if not running:
        return []
    steps = tracker.steps
    idle = _idle_pods(tracker)
    pad = max(len(s.address) for s in [*running, *(steps[p] for p in idle)])
    lines = []
    for pod, upstream in idle.items():
        text = f"{pod:<{pad}}  idle, billing, while {', '.join(upstream)} runs"
        lines.append(_fit(shown(text), width))
    for s in running:
        left = [w for w in s.waits_for if w not in steps or not steps[w].ended]
        if left:
            text = f"{s.address:<{pad}}  waits for {', '.join(left)}"
        else:
            text = f"{s.address:<{pad}}  {s.phase} [{elapsed(s.elapsed_s)} elapsed]"
            if s.bytes:
                text += f"  {size(s.bytes)}"
            if s.last_line:
                text += f"  | {s.last_line}"
        lines.append(_fit(shown(text), width))
    done = sum(1 for s in tracker.steps.values() if s.ended)
    tail = f"{done} of {len(tracker.steps)} done"
    if cost_per_hr is not None:
        tail += f"; the stack costs {per_hour(cost_per_hr)}"
    lines.append(_fit(tail, width))
    return lines
