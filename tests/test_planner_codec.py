"""The saved-plan JSON codec: round trips, and clear PlanFileErrors on anything else."""

from __future__ import annotations

import json

import pytest

from reconciler.errors import PlanFileError
from reconciler.model import PodStatus
from reconciler.plans import Plan, plan_from_dict, plan_to_dict
from tests.planner_fixtures import (
    actual,
    actual_pod,
    desired,
    lockfile,
    make_plan,
    pod_spec,
    record,
)


def _rich_plan() -> Plan:
    keep = pod_spec("keep")
    changed = pod_spec("web", image="img:2", gpu_count=2)
    stopped = pod_spec("stopped")
    pods = actual(
        actual_pod(keep, pod_id="k1"),
        actual_pod(pod_spec("web"), pod_id="w1"),
        actual_pod(stopped, pod_id="s1", status=PodStatus.EXITED),
        actual_pod(pod_spec("gone"), pod_id="g1"),
    )
    d = desired(keep, changed, stopped, pod_spec("fresh", spot_bid_per_gpu=0.4))
    return make_plan(d, pods, lockfile(("keep", record(keep, "k1"))))


def test_round_trip_is_equal_through_json_text():
    p = _rich_plan()
    assert len(p.actionable) >= 4
    assert plan_from_dict(json.loads(json.dumps(plan_to_dict(p)))) == p


def test_unknown_format_version_is_refused():
    data = plan_to_dict(_rich_plan())
    data["format_version"] = 99
    with pytest.raises(PlanFileError) as caught:
        plan_from_dict(data)
    assert str(caught.value) == (
        "plan file: format_version 99 is not one this podctl reads (1); make the plan again "
        "with this podctl"
    )


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.pop("stack"), "plan file: plan.stack is missing"),
        (lambda d: d.update(serial="3"), "plan file: plan.serial is not an integer"),
        (lambda d: d.update(serial=True), "plan file: plan.serial is not an integer"),
        (lambda d: d.update(changes={}), "plan file: plan.changes is not a list"),
        (lambda d: d["changes"][0].update(action="explode"), "plan file: plan.changes[0].action"),
        (lambda d: d["changes"].append(3), "plan file: plan.changes[5] is not an object"),
        (lambda d: d.update(warnings=[1]), "plan file: plan.warnings is not a list of strings"),
    ],
)
def test_malformed_plans_are_refused_with_the_path(mutate, message):
    data = json.loads(json.dumps(plan_to_dict(_rich_plan())))
    mutate(data)
    with pytest.raises(PlanFileError) as caught:
        plan_from_dict(data)
    assert str(caught.value).startswith(message)


@pytest.mark.parametrize("data", [None, [], "plan", 3])
def test_not_an_object_is_refused(data):
    with pytest.raises(PlanFileError):
        plan_from_dict(data)


@pytest.mark.parametrize("version", [True, "1", None, 1.5])
def test_format_version_must_be_the_integer(version):
    data = plan_to_dict(_rich_plan())
    data["format_version"] = version
    with pytest.raises(PlanFileError, match="format_version"):
        plan_from_dict(data)
