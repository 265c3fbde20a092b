"""The endpoint planner: create, no-op, in-place update, delete, adopt, protect, RunPod's drift.

Actual endpoints are made the way RunPod (the sandbox's validator) stores podctl's create body,
so a plan right after a create must be empty: nothing podctl sends comes back different.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from reconciler.backends.runpod_rest.endpoints import create_body, parse_endpoint
from reconciler.model import (
    ActualEndpoint,
    ActualState,
    DesiredState,
    EndpointRecord,
    EndpointSpec,
    Lockfile,
)
from reconciler.planner import plan
from reconciler.planner.endpoints import (
    endpoint_fingerprint,
    endpoint_id,
    markers_env,
    runpod_name,
)
from reconciler.plans import SENSITIVE, Action, Plan
from reconciler.sandbox.serverless import endpoints as sandbox
from tests.spec_helpers import load, write

SECRET = "tok-planner-Qx81"
SPEC = """\
version: 1
stack: demo
endpoints:
  scorer:
    image: org/scorer:v1
    gpu: {pools: [ADA_24, AMPERE_24]}
    workers: {min: 0, max: 5}
    env: {MODE: fast, TOKEN: {from_env: EP_TOKEN}}
    protect: PROTECT
"""


@pytest.fixture(autouse=True)
def _token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EP_TOKEN", SECRET)


def desired(tmp_path: Path, text: str = SPEC, protect: bool = False) -> DesiredState:
    return load([write(tmp_path, text.replace("PROTECT", str(protect).lower()))])


def made(spec: EndpointSpec, stack: str = "demo", **changes: Any) -> ActualEndpoint:
    """The endpoint RunPod (the sandbox) stores for podctl's create body of `spec`."""
    env = {"MODE": "fast", "TOKEN": SECRET, **markers_env(stack, spec.name)}
    stored = sandbox.create(create_body(runpod_name(stack, spec.name), spec, env))
    endpoint = parse_endpoint(sandbox.view(stored, "http://x/serverless/v2"))
    return dataclasses.replace(endpoint, **changes)


def run(
    d: DesiredState,
    endpoints: list[ActualEndpoint] = (),  # type: ignore[assignment]
    recorded: Lockfile | None = None,
    **kwargs: Any,
) -> Plan:
    actual = ActualState(pods={}, endpoints={e.endpoint_id: e for e in endpoints})
    return plan(
        d, actual, recorded or Lockfile(), offers={}, secrets={"EP_TOKEN": SECRET}, **kwargs
    )


def record_of(d: DesiredState, e: ActualEndpoint) -> Lockfile:
    spec = d.endpoints["scorer"]
    rec = EndpointRecord(e.endpoint_id, endpoint_fingerprint(spec), workers_max=spec.workers_max)
    return Lockfile(stack="demo", endpoints={"scorer": rec})


def only(p: Plan) -> Any:
    (change,) = [c for c in p.changes if c.address.startswith("endpoint.")]
    return change


def test_a_new_endpoint_is_created(tmp_path: Path) -> None:
    change = only(run(desired(tmp_path)))
    assert (change.action, change.reason, change.pod_id) == (Action.CREATE, "new", None)


def test_what_podctl_created_plans_no_change(tmp_path: Path) -> None:
    d = desired(tmp_path)
    e = made(d.endpoints["scorer"])
    p = run(d, [e], record_of(d, e))
    assert not p.has_changes
    assert only(p).action is Action.NOOP and only(p).pod_id == e.endpoint_id


def test_an_edit_is_an_in_place_update_with_the_field_diff(tmp_path: Path) -> None:
    d = desired(tmp_path)
    e = made(d.endpoints["scorer"])
    recorded = record_of(d, e)
    edited = desired(tmp_path, SPEC.replace("org/scorer:v1", "org/scorer:v2"))
    change = only(run(edited, [e], recorded))
    assert change.action is Action.UPDATE
    assert change.reason == "changed: image"
    assert [(f.path, f.before, f.after, f.drift) for f in change.fields] == [
        ("image", "org/scorer:v1", "org/scorer:v2", False)
    ]


