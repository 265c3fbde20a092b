"""budget.max_usd_per_hour: a plan that would leave the stack costing more is an error."""

from __future__ import annotations

from collections.abc import Mapping

from reconciler.model import Budget

FIX = (
    "lower the pods' GPUs or counts, stop some, raise budget.max_usd_per_hour, or run "
    "`podctl apply --ignore-budget` to go past it for one apply"
)


def _pods(costs: Mapping[str, float]) -> str:
    return ", ".join(f"{a} ${c:.2f}/h" for a, c in sorted(costs.items()) if c > 0) or "none"


def budget_findings(
    budget: Budget, before: float, after: float, costs: Mapping[str, float], *, ignore: bool
) -> tuple[list[str], list[str]]:
    """(errors, warnings) of the $/h ceiling for a plan costing `before` -> `after` per hour.

    Only a plan that raises the cost past the ceiling is refused: one that leaves it as it is
    or lowers it (a stop, a smaller GPU) moves toward the budget and goes ahead with a warning.
    `costs` is $/h per pod address after the plan.
    """
    limit = budget.max_usd_per_hour
    if limit is None or after <= limit:
        return [], []
    over = (
        f"the stack would cost ${after:.2f}/h after this plan, over budget.max_usd_per_hour "
        f"${limit:.2f}/h: {_pods(costs)}"
    )
    if ignore:
        return [], [f"{over}; --ignore-budget: this apply goes past it"]
    if after > before:
        return [f"{over}; {FIX}"], []
    return [], [f"{over} (already so before this plan, which does not raise it)"]
