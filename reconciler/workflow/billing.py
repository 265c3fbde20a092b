"""What the stack's pods cost so far (budget.max_usd_total), read from RunPod's REST v2 billing.

Billing exists on REST v2 only (`/v2/billing/pods`, runpod-rest-v2.md 11); it takes the same API
key as GraphQL (runpod-rest-v2.md 1), so on `--api graphql` podctl asks REST v2 for this one
read. The stack's pods are those it knows of: the pods with its markers, the lockfile's pod
records (a pod ended by the budget or its lifetime keeps its record) and the pods its job ledger
names. A pod terminated and forgotten before is no longer counted.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from reconciler.errors import PodctlError
from reconciler.model import ActualState, DesiredState, Lockfile, created_marker
from reconciler.planner.spend import Spend
from reconciler.workflow.context import Connection

if TYPE_CHECKING:
    from reconciler.workflow.context import ApiClient


def stack_pod_ids(stack: str, actual: ActualState, recorded: Lockfile) -> set[str]:
    """Every pod id the stack is known to have had: marked pods, records, the job ledger."""
    ids = {p.pod_id for p in actual.of_stack(stack)}
    ids |= {r.pod_id for r in recorded.pods.values()}
    ids |= {j.pod_id for j in recorded.jobs.values() if j.pod_id}
    return ids


def earliest(stack: str, actual: ActualState, recorded: Lockfile) -> datetime | None:
    """The first creation the stack knows of (where billing's window starts); None if none."""
    times: Iterable[datetime | None] = [
        *(r.created_at for r in recorded.pods.values()),
        *(j.started_at for j in recorded.jobs.values()),
        *(created_marker(p.env) for p in actual.of_stack(stack)),
    ]
    known = [t for t in times if t is not None]
    return min(known, default=None)


async def read_spend(
    connection: Connection,
    client: ApiClient,
    desired: DesiredState,
    actual: ActualState,
    recorded: Lockfile,
) -> Spend | None:
    """The stack's total so far, or None when the spec sets no budget.max_usd_total.

    A failed read is a Spend with `error` set (the plan warns), never an exception: the other
    money guards (max_usd_per_hour, lifetimes) still hold meanwhile.
    """
    if desired.budget.max_usd_total is None:
        return None
    ids = stack_pod_ids(desired.stack, actual, recorded)
    if not ids:
        return Spend(total=0.0, pods=0)
    since = earliest(desired.stack, actual, recorded)
    try:
        opener = connection.ports.billing if connection.ports is not None else None
        if opener is None:
            raise PodctlError("this podctl was wired without RunPod's billing")
        async with opener(connection, client) as billing:
            costs = await billing.pod_costs(since)
    except PodctlError as exc:
        return Spend(error=f"reading RunPod's billing (REST v2 /v2/billing/pods) failed: {exc}")
    mine = {pod_id: usd for pod_id, usd in costs.items() if pod_id in ids}
    return Spend(total=round(sum(mine.values()), 6), pods=len(mine))


@dataclass(frozen=True)
class BudgetStatus:
    """The budget line of `podctl status`: the total so far against max_usd_total."""

    max_usd_total: float
    action: str  # stop | terminate
    spent: float | None  # None: billing could not be read (`error` says why)
    pods: int
    error: str = ""

    @property
    def reached(self) -> bool:
        return self.spent is not None and self.spent >= self.max_usd_total

    def as_dict(self) -> dict[str, object]:
        return {
            "max_usd_total": self.max_usd_total,
            "action": self.action,
            "spent_usd": self.spent,
            "pods_billed": self.pods,
            "reached": self.reached,
            "error": self.error or None,
        }


def budget_status(desired: DesiredState, spend: Spend | None) -> BudgetStatus | None:
    limit = desired.budget.max_usd_total
    if limit is None or spend is None:
        return None
    return BudgetStatus(limit, desired.budget.action.value, spend.total, spend.pods, spend.error)