def test_a_change_made_outside_podctl_is_drift(tmp_path: Path) -> None:
    d = desired(tmp_path)
    e = made(d.endpoints["scorer"], disk_gb=50)
    change = only(run(d, [e], record_of(d, e)))
    assert change.action is Action.UPDATE
    assert change.reason == "changed outside podctl: disk_gb"
    assert [(f.path, f.drift) for f in change.fields] == [("disk_gb", True)]


@pytest.mark.parametrize(("lowered", "days"), [(2, 3), (0, 7)])
def test_runpods_idle_scale_down_is_named_and_restored(
    tmp_path: Path, lowered: int, days: int
) -> None:
    d = desired(tmp_path)
    e = made(d.endpoints["scorer"], workers_max=lowered)
    p = run(d, [e], record_of(d, e))
    change = only(p)
    assert change.action is Action.UPDATE
    assert change.reason == (
        f"RunPod lowered workers.max to {lowered} (its automatic scale-down of an endpoint idle "
        f"for {days} days); apply restores it"
    )
    assert [(f.path, f.before, f.after, f.drift) for f in change.fields] == [
        ("workers.max", lowered, 5, True)
    ]
    assert p.warnings == (f"endpoint.scorer: {change.reason}",)


def test_a_max_lowered_to_another_value_is_plain_drift(tmp_path: Path) -> None:
    d = desired(tmp_path)
    e = made(d.endpoints["scorer"], workers_max=1)
    assert only(run(d, [e], record_of(d, e))).reason == "changed outside podctl: workers.max"


def test_secrets_are_compared_but_never_shown(tmp_path: Path) -> None:
    d = desired(tmp_path)
    e = made(d.endpoints["scorer"])
    rotated = dataclasses.replace(e, env={**e.env, "TOKEN": "tok-old-value-77"})
    change = only(run(d, [rotated], record_of(d, e)))
    assert [(f.path, f.before, f.after) for f in change.fields] == [
        ("env.TOKEN", SENSITIVE, SENSITIVE)
    ]
    assert SECRET not in repr(change) and "tok-old-value-77" not in repr(change)


def test_state_absent_deletes_and_destroy_deletes(tmp_path: Path) -> None:
    d = desired(tmp_path)
    e = made(d.endpoints["scorer"])
    recorded = record_of(d, e)
    absent = desired(tmp_path, SPEC.replace("    protect", "    state: absent\n    protect"))
    change = only(run(absent, [e], recorded))
    assert (change.action, change.reason, change.pod_id) == (
        Action.DELETE,
        "state: absent",
        e.endpoint_id,
    )
    change = only(run(d, [e], recorded, destroy=True))
    assert (change.action, change.reason) == (Action.DELETE, "destroy")
    assert only(run(absent, [], recorded)).action is Action.NOOP


def test_an_endpoint_removed_from_the_spec_is_deleted(tmp_path: Path) -> None:
    d = desired(tmp_path)
    e = made(d.endpoints["scorer"])
    empty = desired(tmp_path, "version: 1\nstack: demo\n")
    change = only(run(empty, [e], record_of(d, e)))
    assert (change.action, change.reason) == (Action.DELETE, "removed from the spec")


def test_an_endpoint_without_the_stacks_markers_is_never_touched(tmp_path: Path) -> None:
    d = desired(tmp_path)
    foreign = made(d.endpoints["scorer"], stack="other")
    unmarked = dataclasses.replace(foreign, markers=None, endpoint_id="unmarked1")
    p = run(d, [foreign, unmarked], destroy=False)
    assert only(p).action is Action.CREATE
    p = run(d, [foreign, unmarked], destroy=True)
    assert [c.action for c in p.changes] == [Action.NOOP]


