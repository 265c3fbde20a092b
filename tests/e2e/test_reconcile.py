"""`podctl reconcile` against the sandbox: converge, stay quiet, heal drift, back off, forget."""

from __future__ import annotations

import json
import os
import random
from typing import Any

import pytest

from reconciler.cli.wiring import PORTS
from reconciler.sandbox import control
from reconciler.workflow import Connection
from reconciler.workflow.pods import ApplyRequest, PlanRequest
from reconciler.workflow.reconcile import Backoff, LoopOptions, Round, reconcile
from tests.e2e.conftest import SECRET, Podctl

SPOT_SPEC = """\
version: 1
stack: e2e
pods:
  box:
    image: img:1
    gpu: {type: NVIDIA RTX A4000}
    spot: {bid_per_gpu: 0.2}
    on_resume_failure: fail
"""


def sandbox_requests(podctl: Podctl) -> dict[str, int]:
    counted: dict[str, int] = control.request(podctl.sb.info, "GET", "/_sandbox/status")["requests"]
    return counted


def once(podctl: Podctl, *extra: str) -> Any:
    return podctl("reconcile", "--once", "-f", str(podctl.spec), *extra)


@pytest.mark.both_apis
def test_once_converges_a_fresh_stack_then_a_quiet_round_is_one_request(podctl: Podctl) -> None:
    first = once(podctl)
    assert first.code == 0, first.err
    assert first.out == "round 1 (leader): 1 change: 1 done, 0 failed\n"
    (pod,) = podctl.pods()
    assert pod["desiredStatus"] == "RUNNING"
    assert podctl.recorded()["pods"]["box"]["pod_id"] == pod["id"]

    podctl.operations.clear()
    before = sandbox_requests(podctl)
    quiet = once(podctl)
    after = sandbox_requests(podctl)
    assert quiet.code == 0, quiet.err
    assert quiet.out == "round 1 (leader): converged (1 pod, 1 request)\n"
    assert podctl.operations == {"ListPods": 1}  # no gpuTypes, no mutation
    if podctl.api == "graphql":  # the sandbox's request log counts GraphQL requests
        assert after["total"] - before["total"] == 1
        assert after["mutations"] == before["mutations"]
    assert SECRET not in "".join(podctl.outputs)


def test_a_pod_stopped_outside_podctl_is_resumed(podctl: Podctl) -> None:
    assert once(podctl).code == 0
    (pod,) = podctl.pods()
    podctl.sb.gql(
        "mutation($id: String!) { podStop(input: {podId: $id}) { id } }", {"id": pod["id"]}
    )
    podctl.operations.clear()
    healed = once(podctl)
    assert healed.code == 0, healed.err
    assert healed.out == "round 1 (leader): 1 change: 1 done, 0 failed\n"
    assert podctl.mutations() == {"ResumePod": 1}
    assert [(p["id"], p["desiredStatus"]) for p in podctl.pods()] == [(pod["id"], "RUNNING")]


def test_a_pod_deleted_outside_podctl_is_created_again(podctl: Podctl) -> None:
    assert once(podctl).code == 0
    (pod,) = podctl.pods()
    podctl.sb.gql("mutation($id: String!) { podTerminate(input: {podId: $id}) }", {"id": pod["id"]})
    podctl.operations.clear()
    healed = once(podctl)
    assert healed.code == 0, healed.err
    assert "deleted outside podctl" in healed.err  # the plan, on stderr
    assert podctl.mutations() == {"CreatePod": 1}
    (new,) = podctl.pods()
    assert new["id"] != pod["id"]
    assert podctl.recorded()["pods"]["box"]["pod_id"] == new["id"]


def test_a_preempted_spot_pod_is_bid_resumed(podctl: Podctl) -> None:
    podctl.write(text=SPOT_SPEC)
    assert once(podctl).code == 0
    (pod,) = podctl.pods()
    podctl.sb.faults({"preempt": [pod["id"]]})
    assert [p["desiredStatus"] for p in podctl.pods()] == ["EXITED"]
    podctl.operations.clear()
    healed = once(podctl)
    assert healed.code == 0, healed.err
    assert podctl.mutations() == {"BidResumePod": 1}
    assert podctl.operations["GpuOffers"] == 1  # a resume needs the offers: fetched then only
    assert [(p["id"], p["desiredStatus"]) for p in podctl.pods()] == [(pod["id"], "RUNNING")]


