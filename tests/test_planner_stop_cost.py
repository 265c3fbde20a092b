"""A stop row ends at what the stopped pod bills (its volume disk), not at $0.00/h."""

from __future__ import annotations

import pytest

from reconciler.model import AfterJobs, JobSpec, PodState
from reconciler.planner.placement import STOPPED_VOLUME_PER_GB_HR
from reconciler.plans import Action, Change, Plan
from reconciler.render import plan_json, plan_markdown, plan_text
from tests.planner_fixtures import actual, actual_pod, desired, make_plan, pod_spec

VOLUME_100 = 100 * 0.20 / 730  # RunPod: volume disk $0.20/GB/month while stopped


def _stop(plan_: Plan) -> Change:
    return next(c for c in plan_.changes if c.action is Action.STOP)


def test_a_stop_ends_at_its_volume_storage_in_text_json_and_markdown() -> None:
    spec = pod_spec(volume_gb=100)
    running = actual(actual_pod(spec))
    p = make_plan(desired(pod_spec(volume_gb=100, state=PodState.STOPPED)), running)
    stop = _stop(p)
    assert stop.cost_before == 0.69
    assert (
        stop.cost_after
        == pytest.approx(VOLUME_100, abs=1e-6)
        == pytest.approx(100 * STOPPED_VOLUME_PER_GB_HR, abs=1e-6)
    )
    # the running totals leave storage out; the storage total holds it, once
    assert p.total_cost_after == 0.0
    assert p.stopped_storage_cost_after == pytest.approx(VOLUME_100, abs=1e-6)
    text = plan_text(p, False)
    assert "    cost: $0.69/h -> $0.0274/h ($20.00/month, the stopped pod's volume)" in text
    assert "Cost: $0.69/h -> $0.00/h (-$0.69/h); stopped storage $0.0274/h ($20.00/month)" in text
    assert "| $0.69 | $0.0274 ($20.00/month, the stopped pod's volume) |" in plan_markdown(p)
    assert '"cost_after": 0.027397' in plan_json(p)


def test_a_pod_without_a_volume_stops_at_nothing_and_says_why() -> None:
    spec = pod_spec(volume_gb=0)
    p = make_plan(desired(pod_spec(volume_gb=0, state=PodState.STOPPED)), actual(actual_pod(spec)))
    assert _stop(p).cost_after == 0.0
    assert "cost: $0.69/h -> $0.00/h (stopped, no volume disk)" in plan_text(p, False)


def test_after_jobs_stop_ends_at_the_volume_too() -> None:
    spec = pod_spec(volume_gb=100, after_jobs=AfterJobs.STOP)
    job = JobSpec(name="train", pod="trainer", run="train")
    p = make_plan(desired(spec, jobs=(job,)), actual(actual_pod(spec)))
    stop = _stop(p)
    assert stop.depends_on == ("job.train",)
    assert stop.cost_after == pytest.approx(VOLUME_100, abs=1e-6)
    assert p.total_cost_after == 0.0 and p.stopped_storage_cost_after == pytest.approx(
        VOLUME_100, abs=1e-6
    )
