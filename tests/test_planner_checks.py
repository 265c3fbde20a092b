"""Protect, spot bids, the fallback chain, costs, targets, destroy and after_jobs."""

from __future__ import annotations

from dataclasses import replace

import pytest

from reconciler.model import AfterJobs, CloudType, JobSpec, PodState, PodStatus, SecretRef
from reconciler.planner import plan, pod_fingerprint, spec_digest
from reconciler.plans import Action, Placement
from tests.planner_fixtures import (
    A6000,
    RTX4090,
    SECRETS,
    actual,
    actual_pod,
    desired,
    lockfile,
    make_plan,
    pod_spec,
    record,
    succeeded,
)

S, C = CloudType.SECURE, CloudType.COMMUNITY


@pytest.mark.parametrize(
    ("cloud", "chain"),
    [
        (S, [(RTX4090, S, 0.69), (A6000, S, 0.49)]),
        (C, [(RTX4090, C, 0.34), (A6000, C, 0.33)]),
        (
            CloudType.ALL,
            [(RTX4090, S, 0.69), (A6000, S, 0.49), (RTX4090, C, 0.34), (A6000, C, 0.33)],
        ),
    ],
)
def test_fallback_chain_order(cloud, chain):
    (change,) = make_plan(desired(pod_spec(cloud=cloud)), actual()).changes
    assert change.placements == tuple(Placement(g, c, p) for g, c, p in chain)
    assert change.cost_after == chain[0][2]


def test_chain_prices_are_per_pod_and_spot_uses_the_bid():
    (change,) = make_plan(desired(pod_spec(gpu_count=2)), actual()).changes
    assert [p.price_per_hr for p in change.placements] == [1.38, 0.98]
    (spot,) = make_plan(desired(pod_spec(gpu_count=2, spot_bid_per_gpu=0.4)), actual()).changes
    assert [p.price_per_hr for p in spot.placements] == [0.8, 0.8]


def test_unknown_offer_price_is_none():
    (change,) = make_plan(desired(pod_spec(gpu_types=("NVIDIA H100",))), actual()).changes
    assert change.placements == (Placement("NVIDIA H100", S, None),)
    assert change.cost_after is None


def test_a_fallback_below_its_minimum_bid_is_skipped_with_a_note():
    p = make_plan(desired(pod_spec(spot_bid_per_gpu=0.3)), actual())
    assert p.errors == ()
    (change,) = p.changes
    assert change.placements == (Placement(A6000, S, 0.3),)
    assert p.notes == (
        "pod.trainer: RTX 4090 (secure) is skipped: its minimum spot bid $0.35/GPU/h is above "
        "spot.bid_per_gpu $0.30",
    )


def test_spot_bid_below_every_minimum_is_an_error():
    p = make_plan(desired(pod_spec(spot_bid_per_gpu=0.2, cloud=S)), actual())
    assert p.errors == (
        "pod.trainer: spot bid $0.20/GPU/h is below the minimum bid of every GPU type it may "
        "use: RTX 4090 (secure) $0.35, RTX A6000 (secure) $0.25; raise "
        "pods.trainer.spot.bid_per_gpu to at least $0.25 or add GPU types to pods.trainer.gpu.type",
    )


def test_a_bid_equal_to_the_minimum_is_placed():
    p = make_plan(desired(pod_spec(spot_bid_per_gpu=0.2, cloud=C)), actual())
    assert p.errors == () and p.notes == ()
    (change,) = p.changes
    assert change.placements == (Placement(RTX4090, C, 0.2), Placement(A6000, C, 0.2))


def test_an_unknown_gpu_type_is_an_error_with_a_did_you_mean():
    spec = pod_spec(gpu_types=("NVIDIA RTX 4090", "RTX A6000", "NVIDIA B999"))
    p = make_plan(desired(spec), actual())
    assert p.errors == (
        "pod.trainer: unknown GPU type 'NVIDIA RTX 4090' in pods.trainer.gpu.type; did you mean "
        f"'{RTX4090}'? (`podctl gpus` lists RunPod's GPU types)",
        "pod.trainer: unknown GPU type 'RTX A6000' in pods.trainer.gpu.type; did you mean "
        f"'{A6000}'? (`podctl gpus` lists RunPod's GPU types)",
        "pod.trainer: unknown GPU type 'NVIDIA B999' in pods.trainer.gpu.type "
        "(`podctl gpus` lists RunPod's GPU types)",
    )


def test_gpu_types_are_not_checked_without_a_catalogue():
    d = desired(pod_spec(gpu_types=("NVIDIA RTX 4090",)))
    p = plan(d, actual(), lockfile(), offers={}, secrets=SECRETS)
    assert p.errors == ()


def test_spot_bid_above_on_demand_is_a_warning():
    p = make_plan(desired(pod_spec(spot_bid_per_gpu=0.6)), actual())
    assert p.errors == ()
    assert p.warnings == (
        "pod.trainer: spot bid $0.60/GPU/h is above the on-demand price $0.49/GPU/h for "
        "RTX A6000 (secure)",
    )


