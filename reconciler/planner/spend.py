"""budget.max_usd_total: what the stack's pods cost so far, and the plan once it is reached.

The total is RunPod's own billing (REST v2 `/v2/billing/pods`) summed over the stack's pods;
the workflow reads it, the planner only compares. Once reached, every pod of the stack is
stopped (budget.action: stop, the default) or terminated, and no job runs, until the budget is
raised. A terminated pod keeps its record, so its cost stays in the total and the next plan does
not create it again. `protect: true` pods are stopped instead of terminated.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from reconciler.model import Budget, BudgetAction, PodSpec, PodState

_DONE = {BudgetAction.STOP: "stopped", BudgetAction.TERMINATE: "terminated"}
_REASON = re.compile(r"(?:^|; )budget\.max_usd_total \$[0-9.]+ reached")


@dataclass(frozen=True)
class Spend:
    """What the stack's pods cost so far, as billing reported it (None: not read)."""

    total: float | None = None
    pods: int = 0  # how many of the stack's pods the total covers
    error: str = ""  # why it could not be read


def usd(value: float) -> str:
    """Amounts of the budget messages: `$5.00` (as max_usd_per_hour's)."""
    return f"${value:.2f}"


def total_reached(budget: Budget, spend: Spend | None) -> str:
    """`budget.max_usd_total $5.00 reached: the stack's pods cost $5.12 so far`, else ""."""
    limit = budget.max_usd_total
    if limit is None or spend is None or spend.total is None or spend.total < limit:
        return ""
    return (
        f"budget.max_usd_total {usd(limit)} reached: the stack's pods cost "
        f"{usd(spend.total)} so far"
    )


def reached_note(notes: tuple[str, ...]) -> str:
    """The plan's note saying max_usd_total is reached (its first clause), else ""."""
    for note in notes:
        if note.startswith("budget.max_usd_total $") and _REASON.search(note):
            return note.split(": every pod", 1)[0]
    return ""


def is_budget_end(reason: str) -> bool:
    """Whether a change's reason is a reached max_usd_total (the executor keeps the record)."""
    return _REASON.search(reason) is not None


def budget_state(spec: PodSpec, reached: str, action: BudgetAction) -> tuple[PodState, str]:
    """The state the budget leaves `spec` in once `reached` (a reason), protect applied."""
    if action is BudgetAction.TERMINATE and not spec.protect:
        return PodState.ABSENT, reached
    if action is BudgetAction.TERMINATE:
        return PodState.STOPPED, f"{reached} (protect: true, so stopped)"
    return PodState.STOPPED, reached


def spend_findings(
    budget: Budget, spend: Spend | None, *, ignore: bool
) -> tuple[list[str], list[str]]:
    """(notes, warnings) a plan shows about max_usd_total."""
    limit = budget.max_usd_total
    if limit is None or spend is None:
        return [], []
    if spend.total is None:
        why = spend.error or "RunPod's billing was not read"
        return [], [f"budget.max_usd_total is not checked this time: {why}"]
    reached = total_reached(budget, spend)
    action, done = budget.action.value, _DONE[budget.action]
    if reached and ignore:
        return [], [f"{reached}; --ignore-budget: this apply does not {action} the stack's pods"]
    if reached:
        kept = (
            " (a protect: true one is stopped)" if budget.action is BudgetAction.TERMINATE else ""
        )
        return [
            f"{reached}: every pod of the stack is {done}{kept} and no job runs; raise "
            "budget.max_usd_total to go on"
        ], []
    return [
        f"budget.max_usd_total: the stack's pods cost {usd(spend.total)} so far of "
        f"{usd(limit)} ({usd(limit - round(spend.total, 2))} left); once reached they are {done}"
    ], []
