"""An ApplyResult as text (a line per change, the counts, the time and the cost) or JSON."""

from __future__ import annotations

import json

from reconciler.plans import Action, ApplyResult, Billing, Change, ChangeResult, Outcome, Plan
from reconciler.render import style
from reconciler.textsafe import terminal

_OUTCOME_COLOUR = {Outcome.DONE: "32", Outcome.FAILED: "31", Outcome.SKIPPED: "33"}


def _landed(r: ChangeResult) -> str:
    where = style.gpu_name(r.gpu_type_id or "?")
    if r.cloud is not None:
        where += f" ({r.cloud.value})"
    return f"landed on {where}" + (f", pod {r.pod_id}" if r.pod_id else "")


_PAST = {
    Action.CREATE: "created",
    Action.REPLACE: "replaced",
    Action.RESUME: "resumed",
    Action.UPDATE: "updated",
    Action.STOP: "stopped",
    Action.TERMINATE: "terminated",
    Action.RUN_JOB: "ran",
    Action.DELETE: "deleted",
}
_COUNTED_AS = {**_PAST, Action.RUN_JOB: "jobs run"}


def _resume_updates(plan: Plan | None) -> set[str]:
    """Pods whose resume also updates them in place (counted as an update too)."""
    if plan is None:
        return set()
    return {
        c.address
        for c in plan.changes
        if c.action is Action.RESUME and any(not f.forces_replace for f in c.fields)
    }


def _what(r: ChangeResult, updates: set[str]) -> str:
    kind = r.action.value
    if r.action is Action.RESUME and r.address in updates:
        kind = "resume + update"
    return f"{r.address} ({kind})"


def _done_text(r: ChangeResult, updates: set[str]) -> str:
    if r.action in (Action.CREATE, Action.REPLACE) and r.gpu_type_id:
        return _landed(r)
    if r.action is Action.RUN_JOB or "(on_failure: " in r.message:
        return r.message  # a job's outcome, or why a failed job's pod was stopped or ended
    text = _PAST[r.action]
    if r.action is Action.RESUME and r.address in updates:
        text += " and updated in place"
    return text + (f" {r.pod_id}" if r.pod_id else "")


def _stops(plan: Plan | None) -> dict[str, Change]:
    """The plan's stop changes by address: what each stopped pod bills once stopped."""
    if plan is None:
        return {}
    return {c.address: c for c in plan.changes if c.action is Action.STOP}


def action_counts(result: ApplyResult, plan: Plan | None) -> dict[Action, int]:
    """Done changes by action, in the plans' order; a resume that updates counts as both."""
    updates = _resume_updates(plan)
    counts: dict[Action, int] = {}
    for a in (*style.COUNTED, Action.DELETE):
        n = sum(1 for r in result.results if r.action is a and r.outcome is Outcome.DONE)
        if a is Action.UPDATE:
            n += sum(
                1
                for r in result.results
                if r.address in updates and r.action is Action.RESUME and r.outcome is Outcome.DONE
            )
        if n:
            counts[a] = n
    return counts


def costs_after(result: ApplyResult, plan: Plan) -> tuple[float, float]:
    """($/h before, $/h after) of the stack: the plan's, with the changes that did not happen
    left at their cost before."""
    after = plan.total_cost_after
    done = {(r.address, r.action) for r in result.results if r.outcome is Outcome.DONE}
    for c in plan.actionable:
        if c.action is Action.RUN_JOB or (c.address, c.action) in done:
            continue
        if c.cost_before is not None and c.running_cost_after is not None:
            after += c.cost_before - c.running_cost_after
    return plan.total_cost_before, round(max(after, 0.0), 4)


def summary_text(
    result: ApplyResult,
    color: bool,
    *,
    plan: Plan | None = None,
    took_s: float | None = None,
) -> str:
    """`Apply complete in 1m05s: 2 done, 1 failed, 1 skipped.`, a line per change, the cost."""
    from reconciler.render.progress import elapsed

    done, failed, skipped = (result.count(o) for o in Outcome)
    head = f"Apply complete: {done} done, {failed} failed, {skipped} skipped."
    lines = [style.paint(head, "1;32" if result.ok else "1;31", color)]
    updates = _resume_updates(plan)
    stops = _stops(plan)
    for r in result.results:
        label = style.paint(f"{r.outcome.value:<7}", _OUTCOME_COLOUR[r.outcome], color)
        what = _what(r, updates)
        if r.outcome is Outcome.DONE:
            text = _done_text(r, updates)
            stop = stops.get(r.address) if r.action is Action.STOP else None
            if stop is not None:
                text += f"; now {style.cost_after(stop)}"
            lines.append(f"  {label} {what}: {text}")
        else:
            lines.append(f"  {label} {what}: {r.message or 'no reason given'}")
    if not result.ok:
        lines += left_running_lines(result.left_running)
    kinds = action_counts(result, plan)
    if kinds:
        lines.append("Changed: " + ", ".join(f"{n} {_COUNTED_AS[a]}" for a, n in kinds.items()))
    tail = [f"took {elapsed(took_s)}"] if took_s is not None else []
    if plan is not None:
        before, after = costs_after(result, plan)
        tail.append(
            f"cost {style.per_hour(before)} before, {style.per_hour(after)} after "
            f"({style.delta(before, after)})"
        )
    if tail:
        text = "; ".join(tail)
        lines.append(text[0].upper() + text[1:] + ".")
    return terminal("\n".join(lines) + "\n")


def left_running_lines(pods: tuple[Billing, ...]) -> list[str]:
    """`Left running (billing): ...`, a line per pod with its $/h, and the total."""
    if not pods:
        return ["Left running: none of the stack's pods bills for GPUs."]
    lines = ["Left running (billing):"]
    lines += [f"  {p.address} ({p.pod_id}): {_cost(p.cost_per_hr)}" for p in pods]
    known = [p.cost_per_hr for p in pods if p.cost_per_hr is not None]
    lines.append(f"  total: {style.per_hour(sum(known))}")
    return lines


def _cost(cost: float | None) -> str:
    return "$?/h" if cost is None else style.per_hour(cost)


def summary_dict(
    result: ApplyResult, plan: Plan | None = None, took_s: float | None = None
) -> dict[str, object]:
    stops = _stops(plan) if plan is not None else {}
    data: dict[str, object] = {
        "stack": result.stack,
        "ok": result.ok,
        "counts": {o.value: result.count(o) for o in Outcome},
        "changed": {a.value: n for a, n in action_counts(result, plan).items()},
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
                "exit_code": r.exit_code,
                # a done stop: what the stopped pod bills ($/h, its volume)
                "storage_cost_per_hr": (
                    stops[r.address].cost_after
                    if r.address in stops and r.outcome is Outcome.DONE
                    else None
                ),
            }
            for r in result.results
        ],
        "left_running": [
            {"address": p.address, "pod_id": p.pod_id, "cost_per_hr": p.cost_per_hr}
            for p in result.left_running
        ],
    }
    if took_s is not None:
        data["duration_s"] = round(took_s, 3)
    if plan is not None:
        before, after = costs_after(result, plan)
        data["cost_per_hr_before"], data["cost_per_hr_after"] = before, after
    return data


def summary_json(result: ApplyResult) -> str:
    return json.dumps(summary_dict(result), indent=2)
