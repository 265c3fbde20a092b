"""Shared look of plans and summaries: symbols, ANSI colour, money and value formatting."""

from __future__ import annotations

import json

from reconciler.plans import SENSITIVE, Action, Change, Placement, Plan
from reconciler.textsafe import CSI_MARK

SYMBOLS = {
    Action.CREATE: "+",
    Action.UPDATE: "~",
    Action.REPLACE: "-/+",
    Action.TERMINATE: "-",
    Action.RESUME: ">",
    Action.STOP: "||",
    Action.RUN_JOB: "*",
    Action.NOOP: "=",
    Action.DELETE: "-",
}
_COLOURS = {
    Action.CREATE: "32",  # green
    Action.UPDATE: "33",  # yellow
    Action.REPLACE: "35",  # magenta
    Action.TERMINATE: "31",  # red
    Action.RESUME: "36",  # cyan
    Action.STOP: "33",
    Action.RUN_JOB: "34",
    Action.NOOP: "2",
    Action.DELETE: "31",
}
# the order plan summaries count actions in
COUNTED = (
    Action.CREATE,
    Action.UPDATE,
    Action.REPLACE,
    Action.RESUME,
    Action.STOP,
    Action.TERMINATE,
    Action.RUN_JOB,
)
HOURS_PER_MONTH = 730


def paint(text: str, code: str, color: bool) -> str:
    """`text` wrapped in an ANSI SGR code when colour is on.

    The code is marked, not written: `escape.terminal` escapes the whole output and only then
    makes the marks real, so content can never bring its own escape sequence.
    """
    return f"{CSI_MARK}{code}m{text}{CSI_MARK}0m" if color else text


def action_colour(action: Action) -> str:
    return _COLOURS[action]


def money(value: float | None) -> str:
    """Every amount podctl prints: `$0.69`, and a third decimal only when it has one (`$0.165`,
    a spot bid)."""
    if value is None:
        return "$?"
    return f"${value:.2f}" if round(value, 2) == round(value, 3) else f"${value:.3f}"


def per_hour(value: float | None) -> str:
    return f"{money(value)}/h"


def delta(before: float, after: float) -> str:
    diff = round(after - before, 4)
    if diff == 0:
        return "no change"
    return f"{'+' if diff > 0 else '-'}${abs(diff):.2f}/h"


def storage(value: float) -> str:
    """Stopped-volume cost: small per hour, so with its monthly figure."""
    return f"${value:.4f}/h (${value * HOURS_PER_MONTH:.2f}/month)"


def cost_after(change: Change, *, hourly: bool = True) -> str:
    """A change's $/h once applied; a stop's is what the stopped pod bills: its volume disk."""
    if change.action is Action.STOP and change.cost_after is not None:
        if not change.cost_after:
            return f"{per_hour(0.0) if hourly else money(0.0)} (stopped, no volume disk)"
        value = change.cost_after
        head = f"${value:.4f}/h" if hourly else f"${value:.4f}"
        return f"{head} (${value * HOURS_PER_MONTH:.2f}/month, the stopped pod's volume)"
    return per_hour(change.cost_after) if hourly else money(change.cost_after)


def value(v: object) -> str:
    """A field value as the plan prints it: JSON, except the sensitive marker."""
    if v == SENSITIVE:
        return SENSITIVE
    return json.dumps(v)


def gpu_name(gpu_type_id: str) -> str:
    """`NVIDIA GeForce RTX 4090` as `RTX 4090`."""
    return gpu_type_id.removeprefix("NVIDIA ").removeprefix("GeForce ")


def machine(change: Change) -> str:
    """What the chain places: `cpu` for a CPU pod's flavor (its cpu.* fields), else `gpu`."""
    return "cpu" if any(f.path.startswith("cpu.") for f in change.fields) else "gpu"


def chain(placements: tuple[Placement, ...]) -> str:
    """`RTX 4090 (secure $0.69/h) -> RTX A6000 (secure $0.49/h)`."""
    return " -> ".join(
        f"{gpu_name(p.gpu_type_id)} ({p.cloud.value} {per_hour(p.price_per_hr)})"
        for p in placements
    )


def counts(actions: list[Action]) -> str:
    """`1 to create, 0 to update, ...` for every counted action (run-job only when present)."""
    parts = [f"{actions.count(a)} to {a.value}" for a in COUNTED if a is not Action.RUN_JOB]
    if Action.DELETE in actions:  # endpoints (only when the plan deletes one: older plans
        parts.append(f"{actions.count(Action.DELETE)} to delete")  # read as they did)
    if Action.RUN_JOB in actions:
        parts.append(f"{actions.count(Action.RUN_JOB)} job(s) to run")
    return ", ".join(parts)


def is_endpoint(change: Change) -> bool:
    """A serverless endpoint's change: billed by use, so it has no $/h of its own."""
    return change.address.startswith("endpoint.")


def unknown_prices(plan: Plan) -> str:
    """`; price unknown for pod.a, pod.b` when some change's cost could not be priced."""
    unknown = [
        c.address
        for c in plan.changes
        if c.action is not Action.RUN_JOB
        and not is_endpoint(c)
        and (c.cost_after is None or c.cost_before is None)
    ]
    return f"; price unknown for {', '.join(unknown)}" if unknown else ""