def _round(out: str) -> dict[str, Any]:
    """The one round line of a `--once --format json` run (its events are JSON lines too)."""
    lines = [json.loads(line) for line in out.splitlines()]
    (status,) = [line for line in lines if line["event"] == "round"]
    assert isinstance(status, dict)
    return status


def test_json_lines_parse_and_a_failed_once_exits_1(podctl: Podctl) -> None:
    podctl.sb.faults({"exhaust": ["NVIDIA RTX A4000", "NVIDIA RTX A5000"]})
    failed = once(podctl, "--format", "json")
    assert failed.code == 1, failed.err
    status = _round(failed.out)
    assert status["round"] == 1 and status["outcome"] == "failed"
    assert status["counts"]["failed"] == 1 and status["counts"]["done"] == 0
    assert status["next_in_s"] is None and status["ts"].endswith("+00:00")
    podctl.sb.faults({"restore": ["NVIDIA RTX A4000", "NVIDIA RTX A5000"]})
    ok = once(podctl, "--format", "json")
    assert ok.code == 0, ok.err
    assert _round(ok.out)["outcome"] == "changed"
    quiet = _round(once(podctl, "--format", "json").out)
    assert quiet["outcome"] == "converged" and quiet["error"] is None
    assert quiet["counts"] == {
        "pods": 1,
        "requests": 1,
        "changes": 0,
        "done": 0,
        "failed": 0,
        "skipped": 0,
    }


def test_api_faults_on_30_percent_of_requests_converge_within_8_rounds(podctl: Podctl) -> None:
    podctl.sb.faults(
        {"seed": 7, "errors": {"probability": 0.3, "kinds": ["429", "500", "502", "reset"]}}
    )
    outcomes = []
    for _ in range(8):
        result = once(podctl, "--format", "json")
        outcomes.append(_round(result.out)["outcome"])
        if outcomes[-1] == "converged":
            break
    assert outcomes[-1] == "converged", outcomes
    podctl.sb.faults({"errors": {"probability": 0}})
    assert len(podctl.pods()) == 1  # no duplicate from a retried create


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--interval", "0"], "--interval '0' must be more than 0"),
        (["--interval", "soon"], "--interval 'soon' is not a duration"),
        (["--parallelism", "0"], "--parallelism must be at least 1"),
        (["--format", "markdown"], "`podctl reconcile` has text|json"),
    ],
)
def test_bad_cli_input_fails_at_once_with_exit_2(
    podctl: Podctl, args: list[str], message: str
) -> None:
    result = podctl("reconcile", "-f", str(podctl.spec), *args)
    assert result.code == 2 and message in result.err
    assert podctl.operations == {}


def test_a_spec_error_is_reported_and_retried_next_round(podctl: Podctl) -> None:
    good = podctl.spec.read_text()
    podctl.spec.write_text(good.replace("image: img:1", "image: img:1\n    colour: red"))
    rounds: list[Round] = []

    def fix_spec(_seconds: float) -> None:
        podctl.spec.write_text(good)

    code = reconcile(
        Connection(sandbox=True, env=dict(os.environ), ports=PORTS),
        PlanRequest(paths=(podctl.spec,)),
        ApplyRequest(poll_initial_s=0.02, poll_max_s=0.1),
        LoopOptions(interval_s=7, max_rounds=2),
        on_round=rounds.append,
        on_event=lambda _text: None,
        stopping=lambda: False,
        wait=fix_spec,
    )
    assert code == 0
    first, second = rounds
    assert first.outcome == "error" and first.next_in_s == 7  # the interval: no backoff
    assert "colour" in (first.error or "") and "podctl.yaml" in (first.error or "")
    assert first.text().startswith("round 1 (standby): error: 1 problem(s) in the spec")
    assert first.text().endswith("; next try in 7.0s")
    assert second.outcome == "changed" and second.done == 1 and second.next_in_s is None
    assert len(podctl.pods()) == 1


