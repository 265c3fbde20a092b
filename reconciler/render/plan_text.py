"""A Plan as Terraform-like text for a terminal (ANSI colour only when asked)."""

from __future__ import annotations

from reconciler.model import Address
from reconciler.plans import Action, Change, FieldChange, Plan
from reconciler.render import style
from reconciler.textsafe import terminal

NO_CHANGES = "No changes. The stack matches the spec."
NOTHING_NOW = "Nothing to apply now: the changes above wait until their pod runs again."
INDENT = "    "


def field_line(f: FieldChange) -> tuple[str, str]:
    """(symbol, text) of one field diff line."""
    if f.before is None:
        sym, text = "+", f"{f.path}: {style.value(f.after)}"
    elif f.after is None:
        sym, text = "-", f"{f.path}: {style.value(f.before)}"
    else:
        sym, text = "~", f"{f.path}: {style.value(f.before)} -> {style.value(f.after)}"
    if f.drift:
        text += "  (changed outside podctl)"
    if f.forces_replace:
        text += "  # forces replacement"
    return sym, text


def _field_colour(sym: str) -> str:
    return {"+": "32", "-": "31", "~": "33"}[sym]


def change_lines(change: Change, color: bool) -> list[str]:
    """The block of one change: head line, fields, warnings, GPU chain, cost."""
    head = f"{style.SYMBOLS[change.action]} {change.action.value} {change.address}"
    if change.is_noop and change.fields:
        head = f"{style.SYMBOLS[Action.UPDATE]} waiting {change.address}"
    if change.action is Action.RUN_JOB:
        head += f" on {change.pod if '.' in change.pod else Address.pod(change.pod)}"
    if change.pod_id and change.pod_id not in change.address:
        head += f" ({change.pod_id})"
    lines = [
        style.paint(head, "1;" + style.action_colour(change.action), color) + f": {change.reason}"
    ]
    for f in change.fields:
        sym, text = field_line(f)
        lines.append(INDENT + style.paint(sym, _field_colour(sym), color) + " " + text)
    for w in change.warnings:
        lines.append(INDENT + style.paint("! " + w, "33", color))
    if change.placements:
        lines.append(f"{INDENT}{style.machine(change)}: {style.chain(change.placements)}")
    if change.action not in (Action.NOOP, Action.RUN_JOB) and not style.is_endpoint(change):
        lines.append(
            f"{INDENT}cost: {style.per_hour(change.cost_before)} -> {style.cost_after(change)}"
        )
    return lines


def plan_text(plan: Plan, color: bool, *, show_noops: bool = False) -> str:
    """The whole plan: header, a block per change, warnings, totals and errors."""
    header = f"Plan for stack {plan.stack}"
    if plan.lineage:
        header += f" (lockfile {plan.lineage}, serial {plan.serial})"
    lines = [style.paint(header, "1", color)]
    if plan.targets:
        lines.append(f"Targets: {', '.join(plan.targets)}")
    lines.append("")
    shown = plan.changes if show_noops else plan.actionable + plan.waiting
    for change in sorted(shown, key=plan.changes.index):
        lines += change_lines(change, color)
        lines.append("")
    if not plan.has_changes and not plan.waiting:
        lines += [NO_CHANGES, ""]
    elif not plan.has_changes:
        lines += [NOTHING_NOW, ""]
    for note in plan.notes:
        lines.append(f"Note: {note}")
    for w in plan.warnings:
        lines.append(style.paint("Warning: ", "1;33", color) + w)
    if plan.notes or plan.warnings:
        lines.append("")
    waiting = f"; {len(plan.waiting)} waiting for a stopped pod to run" if plan.waiting else ""
    if plan.has_changes or plan.waiting:
        lines.append(f"Plan: {style.counts([c.action for c in plan.changes])}{waiting}.")
    cost = (
        f"Cost: {style.per_hour(plan.total_cost_before)} -> "
        f"{style.per_hour(plan.total_cost_after)} "
        f"({style.delta(plan.total_cost_before, plan.total_cost_after)})"
    )
    cost += style.unknown_prices(plan)
    if plan.stopped_storage_cost_after:
        cost += f"; stopped storage {style.storage(plan.stopped_storage_cost_after)}"
    lines.append(cost)
    if plan.errors:
        lines.append("")
        lines += [style.paint("Error: ", "1;31", color) + e for e in plan.errors]
        lines.append(f"{len(plan.errors)} error(s): apply refuses this plan.")
    return terminal("\n".join(lines) + "\n")