def test_a_marked_endpoint_is_adopted_without_a_record(tmp_path: Path) -> None:
    d = desired(tmp_path)
    e = made(d.endpoints["scorer"])
    change = only(run(d, [e]))
    assert (change.action, change.pod_id) == (Action.NOOP, e.endpoint_id)
    assert (
        endpoint_id(
            "scorer", "demo", ActualState(pods={}, endpoints={e.endpoint_id: e}), Lockfile()
        )
        == e.endpoint_id
    )


def test_a_second_marked_endpoint_is_an_orphan_deleted(tmp_path: Path) -> None:
    d = desired(tmp_path)
    first = made(d.endpoints["scorer"])
    second = dataclasses.replace(first, endpoint_id="zzzz-second")
    p = run(d, [first, second], record_of(d, first))
    actions = [(c.address, c.action) for c in p.changes]
    assert actions == [
        ("endpoint.scorer", Action.NOOP),
        ("endpoint.scorer[zzzz-second]", Action.DELETE),
    ]


def test_protect_refuses_a_plan_that_deletes(tmp_path: Path) -> None:
    d = desired(tmp_path, protect=True)
    e = made(d.endpoints["scorer"])
    p = run(d, [e], record_of(d, e), destroy=True)
    assert p.errors == (
        "endpoint.scorer is protected (protect: true) and this plan would delete it (destroy); "
        "run `podctl destroy --force` to destroy it anyway",
    )
    assert run(d, [e], record_of(d, e), destroy=True, force=True).errors == ()
    absent = desired(
        tmp_path, SPEC.replace("    protect", "    state: absent\n    protect"), protect=True
    )
    assert run(absent, [e], record_of(d, e)).errors == (
        "endpoint.scorer is protected (protect: true) and this plan would delete it "
        "(state: absent); set protect: false on endpoints.scorer first if that is intended",
    )


def test_gpu_to_cpu_is_a_replace(tmp_path: Path) -> None:
    d = desired(tmp_path)
    e = made(d.endpoints["scorer"])
    cpu = desired(
        tmp_path,
        SPEC.replace("gpu: {pools: [ADA_24, AMPERE_24]}", "cpu: [{flavor: cpu3c, vcpu: 4}]"),
    )
    change = only(run(cpu, [e], record_of(d, e)))
    assert change.action is Action.REPLACE
    assert change.fields[0].path == "compute" and change.fields[0].forces_replace


def test_a_recorded_endpoint_deleted_outside_podctl_is_created_again(tmp_path: Path) -> None:
    d = desired(tmp_path)
    e = made(d.endpoints["scorer"])
    change = only(run(d, [], record_of(d, e)))
    assert (change.action, change.reason) == (Action.CREATE, "deleted outside podctl")


def test_the_spec_digest_moves_with_an_endpoint(tmp_path: Path) -> None:
    a = run(desired(tmp_path)).spec_digest
    b = run(desired(tmp_path, SPEC.replace("max: 5", "max: 6"))).spec_digest
    assert a != b


def test_target_selects_an_endpoint_or_leaves_endpoints_out(tmp_path: Path) -> None:
    text = SPEC + "pods:\n  box:\n    image: img:1\n    gpu: {type: NVIDIA RTX A4000}\n"
    d = desired(tmp_path, text)
    only_endpoint = run(d, targets=frozenset({"endpoint.scorer"}))
    assert [c.address for c in only_endpoint.changes] == ["endpoint.scorer"]
    assert only_endpoint.errors == ()
    only_pod = run(d, targets=frozenset({"pod.box"}))
    assert [c.address for c in only_pod.changes] == ["pod.box"]
    unknown = run(d, targets=frozenset({"endpoint.nope"}))
    assert unknown.errors == (
        "target endpoint.nope names no endpoint of stack demo; use endpoint.NAME with an "
        "endpoint of the spec",
    )
