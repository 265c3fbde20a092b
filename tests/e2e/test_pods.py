"""`podctl plan/apply/destroy` against the sandbox: convergence and every decision-table row."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import SECRET, Podctl


@pytest.mark.both_apis
def test_apply_converges_then_plans_nothing_and_sends_no_mutation(podctl: Podctl) -> None:
    first = podctl("apply", "-y", "-f", str(podctl.spec))
    assert first.code == 0, first.err
    assert "pod.box" in first.out and "Apply complete" in first.out
    (pod,) = podctl.pods()
    assert pod["name"] == "e2e-box" and pod["desiredStatus"] == "RUNNING"
    env = dict(item.split("=", 1) for item in pod["env"])
    assert env["PODCTL_STACK"] == "e2e" and env["PODCTL_POD"] == "box"
    assert env["TOKEN"] == SECRET  # the pod gets the value; nothing else does
    assert podctl.recorded()["pods"]["box"]["pod_id"] == pod["id"]
    if podctl.api == "graphql":
        assert podctl.operations["ListPods"] == 1 and podctl.operations["GpuOffers"] == 1
    else:  # v2's create answer has no runtime yet: one readiness poll; a catalog per cloud
        assert podctl.operations["ListPods"] == 2 and podctl.operations["GpuCatalog"] == 2

    podctl.operations.clear()
    plan = podctl("plan", "--detailed-exitcode", "-f", str(podctl.spec))
    assert plan.code == 0, plan.out + plan.err
    assert "No changes" in plan.out
    assert podctl.operations == {"ListPods": 1}  # nothing to place: no gpuTypes

    podctl.operations.clear()
    serial = podctl.recorded()["serial"]
    again = podctl("apply", "-y", "-f", str(podctl.spec))
    assert again.code == 0, again.err
    assert podctl.mutations() == {}
    assert podctl.recorded()["serial"] == serial  # nothing new to record
    assert [p["id"] for p in podctl.pods()] == [pod["id"]]


def test_plan_detailed_exitcode_is_2_with_changes(podctl: Podctl) -> None:
    result = podctl("plan", "--detailed-exitcode", "-f", str(podctl.spec))
    assert result.code == 2, result.err
    assert podctl.mutations() == {}
    assert podctl.pods() == []


@pytest.mark.both_apis
def test_stop_then_resume(podctl: Podctl) -> None:
    assert podctl("apply", "-y", "-f", str(podctl.spec)).code == 0
    (pod,) = podctl.pods()
    podctl.write(state="stopped")
    podctl.operations.clear()
    stopped = podctl("apply", "-y", "-f", str(podctl.spec))
    assert stopped.code == 0, stopped.err
    assert podctl.mutations() == {"StopPod": 1}
    assert [(p["id"], p["desiredStatus"]) for p in podctl.pods()] == [(pod["id"], "EXITED")]

    podctl.operations.clear()
    podctl.write(state="running")
    resumed = podctl("apply", "-y", "-f", str(podctl.spec))
    assert resumed.code == 0, resumed.err
    assert podctl.mutations() == {"ResumePod": 1}
    assert [(p["id"], p["desiredStatus"]) for p in podctl.pods()] == [(pod["id"], "RUNNING")]


@pytest.mark.both_apis
def test_absent_terminates_and_then_is_converged(podctl: Podctl) -> None:
    assert podctl("apply", "-y", "-f", str(podctl.spec)).code == 0
    podctl.write(state="absent")
    result = podctl("apply", "-y", "-f", str(podctl.spec))
    assert result.code == 0, result.err
    assert podctl.pods() == []
    assert "box" not in podctl.recorded()["pods"]
    plan = podctl("plan", "--detailed-exitcode", "-f", str(podctl.spec))
    assert plan.code == 0, plan.out


def test_stopped_with_no_pod_creates_nothing(podctl: Podctl) -> None:
    podctl.write(state="stopped")
    plan = podctl("plan", "--detailed-exitcode", "-f", str(podctl.spec))
    assert plan.code == 0, plan.out + plan.err
    assert podctl("apply", "-y", "-f", str(podctl.spec)).code == 0
    assert podctl.pods() == [] and podctl.mutations() == {}


@pytest.mark.both_apis
def test_env_change_updates_in_place(podctl: Podctl) -> None:
    assert podctl("apply", "-y", "-f", str(podctl.spec)).code == 0
    (before,) = podctl.pods()
    podctl.write(mode="b")
    podctl.operations.clear()
    result = podctl("apply", "-y", "-f", str(podctl.spec))
    assert result.code == 0, result.err
    assert podctl.mutations() == {"EditPod": 1}
    (after,) = podctl.pods()
    env = dict(item.split("=", 1) for item in after["env"])
    assert after["id"] == before["id"] and env["MODE"] == "b"
    assert env["PODCTL_POD"] == "box"  # the markers survive the edit
    assert podctl("plan", "--detailed-exitcode", "-f", str(podctl.spec)).code == 0


@pytest.mark.both_apis
def test_gpu_count_change_replaces(podctl: Podctl) -> None:
    assert podctl("apply", "-y", "-f", str(podctl.spec)).code == 0
    (before,) = podctl.pods()
    podctl.write(count=2)
    podctl.operations.clear()
    result = podctl("apply", "-y", "-f", str(podctl.spec))
    assert result.code == 0, result.err
    assert podctl.mutations() == {"TerminatePod": 1, "CreatePod": 1}
    (after,) = podctl.pods()
    assert after["id"] != before["id"] and after["gpuCount"] == 2
    assert podctl.recorded()["pods"]["box"]["pod_id"] == after["id"]


def test_deleted_outside_podctl_is_recreated_and_says_so(podctl: Podctl) -> None:
    assert podctl("apply", "-y", "-f", str(podctl.spec)).code == 0
    (pod,) = podctl.pods()
    podctl.sb.gql("mutation($id: String!) { podTerminate(input: {podId: $id}) }", {"id": pod["id"]})
    plan = podctl("plan", "-f", str(podctl.spec))
    assert "deleted outside podctl" in plan.out
    assert podctl("apply", "-y", "-f", str(podctl.spec)).code == 0
    (new,) = podctl.pods()
    assert new["id"] != pod["id"]


def test_gpu_fallback_under_exhaustion(podctl: Podctl) -> None:
    podctl.sb.faults({"exhaust": ["NVIDIA RTX A4000"]})
    result = podctl("apply", "-y", "-f", str(podctl.spec))
    assert result.code == 0, result.err
    assert "NVIDIA RTX A5000" in result.out
    (pod,) = podctl.pods()
    assert pod["machine"]["gpuTypeId"] == "NVIDIA RTX A5000"
    assert podctl.recorded()["pods"]["box"]["gpu_type_id"] == "NVIDIA RTX A5000"
    assert podctl.mutations() == {"CreatePod": 2}


@pytest.mark.both_apis
def test_adoption_with_the_lockfile_deleted(podctl: Podctl) -> None:
    assert podctl("apply", "-y", "-f", str(podctl.spec)).code == 0
    (pod,) = podctl.pods()
    podctl.lockfile.unlink()
    podctl.operations.clear()
    result = podctl("apply", "-y", "-f", str(podctl.spec))
    assert result.code == 0, result.err
    assert podctl.mutations() == {}
    assert [p["id"] for p in podctl.pods()] == [pod["id"]]
    assert podctl.recorded()["pods"]["box"]["pod_id"] == pod["id"]


@pytest.mark.both_apis
def test_lost_create_response_leaves_exactly_one_pod(podctl: Podctl) -> None:
    podctl.sb.faults({"lose_responses": 1})
    lost = podctl("apply", "-y", "-f", str(podctl.spec))
    # the create happened, its answer was lost: one listing finds the pod by its uid marker
    assert lost.code == 0, lost.out + lost.err
    assert "the create's answer was lost; found" in lost.out
    (pod,) = podctl.pods()
    assert podctl.recorded()["pods"]["box"]["pod_id"] == pod["id"]
    assert podctl.recorded()["intents"] == []
    assert podctl.mutations()["CreatePod"] == 1
    # a second pod of the stack carrying the same pod's markers: an orphan
    podctl.sb.create(
        name="e2e-box",
        env=[
            {"key": "PODCTL_STACK", "value": "e2e"},
            {"key": "PODCTL_POD", "value": "box"},
            {"key": "PODCTL_UID", "value": "stray"},
        ],
    )
    assert len(podctl.pods()) == 2
    healed = podctl("apply", "-y", "-f", str(podctl.spec))
    assert healed.out.count("terminate pod.box[") == 1
    assert healed.code == 0, healed.out + healed.err
    assert "orphan" in healed.out
    (left,) = podctl.pods()
    recorded = podctl.recorded()
    assert recorded["pods"]["box"]["pod_id"] == left["id"]
    assert recorded["intents"] == []
    assert podctl("plan", "--detailed-exitcode", "-f", str(podctl.spec)).code == 0


def test_pods_without_our_markers_are_never_touched(podctl: Podctl) -> None:
    stranger = podctl.sb.create(name="e2e-box")
    podctl.write(state="absent")
    assert podctl("apply", "-y", "-f", str(podctl.spec)).code == 0
    assert [p["id"] for p in podctl.pods()] == [stranger["id"]]


def test_protect_blocks_destroy_without_force(podctl: Podctl) -> None:
    podctl.write(protect=True)
    assert podctl("apply", "-y", "-f", str(podctl.spec)).code == 0
    refused = podctl("destroy", "-y", "-f", str(podctl.spec))
    assert refused.code == 1
    assert "protect" in refused.err and "nothing was changed" in refused.err
    assert len(podctl.pods()) == 1
    forced = podctl("destroy", "-y", "--force", "-f", str(podctl.spec))
    assert forced.code == 0, forced.err
    assert podctl.pods() == []


def test_apply_without_a_terminal_and_without_y_is_refused(podctl: Podctl) -> None:
    result = podctl("apply", "-f", str(podctl.spec))
    assert result.code == 1
    assert "pass -y/--auto-approve" in result.err
    assert podctl.pods() == [] and podctl.mutations() == {}


def test_not_ready_in_time_terminates_what_it_created(podctl: Podctl) -> None:
    podctl.sb.faults({"start_delay": 60})
    try:
        result = podctl("apply", "-y", "--timeout", "1s", "-f", str(podctl.spec))
    finally:
        podctl.sb.faults({"start_delay": 0})
    assert result.code == 1
    assert "the container never started" in result.out
    assert "podctl terminated the pod it created" in result.out
    assert podctl.pods() == []
    assert podctl.recorded()["pods"] == {} and podctl.recorded()["intents"] == []


def test_resume_with_the_host_gpu_taken_fails_clearly(podctl: Podctl) -> None:
    assert podctl("apply", "-y", "-f", str(podctl.spec)).code == 0
    (pod,) = podctl.pods()
    podctl.write(state="stopped")
    assert podctl("apply", "-y", "-f", str(podctl.spec)).code == 0
    podctl.sb.faults({"gpu_taken": [pod["id"]]})
    podctl.write(state="running")
    result = podctl("apply", "-y", "-f", str(podctl.spec))
    assert result.code == 1
    assert "the GPUs of its host machine are taken" in result.out
    assert "on_resume_failure: wait" in result.out
    assert [(p["id"], p["desiredStatus"]) for p in podctl.pods()] == [(pod["id"], "EXITED")]


def test_spot_pod_is_rented_at_its_bid(podctl: Podctl) -> None:
    podctl.write(
        text=(
            "version: 1\nstack: e2e\npods:\n  box:\n    image: img:1\n"
            "    gpu: {type: NVIDIA RTX A4000}\n    spot: {bid_per_gpu: 0.2}\n"
            "    ports: [8888/http]\n"
        )
    )
    result = podctl("apply", "-y", "-f", str(podctl.spec))
    assert result.code == 0, result.out + result.err
    assert podctl.mutations() == {"CreateSpotPod": 1}
    assert podctl("plan", "--detailed-exitcode", "-f", str(podctl.spec)).code == 0


def test_transient_errors_are_retried_and_said_so(podctl: Podctl) -> None:
    podctl.sb.faults({"errors": {"kinds": ["502"], "count": 2, "retry_after": 0}})
    result = podctl("apply", "-y", "-f", str(podctl.spec))
    assert result.code == 0, result.err
    assert "HTTP 502; retrying in" in result.err
    assert len(podctl.pods()) == 1