def test_spot_bid_is_not_checked_for_a_running_pod():
    spec = pod_spec(spot_bid_per_gpu=0.1)
    p = make_plan(desired(spec), actual(actual_pod(spec)), lockfile(("trainer", record(spec))))
    assert p.errors == ()


@pytest.mark.parametrize(
    ("changed", "verb"), [({"state": PodState.ABSENT}, "terminate"), ({"gpu_count": 2}, "replace")]
)
def test_protect_blocks_terminate_and_replace(changed, verb):
    base = pod_spec(protect=True)
    spec = replace(base, **changed)
    p = make_plan(desired(spec), actual(actual_pod(base)), lockfile(("trainer", record(base))))
    assert len(p.errors) == 1
    assert p.errors[0].startswith(
        f"pod.trainer is protected (protect: true) and this plan would {verb} it ("
    )
    assert p.errors[0].endswith("; set protect: false on pods.trainer first if that is intended")
    forced = make_plan(desired(spec), actual(actual_pod(base)), lockfile(), force=True)
    assert forced.errors == ()


def test_protect_allows_update_and_orphan_cleanup():
    spec = pod_spec(protect=True, image="img:2")
    base = pod_spec(protect=True)
    pods = actual(actual_pod(base, pod_id="p1"), actual_pod(base, pod_id="p2", uid="u2"))
    p = make_plan(desired(spec), pods, lockfile(("trainer", record(base))))
    assert [c.action for c in p.changes] == [Action.UPDATE, Action.TERMINATE]
    assert p.errors == ()


def test_destroy_terminates_every_pod_of_the_stack():
    a, b = pod_spec("a"), pod_spec("b")
    pods = actual(
        actual_pod(a, pod_id="pa"),
        actual_pod(a, pod_id="pa2", uid="u2"),
        actual_pod(pod_spec("old"), pod_id="po"),
        actual_pod(pod_spec("x"), pod_id="other", stack="other"),
    )
    p = make_plan(desired(a, b), pods, destroy=True)
    assert [(c.address, c.action, c.reason) for c in p.changes] == [
        ("pod.a", Action.TERMINATE, "destroy"),
        ("pod.a[pa2]", Action.TERMINATE, "destroy"),
        ("pod.b", Action.NOOP, "absent, as destroy asks"),
        ("pod.old", Action.TERMINATE, "destroy"),
    ]
    assert p.total_cost_after == 0.0


def test_destroy_of_protected_pod_needs_force():
    spec = pod_spec(protect=True)
    p = make_plan(desired(spec), actual(actual_pod(spec)), destroy=True)
    assert p.errors == (
        "pod.trainer is protected (protect: true) and this plan would terminate it (destroy); "
        "run `podctl destroy --force` to destroy it anyway",
    )
    assert make_plan(desired(spec), actual(actual_pod(spec)), destroy=True, force=True).errors == ()


def test_targets_limit_the_plan():
    a, b = pod_spec("a"), pod_spec("b")
    p = make_plan(desired(a, b), actual(), targets=frozenset({"pod.b"}))
    assert [c.address for c in p.changes] == ["pod.b"]
    assert p.targets == ("pod.b",)


def test_unknown_target_is_an_error():
    p = make_plan(desired(pod_spec("a")), actual(), targets=frozenset({"pod.nope", "a"}))
    assert p.errors == (
        "target a names no pod of stack demo; use pod.NAME with a pod of the spec",
        "target pod.nope names no pod of stack demo; use pod.NAME with a pod of the spec",
    )


def test_costs_and_stopped_storage():
    run, stop = pod_spec("run"), pod_spec("stop", state=PodState.STOPPED, volume_gb=100)
    new = pod_spec("new")
    pods = actual(actual_pod(run, pod_id="r"), actual_pod(stop, pod_id="s"))
    p = make_plan(desired(run, stop, new), pods)
    assert p.total_cost_before == 1.38
    assert p.total_cost_after == 0.69 + 0.69
    assert p.stopped_storage_cost_after == round(100 * 0.20 / 730, 6)


JOBS = (
    JobSpec(name="prep", pod="trainer", run="true"),
    JobSpec(name="train", pod="trainer", run="x"),
)


@pytest.mark.parametrize(
    ("after", "status", "action", "reason"),
    [
        (AfterJobs.STOP, PodStatus.EXITED, Action.NOOP, "stopped after its jobs"),
        (AfterJobs.STOP, PodStatus.RUNNING, Action.STOP, "stopped after its jobs"),
        (AfterJobs.TERMINATE, None, Action.NOOP, "terminated after its jobs"),
        (AfterJobs.TERMINATE, PodStatus.RUNNING, Action.TERMINATE, "terminated after its jobs"),
    ],
)
def test_after_jobs_is_converged_once_jobs_succeeded(after, status, action, reason):
    spec = pod_spec(after_jobs=after)
    pods = () if status is None else (actual_pod(spec, status=status),)
    rec = lockfile(
        ("trainer", record(spec)),
        jobs={"prep": succeeded(JOBS[0], spec), "train": succeeded(JOBS[1], spec)},
    )
    (change,) = make_plan(desired(spec, jobs=JOBS), actual(*pods), rec).changes
    assert (change.action, change.reason) == (action, reason)


