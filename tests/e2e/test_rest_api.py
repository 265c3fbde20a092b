"""`podctl --api rest` on the sandbox's REST v2: the same plans, lockfile and pods as GraphQL."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from reconciler.backends.runpod_rest import RestClient
from tests.e2e.conftest import Podctl

REPO = Path(__file__).resolve().parents[2]

SSH_SPEC = """\
version: 1
stack: e2e
pods:
  box:
    image: img:1
    gpu: {type: [NVIDIA RTX A4000, NVIDIA RTX A5000], count: 1}
    ports: [22/tcp]
    env:
      MODE: "a"
"""

SPOT_SPEC = """\
version: 1
stack: e2e
pods:
  cheap:
    image: img:1
    gpu: {type: NVIDIA RTX A4000, count: 1}
    spot: {bid_per_gpu: 0.2}
"""


@pytest.fixture
def rest(podctl: Podctl, monkeypatch: pytest.MonkeyPatch) -> Podctl:
    """The podctl fixture, on a sandbox that speaks REST v2; REST requests counted by operation."""
    answer = httpx.get(
        podctl.sb.url + "/v2/pods", headers={"Authorization": f"Bearer {podctl.sb.key}"}
    )
    assert answer.status_code == 200 and "pods" in answer.json(), answer.text
    original = RestClient._round_trip

    async def counting(
        self: RestClient, method: str, url: str, body: object, operation: str, ends: float
    ) -> tuple[int, httpx.Headers, bytes]:
        podctl.operations[f"rest:{operation}"] += 1
        return await original(self, method, url, body, operation, ends)

    monkeypatch.setattr(RestClient, "_round_trip", counting)
    return podctl


def graphql_requests(tool: Podctl) -> int:
    return sum(v for k, v in tool.operations.items() if not k.startswith("rest:"))


def test_the_quickstart_over_rest(rest: Podctl) -> None:
    spec = rest.folder / "quickstart.yaml"
    spec.write_text((REPO / "specs" / "quickstart.yaml").read_text())
    r = rest("--api", "rest", "apply", "-y", "-f", str(spec))
    assert r.code == 0, r.out + r.err
    assert "Apply complete: 4 done, 0 failed, 0 skipped." in r.out
    results = rest.folder / "results" / "quickstart"
    assert (results / "hello.txt").read_text().startswith("hello from ")
    assert sorted(p.name for p in results.iterdir()) == ["count.txt", "hello.txt"]
    assert [p for p in rest.pods() if p["name"].startswith("quickstart-")] == []
    assert graphql_requests(rest) == 0
    assert rest.operations["rest:CreatePod"] == 1 and rest.operations["rest:TerminatePod"] == 1
    r = rest("--api", "rest", "apply", "-y", "-f", str(spec))
    assert r.code == 0 and "No changes." in r.out, r.out + r.err


def test_a_pod_made_over_graphql_plans_no_change_over_rest(rest: Podctl) -> None:
    assert rest("apply", "-y", "-f", str(rest.spec)).code == 0
    recorded = rest.recorded()
    (pod,) = rest.pods()
    rest.operations.clear()
    plan = rest("--api", "rest", "plan", "--detailed-exitcode", "-f", str(rest.spec))
    assert plan.code == 0, plan.out + plan.err
    assert "No changes" in plan.out
    assert graphql_requests(rest) == 0 and rest.operations["rest:ListPods"] == 1
    again = rest("--api", "rest", "apply", "-y", "-f", str(rest.spec))
    assert again.code == 0 and "No changes." in again.out, again.out + again.err
    assert rest.recorded() == recorded  # the same records, not a byte moved
    assert [p["id"] for p in rest.pods()] == [pod["id"]]


def test_a_pod_made_over_rest_plans_no_change_over_graphql(
    rest: Podctl, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PODCTL_API", "rest")  # the environment picks REST as --api would
    made = rest("apply", "-y", "-f", str(rest.spec))
    assert made.code == 0, made.out + made.err
    assert graphql_requests(rest) == 0
    (pod,) = rest.pods()
    env = dict(item.split("=", 1) for item in pod["env"])
    assert (env["PODCTL_STACK"], env["PODCTL_POD"]) == ("e2e", "box")
    record = rest.recorded()["pods"]["box"]
    assert record["pod_id"] == pod["id"] and record["uid"] == env["PODCTL_UID"]
    assert (record["gpu_type_id"], record["cloud"]) == ("NVIDIA RTX A4000", "secure")
    plan = rest("--api", "graphql", "plan", "--detailed-exitcode", "-f", str(rest.spec))
    assert plan.code == 0, plan.out + plan.err
    assert "No changes" in plan.out


def test_an_edit_over_rest_is_a_patch_that_keeps_the_markers(rest: Podctl) -> None:
    assert rest("--api", "rest", "apply", "-y", "-f", str(rest.spec)).code == 0
    (before,) = rest.pods()
    rest.write(mode="b")
    rest.operations.clear()
    r = rest("--api", "rest", "apply", "-y", "-f", str(rest.spec))
    assert r.code == 0, r.out + r.err
    assert rest.operations["rest:EditPod"] == 1 and rest.operations["rest:CreatePod"] == 0
    (after,) = rest.pods()
    env = dict(item.split("=", 1) for item in after["env"])
    assert after["id"] == before["id"] and env["MODE"] == "b"
    assert {"PODCTL_STACK", "PODCTL_POD", "PODCTL_UID"} <= set(env)
    for api in ("rest", "graphql"):
        plan = rest("--api", api, "plan", "--detailed-exitcode", "-f", str(rest.spec))
        assert plan.code == 0, (api, plan.out + plan.err)


def test_stop_and_resume_over_rest(rest: Podctl) -> None:
    assert rest("--api", "rest", "apply", "-y", "-f", str(rest.spec)).code == 0
    (pod,) = rest.pods()
    rest.write(state="stopped")
    assert rest("--api", "rest", "apply", "-y", "-f", str(rest.spec)).code == 0
    assert [(p["id"], p["desiredStatus"]) for p in rest.pods()] == [(pod["id"], "EXITED")]
    rest.write(state="running")
    r = rest("--api", "rest", "apply", "-y", "-f", str(rest.spec))
    assert r.code == 0, r.out + r.err
    assert [(p["id"], p["desiredStatus"]) for p in rest.pods()] == [(pod["id"], "RUNNING")]
    assert graphql_requests(rest) == 0


def test_capacity_fallback_over_rest(rest: Podctl) -> None:
    rest.sb.faults({"exhaust": ["NVIDIA RTX A4000"]})
    try:
        r = rest("--api", "rest", "apply", "-y", "-f", str(rest.spec))
    finally:
        rest.sb.faults({"restore": ["NVIDIA RTX A4000"]})
    assert r.code == 0, r.out + r.err
    assert "no capacity on NVIDIA RTX A4000 (secure); trying the next fallback" in r.out + r.err
    assert rest.operations["rest:CreatePod"] == 2
    (pod,) = rest.pods()
    assert pod["machine"]["gpuTypeId"] == "NVIDIA RTX A5000"
    assert rest.recorded()["pods"]["box"]["gpu_type_id"] == "NVIDIA RTX A5000"


def test_a_lost_create_answer_over_rest_is_found_by_its_uid(rest: Podctl) -> None:
    rest.sb.faults({"lose_responses": {"count": 1, "operations": ["rest:createPod"]}})
    r = rest("--api", "rest", "apply", "-y", "-f", str(rest.spec))
    assert r.code == 0, r.out + r.err
    assert "found" in r.out + r.err and "by its uid" in r.out + r.err
    (pod,) = rest.pods()  # one pod, never a second one
    assert rest.recorded()["pods"]["box"]["pod_id"] == pod["id"]
    assert rest.operations["rest:CreatePod"] == 1


def test_a_spot_pod_under_rest_is_a_plan_error(rest: Podctl) -> None:
    rest.write(text=SPOT_SPEC)
    r = rest("--api", "rest", "plan", "-f", str(rest.spec))
    assert r.code == 1, r.out + r.err
    assert "pod.cheap: spot pods need --api graphql while RunPod offers them" in r.out + r.err
    r = rest("--api", "rest", "apply", "-y", "-f", str(rest.spec))
    assert r.code == 1 and "nothing was changed" in r.err, r.out + r.err
    assert rest.pods() == [] and not rest.lockfile.exists()
    assert rest("--api", "graphql", "plan", "-f", str(rest.spec)).code in (0, 2)


def test_pod_logs_over_rest_and_a_clear_no_over_graphql(rest: Podctl) -> None:
    rest.write(text=SSH_SPEC)
    assert rest("--api", "rest", "apply", "-y", "-f", str(rest.spec)).code == 0
    r = rest("--api", "rest", "logs", "pod.box", "--file", str(rest.spec))
    assert r.code == 0, r.out + r.err
    assert r.out.strip(), "the sandbox's container log has lines"
    r = rest("logs", "pod.box", "--file", str(rest.spec))
    assert r.code == 2
    assert "RunPod's GraphQL API has no pod logs" in r.err and "--api rest" in r.err
    r = rest("--api", "rest", "logs", "pod.nope", "--file", str(rest.spec))
    assert r.code == 2 and "No pod 'nope'" in r.err


def test_gpus_over_rest_show_stock_and_cuda(rest: Podctl) -> None:
    r = rest("--api", "rest", "gpus")
    assert r.code == 0, r.out + r.err
    assert "CUDA" in r.out.splitlines()[0] and "NVIDIA RTX A4000" in r.out
    data = json.loads(rest("--api", "rest", "gpus", "--format", "json").out)
    a4000 = next(g for g in data if g["gpu_type_id"] == "NVIDIA RTX A4000")
    assert a4000["secure_stock"] in ("High", "Medium", "Low") and a4000["cuda_versions"]
    assert a4000["secure_min_bid"] is None  # no spot on v2


def test_a_volume_below_v2s_floor_is_a_plan_error_under_rest(rest: Podctl) -> None:
    rest.write(text=SSH_SPEC.replace("    ports: [22/tcp]\n", "    disk: {volume_gb: 5}\n"))
    r = rest("--api", "rest", "plan", "-f", str(rest.spec))
    assert r.code == 1, r.out + r.err
    assert "disk.volume_gb 5 is below the 10 GB RunPod's REST API v2 makes" in r.out + r.err
    assert rest("--api", "graphql", "plan", "-f", str(rest.spec)).code in (0, 2)


def test_the_watchdog_of_a_pod_made_over_rest_ends_it_with_podctl_gone(rest: Podctl) -> None:
    from tests.e2e.test_lifetime import WATCHED
    from tests.e2e.test_reconcile_loop import wait_for

    rest.write(text=WATCHED.format(lifetime="20s", extra=""))
    r = rest("--api", "rest", "apply", "-y", "-f", str(rest.spec))
    assert r.code == 0, r.out + r.err
    assert "watchdog armed" in r.out + r.err, r.out
    rest.lockfile.unlink()  # podctl is gone, and so is its memory of the pod
    wait_for(lambda: rest.pods() == [], timeout=60)


def test_the_plan_text_is_the_same_on_both_apis(rest: Podctl) -> None:
    def both() -> tuple[str, str]:
        graphql = rest("--api", "graphql", "plan", "-f", str(rest.spec))
        over_rest = rest("--api", "rest", "plan", "-f", str(rest.spec))
        assert graphql.code == over_rest.code == 0, graphql.err + over_rest.err
        return graphql.out, over_rest.out

    graphql, over_rest = both()  # a create: the fallback chain with its prices
    assert "NVIDIA RTX A5000" in graphql and over_rest == graphql
    assert rest("apply", "-y", "-f", str(rest.spec)).code == 0
    rest.write(mode="b", count=2)  # an update and a replace
    graphql, over_rest = both()
    assert "MODE" in graphql and over_rest == graphql


def test_a_resume_with_the_host_gpu_taken_over_rest_fails_as_on_graphql(rest: Podctl) -> None:
    assert rest("--api", "rest", "apply", "-y", "-f", str(rest.spec)).code == 0
    (pod,) = rest.pods()
    rest.write(state="stopped")
    assert rest("--api", "rest", "apply", "-y", "-f", str(rest.spec)).code == 0
    rest.sb.faults({"gpu_taken": [pod["id"]]})
    rest.write(state="running")
    result = rest("--api", "rest", "apply", "-y", "-f", str(rest.spec))
    assert result.code == 1
    assert "the GPUs of its host machine are taken" in result.out
    assert [(p["id"], p["desiredStatus"]) for p in rest.pods()] == [(pod["id"], "EXITED")]


def test_transient_errors_over_rest_are_retried_and_said_so(rest: Podctl) -> None:
    rest.sb.faults({"errors": {"kinds": ["429"], "count": 2, "retry_after": 0}})
    result = rest("--api", "rest", "apply", "-y", "-f", str(rest.spec))
    assert result.code == 0, result.out + result.err
    assert "HTTP 429" in result.err and "retrying in" in result.err
    assert len(rest.pods()) == 1 and rest.operations["rest:CreatePod"] <= 3


def test_no_funds_over_rest_stops_at_once_and_says_so(rest: Podctl) -> None:
    rest.sb.faults({"refuse_creates": {"status": 402, "count": 5}})
    try:
        r = rest("--api", "rest", "apply", "-y", "-f", str(rest.spec))
    finally:
        rest.sb.faults({"refuse_creates": None})
    assert r.code == 1, r.out + r.err
    assert "HTTP 402" in r.out + r.err and "has no funds" in r.out + r.err
    assert rest.operations["rest:CreatePod"] == 1  # not the next fallback: no candidate will do
    assert rest.pods() == [] and rest.recorded()["intents"] == []


def test_adoption_and_orphan_cleanup_over_rest(rest: Podctl) -> None:
    assert rest("apply", "-y", "-f", str(rest.spec)).code == 0  # made over GraphQL
    (pod,) = rest.pods()
    rest.lockfile.unlink()
    rest.operations.clear()
    adopted = rest("--api", "rest", "apply", "-y", "-f", str(rest.spec))
    assert adopted.code == 0, adopted.out + adopted.err
    assert rest.operations["rest:CreatePod"] == 0 and graphql_requests(rest) == 0
    assert rest.recorded()["pods"]["box"]["pod_id"] == pod["id"]
    # a stray pod made over REST with the same pod's markers: an orphan of the stack
    stray = httpx.post(
        rest.sb.url + "/v2/pods",
        headers={"Authorization": f"Bearer {rest.sb.key}"},
        json={
            "name": "e2e-box",
            "image": "img:1",
            "gpu": {"id": "NVIDIA RTX A4000"},
            "env": {"PODCTL_STACK": "e2e", "PODCTL_POD": "box", "PODCTL_UID": "stray"},
        },
    )
    assert stray.status_code == 201, stray.text
    healed = rest("--api", "rest", "apply", "-y", "-f", str(rest.spec))
    assert healed.code == 0, healed.out + healed.err
    assert "orphan" in healed.out and healed.out.count("terminate pod.box[") == 1
    assert [p["id"] for p in rest.pods()] == [pod["id"]]
    assert rest("--api", "rest", "plan", "--detailed-exitcode", "-f", str(rest.spec)).code == 0


def test_a_refused_create_over_rest_stops_with_the_key_named(rest: Podctl) -> None:
    rest.sb.faults({"refuse_creates": {"status": 403, "count": 5}})
    try:
        r = rest("--api", "rest", "apply", "-y", "-f", str(rest.spec))
    finally:
        rest.sb.faults({"refuse_creates": None})
    assert r.code == 1, r.out + r.err
    assert "HTTP 403" in r.out + r.err and "the API key was refused" in r.out + r.err
    assert rest.operations["rest:CreatePod"] == 1
    assert rest.pods() == [] and rest.recorded()["intents"] == []


def test_a_saved_graphql_plan_with_a_spot_pod_is_refused_under_rest(rest: Podctl) -> None:
    rest.write(text=SPOT_SPEC)
    saved = rest.folder / "plan.json"
    assert rest("plan", "-out", str(saved), "-f", str(rest.spec)).code == 0
    r = rest("--api", "rest", "apply", str(saved))
    assert r.code == 1, r.out + r.err
    assert "spot pods need --api graphql" in r.err and "nothing was changed" in r.err
    assert rest.pods() == [] and rest.operations["rest:CreatePod"] == 0


def test_status_over_rest_is_the_status_over_graphql(rest: Podctl) -> None:
    rest.write(text=SSH_SPEC)
    assert rest("--api", "rest", "apply", "-y", "-f", str(rest.spec)).code == 0

    def rows(api: str) -> list[dict[str, object]]:
        r = rest("--api", api, "status", "--format", "json", "--file", str(rest.spec))
        assert r.code == 0, r.out + r.err
        pods: list[dict[str, object]] = json.loads(r.out)["pods"]
        # v2's Pod has no GPU display name: status shows the type id there
        return [{k: v for k, v in p.items() if k not in ("uptime_s", "gpu")} for p in pods]

    over_rest = rows("rest")
    assert over_rest == rows("graphql")
    assert over_rest[0]["actual"] == "RUNNING" and over_rest[0]["ssh"]
