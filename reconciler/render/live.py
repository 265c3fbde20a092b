"""The live view's block: a line per change in flight (phase, elapsed, last log line, bytes)."""

from __future__ import annotations

from reconciler.render.escape import shown
from reconciler.render.progress import Tracker, elapsed, size
from reconciler.render.style import per_hour


def _fit(text: str, width: int) -> str:
    """One screen line: never wider than the terminal, or the redraw miscounts its lines."""
    return text if len(text) <= width else text[: max(1, width - 1)] + "…"


def live_block(tracker: Tracker, width: int, cost_per_hr: float | None = None) -> list[str]:
    """What runs now, what waits on what, and the cost; already escaped for a terminal."""
    running = [s for s in tracker.steps.values() if not s.ended]
    if not running:
        return []
    pad = max(len(s.address) for s in running)
    lines = []
    for s in running:
        if s.waits_for:
            text = f"{s.address:<{pad}}  waits for {', '.join(s.waits_for)}"
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
