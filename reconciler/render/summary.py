"""An ApplyResult as text (a line per failure, skip, landed GPU and job) or JSON."""

from __future__ import annotations

import json

from reconciler.plans import Action, ApplyResult, ChangeResult, Outcome
from reconciler.render import style
from reconciler.render.escape import terminal

_OUTCOME_COLOUR = {Outcome.DONE: "32", Outcome.FAILED: "31", Outcome.SKIPPED: "33"}


def _landed(r: ChangeResult) -> str:
    where = style.gpu_name(r.gpu_type_id or "?")
    if r.cloud is not None:
        where += f" ({r.cloud.value})"
    return f"landed on {where}" + (f", pod {r.pod_id}" if r.pod_id else "")


def summary_text(result: ApplyResult, color: bool) -> str:
    """`Apply complete: 2 done, 1 failed, 1 skipped.` then the lines that matter."""
    done, failed, skipped = (result.count(o) for o in Outcome)
    head = f"Apply complete: {done} done, {failed} failed, {skipped} skipped."
    lines = [style.paint(head, "1;32" if result.ok else "1;31", color)]
    for r in result.results:
        label = style.paint(f"{r.outcome.value:<7}", _OUTCOME_COLOUR[r.outcome], color)
        what = f"{r.address} ({r.action.value})"
        if r.outcome is Outcome.DONE:
            if r.action in (Action.CREATE, Action.REPLACE) and r.gpu_type_id:
                lines.append(f"  {label} {what}: {_landed(r)}")
            elif r.action is Action.RUN_JOB:
                lines.append(f"  {label} {r.address}: {r.message}")
        else:
            lines.append(f"  {label} {what}: {r.message or 'no reason given'}")
    return terminal("\n".join(lines) + "\n")


def summary_dict(result: ApplyResult) -> dict[str, object]:
    return {
        "stack": result.stack,
        "ok": result.ok,
        "counts": {o.value: result.count(o) for o in Outcome},
        "results": [
            {
                "address": r.address,
                "action": r.action.value,
                "outcome": r.outcome.value,
                "message": r.message,
                "pod_id": r.pod_id,
                "gpu_type_id": r.gpu_type_id,
                "cloud": r.cloud.value if r.cloud is not None else None,
                "duration_s": round(r.duration_s, 3),
            }
            for r in result.results
        ],
    }


def summary_json(result: ApplyResult) -> str:
    return json.dumps(summary_dict(result), indent=2)