def test_an_api_error_backs_off(podctl: Podctl) -> None:
    podctl.sb.faults({"errors": {"kinds": ["500"], "count": 100}})
    rounds: list[Round] = []
    code = reconcile(
        Connection(sandbox=True, env=dict(os.environ), ports=PORTS),
        PlanRequest(paths=(podctl.spec,)),
        ApplyRequest(),
        LoopOptions(interval_s=1, max_rounds=3),
        on_round=rounds.append,
        on_event=lambda _text: None,
        stopping=lambda: False,
        wait=lambda _seconds: None,
        backoff=Backoff(1, rng=random.Random(3)),
    )
    podctl.sb.faults({"errors": {"probability": 0}})
    assert code == 0
    assert [r.outcome for r in rounds] == ["error", "error", "error"]
    delays = [r.next_in_s for r in rounds[:2]]
    assert 0.5 <= (delays[0] or 0) < 1 and 1 <= (delays[1] or 0) < 2  # 1s, then 2s, jittered
    assert rounds[0].requests is None and "500" in (rounds[0].error or "")


def test_backoff_is_bounded_by_five_minutes_or_the_interval() -> None:
    backoff = Backoff(60, rng=random.Random(1))
    delays = [backoff.delay(n) for n in range(1, 2000, 7)]
    assert all(0 < d <= 300 for d in delays) and max(delays) > 150
    assert backoff.delay(1) < 5
    assert max(Backoff(3600).delay(n) for n in (20, 21, 22)) <= 3600


def test_a_removed_pod_deleted_outside_podctl_is_forgotten(podctl: Podctl) -> None:
    two = podctl.spec.read_text() + (
        "  spare:\n    image: img:1\n    gpu: {type: NVIDIA RTX A4000}\n    state: running\n"
    )
    podctl.spec.write_text(two)
    assert once(podctl).code == 0
    spare = podctl.recorded()["pods"]["spare"]["pod_id"]
    podctl.write()  # spare leaves the spec...
    podctl.sb.gql("mutation($id: String!) { podTerminate(input: {podId: $id}) }", {"id": spare})
    plan = podctl("plan", "--detailed-exitcode", "-f", str(podctl.spec))  # ...and its pod goes
    assert plan.code == 0, plan.out + plan.err
    assert "pod.spare: forgotten (gone outside podctl)" in plan.out
    podctl.operations.clear()
    quiet = once(podctl)
    assert quiet.code == 0 and "converged" in quiet.out
    assert podctl.mutations() == {}
    assert sorted(podctl.recorded()["pods"]) == ["box"]
    again = podctl("plan", "-f", str(podctl.spec))
    assert "forgotten" not in again.out


def test_after_a_stop_signal_no_new_change_starts_and_started_ones_finish() -> None:
    import asyncio

    from reconciler.executor import PollPolicy, execute
    from reconciler.plans import Action, Outcome
    from tests.executor_fakes import FakeApi, ListJournal, change, desired, plan, spec

    a, b = spec("a"), spec("b")
    asked: list[bool] = []

    def should_start() -> bool:
        asked.append(not asked)  # yes once (a starts), then a signal came: no
        return asked[-1]

    api, journal = FakeApi(), ListJournal()
    result = asyncio.run(
        execute(
            plan(change(a, Action.CREATE), change(b, Action.CREATE)),
            desired(a, b),
            api,
            journal,
            secrets={},
            poll=PollPolicy(initial_s=0.001, max_s=0.002),
            should_start=should_start,
        )
    )
    assert [(r.address, r.outcome) for r in result.results] == [
        ("pod.a", Outcome.DONE),
        ("pod.b", Outcome.SKIPPED),
    ]
    assert result.results[1].message == "not started: podctl is stopping"
    assert api.calls["create_pod"] == 1 and len(api.pods) == 1
