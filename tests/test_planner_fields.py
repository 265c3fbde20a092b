"""Update vs replace per field, drift vs spec change, secrets masked in field diffs."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from reconciler.model import CloudType, PodSpec, PodState, PodStatus, SecretRef
from reconciler.plans import SENSITIVE, Action, FieldChange, Plan
from tests.planner_fixtures import (
    A6000,
    RTX4090,
    SECRET_VALUE,
    actual,
    actual_pod,
    desired,
    lockfile,
    make_plan,
    pod_spec,
    record,
)

BASE = pod_spec()

# (spec change, field path, before, after)
UPDATES = [
    ({"image": "img:2"}, "image", "img:1", "img:2"),
    ({"env": {**BASE.env, "WANDB_PROJECT": "x"}}, "env.WANDB_PROJECT", "eval", "x"),
    ({"env": {**BASE.env, "NEW": "1"}}, "env.NEW", None, "1"),
    ({"env": {"HF_TOKEN": SecretRef("HF_TOKEN")}}, "env.WANDB_PROJECT", SENSITIVE, None),
    ({"ports": ("22/tcp",)}, "ports", ["22/tcp", "8888/http"], ["22/tcp"]),
    ({"container_disk_gb": 50}, "disk.container_gb", 20, 50),
    ({"docker_args": "--shm 1g"}, "docker_args", "", "--shm 1g"),
]

REPLACES = [
    ({"gpu_types": (A6000,)}, "gpu.type", RTX4090, [A6000]),
    ({"gpu_count": 2}, "gpu.count", 1, 2),
    ({"cloud": CloudType.COMMUNITY}, "cloud", "secure", "community"),
    ({"spot_bid_per_gpu": 0.5}, "spot", False, True),
    ({"data_center": "US-TX-3"}, "data_center", "EU-RO-1", "US-TX-3"),
    ({"volume_gb": 100}, "disk.volume_gb", 20, 100),
    ({"volume_mount": "/data"}, "disk.mount", "/workspace", "/data"),
    ({"network_volume": "nv-1"}, "network_volume", None, "nv-1"),
]


def _plan_for(
    changed: dict[str, Any],
    status: PodStatus = PodStatus.RUNNING,
    recorded_spec: PodSpec | None = None,
) -> Plan:
    spec = replace(BASE, **changed)
    pod = actual_pod(BASE, status=status)
    rec = record(recorded_spec or BASE)
    return make_plan(desired(spec), actual(pod), lockfile(("trainer", rec)))


@pytest.mark.parametrize(("changed", "path", "before", "after"), UPDATES)
def test_update_fields_change_in_place(changed, path, before, after):
    p = _plan_for(changed)
    (change,) = p.changes
    assert change.action is Action.UPDATE
    assert change.fields == (FieldChange(path, before, after),)
    assert change.reason == f"spec changed: {path}"
    assert change.warnings == (
        "the container is reset: anything outside the volume (/workspace) is lost, running "
        "processes stop",
    )
    assert change.cost_after == change.cost_before == 0.69


@pytest.mark.parametrize(("changed", "path", "before", "after"), REPLACES)
def test_replace_fields_force_replacement(changed, path, before, after):
    p = _plan_for(changed)
    (change,) = p.changes
    assert change.action is Action.REPLACE
    assert change.fields[0] == FieldChange(path, before, after, forces_replace=True)
    assert change.reason == f"spec changed: {path} ({path} forces replacement)"
    assert change.placements, "a replace shows the fallback chain"


@pytest.mark.parametrize(("changed", "path", "before", "after"), REPLACES)
def test_replace_fields_on_a_stopped_pod_replace_too(changed, path, before, after):
    (change,) = _plan_for(changed, status=PodStatus.EXITED).changes
    assert change.action is Action.REPLACE


def test_replace_lists_the_in_place_fields_after_the_replace_fields():
    (change,) = _plan_for({"image": "img:2", "gpu_count": 2}).changes
    assert [(f.path, f.forces_replace) for f in change.fields] == [
        ("gpu.count", True),
        ("image", False),
    ]


def test_accepted_values_are_not_changes():
    pod = actual_pod(BASE, gpu_type_id=A6000, cloud=CloudType.COMMUNITY, data_center_id="X")
    spec = replace(BASE, cloud=CloudType.ALL)
    p = make_plan(desired(spec), actual(pod), lockfile(("trainer", record(spec))))
    assert p.changes[0].action is Action.NOOP


def test_port_order_does_not_matter():
    pod = actual_pod(BASE, ports=("8888/http", "22/tcp"))
    p = make_plan(desired(BASE), actual(pod), lockfile(("trainer", record(BASE))))
    assert not p.has_changes


def test_drift_is_shown_as_changed_outside_podctl():
    pod = actual_pod(BASE, image="img:hacked")
    p = make_plan(desired(BASE), actual(pod), lockfile(("trainer", record(BASE))))
    (change,) = p.changes
    assert change.action is Action.UPDATE
    assert change.reason == "changed outside podctl: image"
    assert change.fields == (FieldChange("image", "img:hacked", "img:1", drift=True),)


def test_spec_change_is_not_drift():
    (change,) = _plan_for({"image": "img:2"}).changes
    assert change.fields[0].drift is False


def test_changed_secret_is_sensitive_on_both_sides():
    pod = actual_pod(BASE, env={**actual_pod(BASE).env, "HF_TOKEN": "old-token"})
    p = make_plan(desired(BASE), actual(pod), lockfile(("trainer", record(BASE))))
    (change,) = p.changes
    assert change.fields == (FieldChange("env.HF_TOKEN", SENSITIVE, SENSITIVE),)
    assert change.reason == "from_env value differs: env.HF_TOKEN"


def test_unchanged_secret_is_no_change():
    p = make_plan(desired(BASE), actual(actual_pod(BASE)), lockfile(("trainer", record(BASE))))
    assert not p.has_changes


def test_removed_env_values_are_masked_as_they_may_be_secrets():
    spec = replace(BASE, env={"WANDB_PROJECT": "eval"})
    p = make_plan(desired(spec), actual(actual_pod(BASE)), lockfile(("trainer", record(BASE))))
    assert p.changes[0].fields == (FieldChange("env.HF_TOKEN", SENSITIVE, None),)


def test_marker_env_and_public_key_are_ignored():
    pod = actual_pod(BASE)
    assert "PUBLIC_KEY" in pod.env and "PODCTL_UID" in pod.env
    p = make_plan(desired(BASE), actual(pod), lockfile(("trainer", record(BASE))))
    assert not p.has_changes


def test_stopped_pod_with_update_fields_resumes_then_updates():
    (change,) = _plan_for({"image": "img:2"}, status=PodStatus.EXITED).changes
    assert change.action is Action.RESUME
    assert change.reason == "stopped; state is running; then updated in place (spec changed: image)"
    assert [f.path for f in change.fields] == ["image"]
    assert change.cost_before == 0.0 and change.cost_after == 0.69


def test_create_lists_the_desired_fields_with_secrets_masked():
    spec = replace(BASE, max_lifetime_s=12 * 3600)
    (change,) = make_plan(desired(spec), actual()).changes
    fields = {f.path: f.after for f in change.fields}
    assert fields["env.HF_TOKEN"] == SENSITIVE
    assert fields["max_lifetime"] == "12h"
    assert fields["gpu.type"] == [RTX4090, A6000]
    assert all(f.before is None for f in change.fields)
    assert SECRET_VALUE not in repr(change)


def test_stopped_pod_with_pending_changes_warns_at_plan_level():
    spec = replace(BASE, state=PodState.STOPPED, image="img:2")
    pod = actual_pod(BASE, status=PodStatus.EXITED)
    p = make_plan(desired(spec), actual(pod), lockfile(("trainer", record(BASE))))
    assert not p.has_changes
    assert p.warnings == ("pod.trainer: changes wait until the pod runs again: image",)


def test_stop_shows_pending_changes_on_the_change():
    spec = replace(BASE, state=PodState.STOPPED, image="img:2")
    p = make_plan(desired(spec), actual(actual_pod(BASE)), lockfile(("trainer", record(BASE))))
    (change,) = p.changes
    assert change.action is Action.STOP
    assert change.warnings == ("changes wait until the pod runs again: image",)
    assert change.fields == ()


def test_a_pod_reporting_no_gpus_is_not_a_count_change():
    pod = actual_pod(BASE, status=PodStatus.EXITED, gpu_count=0)
    p = make_plan(desired(BASE), actual(pod), lockfile(("trainer", record(BASE))))
    assert p.changes[0].action is Action.RESUME and p.changes[0].fields == ()


def test_literal_env_whose_old_value_is_a_secret_is_masked():
    spec = replace(BASE, env={**BASE.env, "HF_TOKEN": "literal"})
    p = make_plan(desired(spec), actual(actual_pod(BASE)), lockfile(("trainer", record(BASE))))
    assert p.changes[0].fields == (FieldChange("env.HF_TOKEN", SENSITIVE, "literal"),)


def test_drift_is_not_claimed_when_the_spec_also_changed():
    spec = replace(BASE, image="img:2")
    pod = actual_pod(BASE, docker_args="--hacked")
    p = make_plan(desired(spec), actual(pod), lockfile(("trainer", record(BASE))))
    assert p.changes[0].reason == "spec changed: docker_args, image"


# --- the FIELDS table -------------------------------------------------------------------------

# PodSpec attributes that say what podctl does with a pod, not what RunPod runs: no FIELDS row
LIFECYCLE = {
    "name",
    "state",
    "lifetime_action",
    "after_jobs",
    "on_resume_failure",
    "protect",
    "idle_timeout_s",
    "idle_action",
    "stopped_ttl_s",
    "on_failure",
}


def test_every_pod_spec_field_has_one_fields_row_or_is_a_lifecycle_setting():
    from dataclasses import fields as dataclass_fields

    from reconciler.planner.fields import FIELDS

    attrs = [row.attr for row in FIELDS if row.path != "spot.bid_per_gpu"]  # spot reads it too
    assert len(attrs) == len(set(attrs))
    assert {f.name for f in dataclass_fields(PodSpec)} - LIFECYCLE == set(attrs)


def test_every_in_place_field_is_sent_by_the_edit():
    from dataclasses import fields as dataclass_fields

    from reconciler.planner.fields import FIELDS
    from reconciler.podops import PodEdit

    in_place = {r.path for r in FIELDS if r.compared and not r.replace and not r.sensitive}
    assert in_place == {r.path for r in FIELDS if r.edit and not r.replace}
    assert {f.name for f in dataclass_fields(PodEdit)} == {r.input for r in FIELDS if r.edit} | {
        "env"
    }


# PodCreate fields that come from elsewhere than one FIELDS row: the placement, pod_env, the
# create's time, and the two podctl always leaves at their defaults
NOT_FROM_FIELDS = {
    "name",
    "gpu_type_id",
    "cloud",
    "env",
    "terminate_after",
    "start_ssh",
    "support_public_ip",
}


def test_every_create_input_but_placement_env_and_time_comes_from_one_fields_row():
    from dataclasses import fields as dataclass_fields

    from reconciler.planner.fields import FIELDS
    from reconciler.podops import PodCreate

    inputs = [r.input for r in FIELDS if r.input is not None]
    assert len(inputs) == len(set(inputs))
    assert {f.name for f in dataclass_fields(PodCreate)} - NOT_FROM_FIELDS == set(inputs)


def test_the_edit_input_carries_the_spec_and_the_whole_env():
    from reconciler.planner.fields import edit_input
    from reconciler.podops import PodEdit

    spec = replace(BASE, image="img:2", container_disk_gb=50, docker_args="--shm 1g")
    env = {"WANDB_PROJECT": "eval", "PODCTL_UID": "u1"}
    assert edit_input(spec, env) == PodEdit(
        image="img:2",
        container_disk_gb=50,
        volume_gb=spec.volume_gb,
        volume_mount=spec.volume_mount,
        env=env,
        ports=spec.ports,
        docker_args="--shm 1g",
    )


FINGERPRINT_OF_A = "sha256:a5913a556808b6a4055734346ceb0b3d"  # as podctl computed it before FIELDS


def test_the_pod_fingerprint_is_the_one_recorded_lockfiles_hold():
    # a lockfile records this hash: a change to FIELDS must not move it for an unchanged spec
    from reconciler.planner.fingerprint import pod_fingerprint

    spec = PodSpec(name="a", image="img:1", gpu_types=("NVIDIA GeForce RTX 4090",))
    assert pod_fingerprint(spec) == FINGERPRINT_OF_A
