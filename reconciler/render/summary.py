"""An ApplyResult as text (a line per failure, skip, landed GPU and job) or JSON."""

from __future__ import annotations

import json

from reconciler.plans import Action, ApplyResult, Billing, ChangeResult, Outcome
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
            elif r.action is Action.RUN_JOB or "(on_failure: " in r.message:
                lines.append(f"  {label} {r.address}: {r.message}")
        else:
            lines.append(f"  {label} {what}: {r.message or 'no reason given'}")
    if not result.ok:
        lines += left_running_lines(result.left_running)
    return terminal("\n".join(lines) + "\n")


def left_running_lines(pods: tuple[Billing, ...]) -> list[str]:
    """`Left running (billing): ...`, a line per pod with its $/h, and the total."""
    if not pods:
        return ["Left running: none of the stack's pods bills for GPUs."]
    lines = ["Left running (billing):"]
    lines += [f"  {p.address} ({p.pod_id}): {_cost(p.cost_per_hr)}" for p in pods]
    known = [p.cost_per_hr for p in pods if p.cost_per_hr is not None]
    lines.append(f"  total: ${sum(known):.2f}/h")
    return lines


def _cost(cost: float | None) -> str:
    return "$?/h" if cost is None else f"${cost:.2f}/h"


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
        "left_running": [
            {"address": p.address, "pod_id": p.pod_id, "cost_per_hr": p.cost_per_hr}
            for p in result.left_running
        ],
    }


def summary_json(result: ApplyResult) -> str:
    return json.dumps(summary_dict(result), indent=2)
