"""The executor against a fake PodBackend: fallbacks, readiness, write-ahead, skips, resume."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from reconciler.backends.runpod_graphql.documents import create_input
from reconciler.errors import ApiResponseError, TransientApiError
from reconciler.executor import PollPolicy, create_request, execute
from reconciler.model import CloudType, OnResumeFailure, PodStatus, SecretRef
from reconciler.plans import Action, ApplyResult, Outcome, Placement, Plan
from reconciler.render.progress import event_line
from tests.executor_fakes import FakeApi, ListJournal, change, desired, plan, spec

FAST = PollPolicy(initial_s=0.001, max_s=0.002)
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def run(the_plan: Plan, api: FakeApi, journal: ListJournal, *pods: Any, **kw: Any) -> ApplyResult:
    kw.setdefault("secrets", {})
    kw.setdefault("poll", FAST)
    kw.setdefault("fingerprint", lambda s: f"fp-{s.name}")
    return asyncio.run(execute(the_plan, desired(*pods), api, journal, now=lambda: NOW, **kw))


# --- create_request -----------------------------------------------------------------------------


def test_create_request_carries_name_markers_secrets_lifetime_and_spot() -> None:
    pod = spec(
        env={"A": "1", "TOKEN": SecretRef("HF")},
        ports=("22/tcp", "8888/http"),
        max_lifetime_s=7200,
        spot_bid_per_gpu=0.3,
        cuda=("12.4",),
        data_center="EU-RO-1",
        min_vcpu=4,
        min_memory_gb=30,
        gpu_count=2,
    )
    request = create_request(
        pod,
        Placement("NVIDIA RTX A5000", CloudType.COMMUNITY),
        stack="st",
        uid="u1",
        secrets={"HF": "s3cret"},
        public_key="ssh-ed25519 AAA",
        now=NOW,
    )
    assert request.name == "st-box"
    assert dict(request.env) == {
        "A": "1",
        "TOKEN": "s3cret",
        "PODCTL_STACK": "st",
        "PODCTL_POD": "box",
        "PODCTL_UID": "u1",
        "PODCTL_CREATED": NOW.isoformat(timespec="seconds"),
        "PUBLIC_KEY": "ssh-ed25519 AAA",
    }
    fields = create_input(request)
    assert fields["terminateAfter"] == "2026-01-02T05:04:05Z"
    assert fields["bidPerGpu"] == 0.3 and request.spot
    assert fields["cloudType"] == "COMMUNITY" and fields["gpuTypeId"] == "NVIDIA RTX A5000"
    assert fields["gpuCount"] == 2 and fields["ports"] == "22/tcp,8888/http"
    assert fields["allowedCudaVersions"] == ["12.4"] and fields["dataCenterId"] == "EU-RO-1"
    assert fields["minVcpuCount"] == 4 and fields["minMemoryInGb"] == 30


# --- create -------------------------------------------------------------------------------------


def test_create_writes_intent_first_then_the_record_and_waits_for_ssh() -> None:
    api, journal = FakeApi(polls_until_ready=2), ListJournal()
    pod = spec()
    result = run(plan(change(pod, Action.CREATE)), api, journal, pod)
    assert result.ok
    (only,) = result.results
    assert only.outcome is Outcome.DONE and only.gpu_type_id == "NVIDIA RTX A4000"
    assert only.message == "landed on NVIDIA RTX A4000 (secure)"
    assert journal.kinds() == ["intend", "created"]
    uid = journal.entries[0][2]
    assert journal.entries[1] == ("created", "box", "pod1", uid, "NVIDIA RTX A4000")
    assert api.calls["list_pods"] >= 2  # it waited for the runtime


def test_create_walks_the_fallback_chain_on_no_capacity() -> None:
    api, journal = FakeApi(exhausted={"NVIDIA RTX A4000"}), ListJournal()
    pod = spec()
    events: list[str] = []
    result = run(
        plan(change(pod, Action.CREATE)),
        api,
        journal,
        pod,
        on_event=lambda e: events.append(event_line(e)),
    )
    assert result.results[0].gpu_type_id == "NVIDIA RTX A5000"
    assert journal.kinds() == ["intend", "create_failed", "intend", "created"]
    assert "pod.box: no capacity on NVIDIA RTX A4000 (secure); trying the next fallback" in events
    assert [r.gpu_type_id for r in api.requests] == ["NVIDIA RTX A4000", "NVIDIA RTX A5000"]


def test_create_with_no_capacity_anywhere_fails_naming_each_fallback() -> None:
    api, journal = FakeApi(exhausted={"NVIDIA RTX A4000", "NVIDIA RTX A5000"}), ListJournal()
    pod = spec()
    result = run(plan(change(pod, Action.CREATE)), api, journal, pod)
    assert not result.ok
    assert result.results[0].message == (
        "no capacity on any fallback: NVIDIA RTX A4000 (secure), NVIDIA RTX A5000 (secure)"
    )


@pytest.mark.parametrize(
    "error",
    [
        TransientApiError("RunPod CreatePod: ReadTimeout", maybe_processed=True),
        ApiResponseError("RunPod answer: data.podFindAndDeployOnDemand.id is not a string"),
    ],
    ids=["no answer", "unreadable answer"],
)
def test_lost_create_answer_keeps_the_intent(error: Exception) -> None:
    api, journal = FakeApi(), ListJournal()
    api.create_error = error
    pod = spec()
    result = run(plan(change(pod, Action.CREATE)), api, journal, pod)
    assert result.results[0].outcome is Outcome.FAILED
    assert "PODCTL_UID marker" in result.results[0].message
    # no pod carried the first uid: that create is dropped and sent again; the second lost
    # answer keeps its intent (the next plan finds the pod by its uid, if there is one)
    assert journal.kinds() == ["intend", "create_failed", "intend"]
    assert api.calls["create_pod"] == 2


def test_a_lost_create_answer_finds_the_pod_by_its_uid_and_goes_on() -> None:
    api, journal = FakeApi(lose_answers=1), ListJournal()
    pod = spec()
    result = run(plan(change(pod, Action.CREATE)), api, journal, pod)
    assert result.ok, result
    assert api.calls["create_pod"] == 1 and len(api.pods) == 1
    assert journal.kinds() == ["intend", "created"]


def test_not_ready_in_time_terminates_what_it_created() -> None:
    api, journal = FakeApi(never_ready=True), ListJournal()
    pod = spec()
    result = run(plan(change(pod, Action.CREATE)), api, journal, pod, timeout_s=0.01)
    message = result.results[0].message
    assert result.results[0].outcome is Outcome.FAILED
    assert "the container never started" in message
    assert "podctl terminated the pod it created" in message
    assert journal.kinds() == ["intend", "created", "terminated"]
    assert api.pods == {}


def test_readiness_polls_once_per_round_for_all_pods() -> None:
    api, journal = FakeApi(polls_until_ready=3), ListJournal()
    pods = [spec(f"p{i}") for i in range(5)]
    result = run(plan(*(change(p, Action.CREATE) for p in pods)), api, journal, *pods)
    assert result.ok
    assert api.calls["list_pods"] == 3  # shared by the five waiting pods
    assert "get_pod" not in api.calls


def test_parallelism_bounds_concurrent_calls() -> None:
    api, journal = FakeApi(), ListJournal()
    pods = [spec(f"p{i}") for i in range(8)]
    the_plan = plan(*(change(p, Action.CREATE) for p in pods))
    assert run(the_plan, api, journal, *pods, parallelism=2).ok
    assert api.max_in_flight <= 2 and api.calls["create_pod"] == 8


def test_then_stop_creates_then_stops() -> None:
    api, journal = FakeApi(), ListJournal()
    pod = spec()
    result = run(plan(change(pod, Action.CREATE, then_stop=True)), api, journal, pod)
    assert result.ok and api.pods["pod1"].desired_status is PodStatus.EXITED


# --- dependencies -------------------------------------------------------------------------------


def test_dependants_of_a_failure_are_skipped() -> None:
    api, journal = FakeApi(exhausted={"NVIDIA RTX A4000", "NVIDIA RTX A5000"}), ListJournal()
    a, b, c = spec("a"), spec("b", gpu_types=("NVIDIA L4",)), spec("c", gpu_types=("NVIDIA L4",))
    the_plan = plan(
        change(a, Action.CREATE),
        change(b, Action.CREATE, depends_on=("pod.a",)),
        change(c, Action.CREATE),
    )
    result = run(the_plan, api, journal, a, b, c)
    outcomes = [r.outcome for r in result.results]
    assert outcomes == [Outcome.FAILED, Outcome.SKIPPED, Outcome.DONE]
    assert result.results[1].message == "skipped because pod.a did not succeed"
    assert [r.name for r in api.requests].count("st-b") == 0


# --- terminate, stop, replace, update -----------------------------------------------------------


def test_terminate_and_already_gone_are_both_done() -> None:
    api, journal = FakeApi(), ListJournal()
    api.add("x1", "st", "box", PodStatus.RUNNING)
    pod = spec()
    gone = spec("gone")
    the_plan = plan(change(pod, Action.TERMINATE, "x1"), change(gone, Action.TERMINATE, "zz"))
    result = run(the_plan, api, journal)
    assert result.ok
    assert journal.entries == [("terminated", "box", "x1"), ("terminated", "gone", "zz")]


def test_stop_keeps_the_recorded_fingerprint() -> None:
    api, journal = FakeApi(), ListJournal()
    api.add("x1", "st", "box", PodStatus.RUNNING)
    pod = spec()
    assert run(plan(change(pod, Action.STOP, "x1")), api, journal, pod).ok
    assert journal.entries == [("touched", "box", "x1", None)]
    assert api.pods["x1"].desired_status is PodStatus.EXITED


def test_replace_terminates_then_creates() -> None:
    api, journal = FakeApi(), ListJournal()
    api.add("x1", "st", "box", PodStatus.RUNNING)
    pod = spec()
    result = run(plan(change(pod, Action.REPLACE, "x1")), api, journal, pod)
    assert result.ok and result.results[0].pod_id == "pod1"
    assert journal.kinds() == ["terminated", "intend", "created"]
    assert list(api.pods) == ["pod1"]


def test_update_edits_in_place_keeping_the_markers() -> None:
    api, journal = FakeApi(), ListJournal()
    seen = api.add("x1", "st", "box", PodStatus.RUNNING)
    pod = spec(image="img:2", env={"K": "v"})
    actual = asyncio.run(api.list_pods())
    result = run(plan(change(pod, Action.UPDATE, "x1")), api, journal, pod, actual=actual)
    assert result.ok
    (edit,) = api.edits
    assert edit["image"] == "img:2"
    assert edit["env"]["PODCTL_UID"] == seen.markers.uid if seen.markers else False
    assert edit["env"]["K"] == "v"
    assert journal.entries == [("touched", "box", "x1", "fp-box")]


# --- resume -------------------------------------------------------------------------------------


def test_resume_spot_uses_bid_resume() -> None:
    api, journal = FakeApi(), ListJournal()
    api.add("x1", "st", "box", PodStatus.EXITED)
    pod = spec(spot_bid_per_gpu=0.2)
    assert run(plan(change(pod, Action.RESUME, "x1")), api, journal, pod).ok
    assert api.calls["bid_resume_pod"] == 1 and api.calls["resume_pod"] == 0


def test_resume_failure_fail_says_what_to_do() -> None:
    api, journal = FakeApi(gpu_taken={"x1"}), ListJournal()
    api.add("x1", "st", "box", PodStatus.EXITED)
    pod = spec()
    result = run(plan(change(pod, Action.RESUME, "x1")), api, journal, pod)
    assert result.results[0].outcome is Outcome.FAILED
    assert result.results[0].message.startswith(
        "cannot resume x1: the GPUs of its host machine are taken (set on_resume_failure: wait"
    )


def test_resume_failure_wait_gives_up_after_the_timeout() -> None:
    api, journal = FakeApi(gpu_taken={"x1"}), ListJournal()
    api.add("x1", "st", "box", PodStatus.EXITED)
    pod = spec(on_resume_failure=OnResumeFailure.WAIT)
    result = run(plan(change(pod, Action.RESUME, "x1")), api, journal, pod, timeout_s=0.02)
    assert api.calls["resume_pod"] >= 2
    assert "gave up after 0.02s of waiting" in result.results[0].message


def test_resume_failure_recreate_makes_a_new_pod() -> None:
    api, journal = FakeApi(gpu_taken={"x1"}), ListJournal()
    api.add("x1", "st", "box", PodStatus.EXITED)
    pod = spec(on_resume_failure=OnResumeFailure.RECREATE)
    result = run(plan(change(pod, Action.RESUME, "x1")), api, journal, pod)
    assert result.ok and result.results[0].pod_id == "pod1"
    assert journal.kinds() == ["terminated", "intend", "created"]


# --- crash safety -------------------------------------------------------------------------------


def test_cancelled_mid_apply_keeps_every_created_pod_journaled() -> None:
    api, journal = FakeApi(never_ready=True), ListJournal()
    pods = [spec(f"p{i}") for i in range(3)]
    the_plan = plan(*(change(p, Action.CREATE) for p in pods))

    async def main() -> None:
        task = asyncio.create_task(
            execute(
                the_plan,
                desired(*pods),
                api,
                journal,
                secrets={},
                poll=FAST,
                fingerprint=lambda s: "fp",
            )
        )
        while api.calls["create_pod"] < 3:
            await asyncio.sleep(0.001)
        await asyncio.sleep(0.005)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    created = {e[2] for e in journal.entries if e[0] == "created"}
    assert created == set(api.pods) == {"pod1", "pod2", "pod3"}


def test_noop_of_an_adopted_pod_is_recorded() -> None:
    api, journal = FakeApi(), ListJournal()
    api.add("x1", "st", "box", PodStatus.RUNNING)
    pod = spec()
    result = run(plan(change(pod, Action.NOOP, "x1")), api, journal, pod)
    assert result.results == ()
    assert journal.entries == [("touched", "box", "x1", "fp-box")]
