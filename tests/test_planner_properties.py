"""Properties over generated specs and pods: convergence, codec round trip, no secret leaks."""

from __future__ import annotations

import json
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.model import (
    ActualPod,
    ActualState,
    CloudType,
    DesiredState,
    Lockfile,
    PodRecord,
    PodSpec,
    PodState,
    PodStatus,
    SecretRef,
)
from reconciler.planner import stale_reasons
from reconciler.plans import Action, plan_from_dict, plan_to_dict
from reconciler.render import plan_json, plan_markdown, plan_text
from tests.planner_fixtures import (
    A6000,
    RTX4090,
    SECRET_VALUE,
    actual,
    actual_pod,
    desired,
    lockfile,
    make_plan,
    record,
)

names = st.sampled_from(["a", "b", "c"])
env_values = st.one_of(st.text(max_size=8), st.just(SecretRef("HF_TOKEN")))

specs = st.builds(
    PodSpec,
    name=names,
    image=st.sampled_from(["img:1", "img:2"]),
    gpu_types=st.sampled_from([(RTX4090,), (A6000,), (RTX4090, A6000)]),
    gpu_count=st.integers(1, 2),
    cloud=st.sampled_from(list(CloudType)),
    spot_bid_per_gpu=st.sampled_from([None, 0.4]),
    container_disk_gb=st.sampled_from([20, 40]),
    ports=st.sampled_from([("22/tcp",), ("22/tcp", "8888/http")]),
    env=st.dictionaries(st.sampled_from(["A", "HF_TOKEN", "B"]), env_values, max_size=3),
    docker_args=st.sampled_from(["", "--x"]),
    state=st.sampled_from(list(PodState)),
    protect=st.booleans(),
)
statuses = st.sampled_from([None, *PodStatus])


def _scenario(
    draw_specs: list[PodSpec], other_specs: list[PodSpec], statuses_: list[PodStatus | None]
) -> tuple[DesiredState, ActualState, Lockfile]:
    pods: list[ActualPod] = []
    recs: list[tuple[str, PodRecord]] = []
    wanted = {s.name: s for s in draw_specs}
    for i, (old, status) in enumerate(zip(other_specs, statuses_, strict=False)):
        if status is None:
            continue
        pods.append(actual_pod(old, pod_id=f"p{i}", uid=f"u{i}", status=status))
        if i % 2:
            recs.append((old.name, record(old, f"p{i}", f"u{i}")))
    return desired(*wanted.values()), actual(*pods), lockfile(*recs)


@settings(max_examples=80, deadline=None)
@given(st.lists(specs, max_size=3), st.lists(specs, max_size=4), st.lists(statuses, max_size=4))
def test_any_plan_round_trips_and_never_leaks(draw_specs, other_specs, statuses_):
    d, a, r = _scenario(draw_specs, other_specs, statuses_)
    p = make_plan(d, a, r)
    assert plan_from_dict(json.loads(plan_json(p))) == p
    assert stale_reasons(p, make_plan(d, a, r)) == ()
    for text in (plan_text(p, True, show_noops=True), plan_markdown(p), plan_json(p)):
        assert SECRET_VALUE not in text
    addresses = [c.address for c in p.changes]
    assert len(addresses) == len(set(addresses))
    assert [c.pod for c in p.changes] == sorted(c.pod for c in p.changes)
    assert json.dumps(plan_to_dict(p))  # JSON-able


@settings(max_examples=80, deadline=None)
@given(specs)
def test_a_pod_made_from_its_spec_converges(spec):
    spec = replace(spec, state=PodState.RUNNING, spot_bid_per_gpu=None)
    status = PodStatus.RUNNING
    p = make_plan(
        desired(spec), actual(actual_pod(spec, status=status)), lockfile((spec.name, record(spec)))
    )
    assert [c.action for c in p.changes] == [Action.NOOP]