@pytest.mark.parametrize(
    ("after", "status", "action"),
    [(AfterJobs.STOP, PodStatus.EXITED, Action.RESUME), (AfterJobs.TERMINATE, None, Action.CREATE)],
)
def test_after_jobs_pod_comes_back_for_pending_jobs(after, status, action):
    spec = pod_spec(after_jobs=after)
    pods = () if status is None else (actual_pod(spec, status=status),)
    rec = lockfile(jobs={"prep": succeeded(JOBS[0], spec)})
    p = make_plan(desired(spec, jobs=JOBS), actual(*pods), rec)
    pod, *runs, after_jobs = p.changes
    assert pod.action is action
    assert "jobs to run: train" in pod.reason
    # a pod created again has a new disk: what ran on the old one runs again (prep here)
    expected = [("job.train", "new")]
    if action is Action.CREATE:
        expected.insert(0, ("job.prep", "its pod is created again: a new disk"))
    assert [(r.address, r.reason) for r in runs] == expected
    assert all(r.action is Action.RUN_JOB and r.depends_on[0] == "pod.trainer" for r in runs)
    stop = after is AfterJobs.STOP
    assert (after_jobs.address, after_jobs.action, after_jobs.depends_on) == (
        "pod.trainer",
        Action.STOP if stop else Action.TERMINATE,
        tuple(a for a, _ in expected),
    )
    assert p.total_cost_after == 0.0  # it ends stopped or gone


def test_after_jobs_with_unfinished_jobs_keeps_running():
    spec = pod_spec(after_jobs=AfterJobs.TERMINATE)
    rec = lockfile(("trainer", record(spec)), jobs={"prep": succeeded(JOBS[0], spec)})
    p = make_plan(desired(spec, jobs=JOBS), actual(actual_pod(spec)), rec)
    assert [(c.address, c.action.value, c.reason) for c in p.changes] == [
        ("pod.trainer", "no-op", "jobs to run: train"),
        ("job.train", "run-job", "new"),
        ("pod.trainer", "terminate", "terminated after its jobs succeed"),
    ]
    assert p.changes[1].pod_id == "p1" and p.changes[1].depends_on == ()


def test_fingerprint_ignores_state_and_secret_values_but_not_shape():
    spec = pod_spec()
    assert pod_fingerprint(spec) == pod_fingerprint(
        replace(spec, state=PodState.STOPPED, protect=True)
    )
    assert pod_fingerprint(spec) != pod_fingerprint(replace(spec, image="img:2"))
    assert pod_fingerprint(spec) != pod_fingerprint(
        replace(spec, env={"HF_TOKEN": SecretRef("OTHER")})
    )


def test_spec_digest_moves_with_a_secret_value_but_never_holds_it():
    d = desired(pod_spec())
    one = spec_digest(d, SECRETS)
    assert one == spec_digest(d, dict(SECRETS))
    assert one != spec_digest(d, {"HF_TOKEN": "another"})
    assert one != spec_digest(desired(pod_spec(state=PodState.STOPPED)), SECRETS)
    assert SECRETS["HF_TOKEN"] not in one


def test_resume_checks_the_bid_on_its_own_gpu_only():
    spec = pod_spec(spot_bid_per_gpu=0.3)  # below RTX 4090 secure (0.35), fine for A6000 (0.25)
    pod = actual_pod(spec, status=PodStatus.EXITED, gpu_type_id=A6000)
    p = make_plan(desired(spec), actual(pod), lockfile(("trainer", record(spec))))
    assert p.changes[0].action is Action.RESUME
    assert p.errors == ()
    on_4090 = actual_pod(spec, status=PodStatus.EXITED)
    p = make_plan(desired(spec), actual(on_4090), lockfile(("trainer", record(spec))))
    assert len(p.errors) == 1 and "RTX 4090 (secure)" in p.errors[0]


def test_observed_digest_takes_secrets_only_as_slow_hashes():
    from reconciler.planner.fingerprint import view_digest

    view = {"image": "img:1", "env.HF_TOKEN": SECRETS["HF_TOKEN"]}
    masked = view_digest(view, frozenset(SECRETS.values()))
    assert masked != view_digest(view)
    other = {"image": "img:1", "env.HF_TOKEN": "rotated"}
    assert masked != view_digest(other, frozenset({"rotated"}))


def test_an_unknown_gpu_type_is_shown_escaped_and_cut():
    spec = pod_spec(gpu_types=("RTX\x1b[2J4090" + "x" * 200,))
    (error,) = make_plan(desired(spec), actual()).errors
    assert "\x1b" not in error and "RTX\\x1b[2J4090xx" in error
    assert "x" * 80 not in error and "x..." in error
