"""budget.max_usd_total in the planner: under it a note, at it every pod stopped (or ended)."""

from __future__ import annotations

from dataclasses import replace

from reconciler.model import Budget, BudgetAction, DesiredState, JobSpec, PodSpec, PodStatus
from reconciler.planner.lifetime import is_lifetime_end
from reconciler.planner.spend import Spend
from reconciler.plans import Action, Change, Plan
from tests.planner_fixtures import (
    actual,
    actual_pod,
    desired,
    lockfile,
    make_plan,
    pod_spec,
    record,
)

REACHED = "budget.max_usd_total $5.00 reached: the stack's pods cost $5.20 so far"


def _pod(plan_: Plan, address: str = "pod.trainer") -> Change:
    return next(c for c in plan_.changes if c.address == address)


def _with_budget(
    action: BudgetAction = BudgetAction.STOP, *, protect: bool = False
) -> tuple[PodSpec, DesiredState]:
    spec = pod_spec(protect=protect)
    job = JobSpec(name="train", pod="trainer", run="train")
    d = replace(desired(spec, jobs=(job,)), budget=Budget(max_usd_total=5, action=action))
    return spec, d


def test_under_the_total_the_plan_says_what_is_left() -> None:
    spec, d = _with_budget()
    p = make_plan(d, actual(actual_pod(spec)), spend=Spend(total=1.25, pods=1))
    assert _pod(p).action is not Action.STOP
    assert (
        "budget.max_usd_total: the stack's pods cost $1.25 so far of $5.00 ($3.75 left); "
        "once reached they are stopped"
    ) in p.notes


def test_at_the_total_running_pods_stop_and_no_job_runs() -> None:
    spec, d = _with_budget()
    p = make_plan(d, actual(actual_pod(spec)), spend=Spend(total=5.2, pods=1))
    change = _pod(p)
    assert change.action is Action.STOP and change.reason.endswith(REACHED)
    assert not [c for c in p.changes if c.action is Action.RUN_JOB]
    assert any(n.startswith(REACHED + ": every pod of the stack is stopped") for n in p.notes)
    stopped = make_plan(
        d, actual(actual_pod(spec, status=PodStatus.EXITED)), spend=Spend(total=5.2, pods=1)
    )
    assert not stopped.has_changes  # not resumed to run its job


def test_terminate_keeps_the_record_and_protect_stops_instead() -> None:
    spec, d = _with_budget(BudgetAction.TERMINATE)
    p = make_plan(d, actual(actual_pod(spec)), spend=Spend(total=6, pods=1))
    change = _pod(p)
    assert change.action is Action.TERMINATE and is_lifetime_end(change.reason)  # record kept
    gone = make_plan(d, actual(), lockfile(("trainer", record(spec))), spend=Spend(total=6))
    assert not gone.has_changes  # not created again
    spec, d = _with_budget(BudgetAction.TERMINATE, protect=True)
    p = make_plan(d, actual(actual_pod(spec)), spend=Spend(total=6, pods=1))
    change = _pod(p)
    assert change.action is Action.STOP and change.reason.endswith("(protect: true, so stopped)")
    assert not p.errors


def test_ignore_budget_and_an_unread_total_warn() -> None:
    spec, d = _with_budget()
    p = make_plan(d, actual(actual_pod(spec)), spend=Spend(total=9, pods=1), ignore_budget=True)
    assert _pod(p).action is not Action.STOP
    assert p.warnings == (
        "budget.max_usd_total $5.00 reached: the stack's pods cost $9.00 so far; "
        "--ignore-budget: this apply does not stop the stack's pods",
    )
    p = make_plan(d, actual(actual_pod(spec)), spend=Spend(error="403 access denied"))
    assert "budget.max_usd_total is not checked this time: 403 access denied" in p.warnings
    destroy = make_plan(d, actual(actual_pod(spec)), spend=Spend(total=9), destroy=True)
    assert _pod(destroy).action is Action.TERMINATE and "budget" not in _pod(destroy).reason
