"""A Plan as markdown for a pull-request comment: a table, then per-change details (no ANSI)."""

from __future__ import annotations

from reconciler.model import Address
from reconciler.plans import Action, Change, Plan
from reconciler.render import style
from reconciler.render.plan_text import NO_CHANGES, field_line
from reconciler.textsafe import shown


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _paths(change: Change) -> str:
    return ", ".join(f.path for f in change.fields)


def plan_markdown(plan: Plan) -> str:
    """Summary table of the actionable changes, totals, and a collapsible diff per change."""
    lines = [f"### podctl plan: stack `{plan.stack}`", ""]
    if plan.targets:
        lines += [f"Targets: {', '.join(f'`{t}`' for t in plan.targets)}", ""]
    if plan.errors:
        lines += [f"- :x: **Error:** {_cell(e)}" for e in plan.errors]
        lines += ["", f"**{len(plan.errors)} error(s): apply refuses this plan.**", ""]
    if not plan.has_changes and not plan.waiting:
        lines += [NO_CHANGES, ""]
    elif not plan.has_changes:
        lines += [f"- `{c.address}`: waits until it runs: {_cell(_paths(c))}" for c in plan.waiting]
        lines += [""]
    else:
        lines += [
            "| | Address | Action | Reason | $/h before | $/h after |",
            "|---|---|---|---|---:|---:|",
        ]
        for c in plan.actionable:
            before, after = style.money(c.cost_before), style.cost_after(c, hourly=False)
            if c.action is Action.RUN_JOB or style.is_endpoint(c):
                before, after = "", ""  # a job costs what its pod costs; an endpoint, its use
            what = c.address
            if c.action is Action.RUN_JOB:
                target = c.pod if "." in c.pod else Address.pod(c.pod)  # endpoint jobs: theirs
                what = f"{c.address}` on `{target}"
            lines.append(
                f"| `{_cell(style.SYMBOLS[c.action])}` | `{what}` | {c.action.value} | "
                f"{_cell(c.reason)} | {before} | {after} |"
            )
        lines += ["", f"**Plan:** {style.counts([c.action for c in plan.changes])}.", ""]
    cost = (
        f"**Cost:** {style.per_hour(plan.total_cost_before)} → "
        f"{style.per_hour(plan.total_cost_after)} "
        f"({style.delta(plan.total_cost_before, plan.total_cost_after)})"
    )
    cost += style.unknown_prices(plan)
    if plan.stopped_storage_cost_after:
        cost += f"; stopped storage {style.storage(plan.stopped_storage_cost_after)}"
    lines += [cost, ""]
    for w in plan.warnings:
        lines.append(f"- :warning: {_cell(w)}")
    for n in plan.notes:
        lines.append(f"- Note: {_cell(n)}")
    if plan.warnings or plan.notes:
        lines.append("")
    for c in plan.actionable:
        body = [" ".join(field_line(f)) for f in c.fields]
        body += [f"! {w}" for w in c.warnings]
        if c.placements:
            body.append(f"{style.machine(c)}: {style.chain(c.placements)}")
        if not body:
            continue
        lines += [
            "<details>",
            f"<summary><code>{c.address}</code>: {c.action.value}</summary>",
            "",
            "```diff",
            *body,
            "```",
            "",
            "</details>",
            "",
        ]
    return shown("\n".join(lines).rstrip("\n") + "\n")
