"""Serverless endpoints through the CLI on the sandbox: apply creates, a second plan is empty,
an edit updates in place, state: absent and destroy delete, foreign endpoints are never
touched, import adopts, protect refuses, and RunPod's idle lowering of workers.max is named
and restored. The sandbox validates each body as RunPod's schema does (runpod-serverless.md
§1.3/§1.4) and lowers workers.max as RunPod does (§1.6, `POST /_sandbox/serverless/idle`).
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import SECRET, Podctl, Result

SPEC = """\
version: 1
stack: e2e
endpoints:
  scorer:
    image: {image}
    gpu: {{pools: [ADA_24, AMPERE_24]}}
    workers: {{min: 0, max: 5}}
    idle_timeout: 7s
    execution_timeout: 2m
    flashboot: true
    env:
      MODE: fast
      TOKEN: {{from_env: E2E_TOKEN}}
    state: {state}
    protect: {protect}
"""


def write(
    podctl: Podctl, image: str = "org/scorer:v1", state: str = "present", protect: bool = False
) -> None:
    podctl.write(text=SPEC.format(image=image, state=state, protect=str(protect).lower()))


def cli(podctl: Podctl, *args: str) -> Result:
    return podctl(*args, "-f", str(podctl.spec))


def rest(podctl: Podctl, method: str, path: str, body: Any = None) -> httpx.Response:
    return httpx.request(
        method,
        podctl.sb.url + path,
        json=body,
        headers={"Authorization": f"Bearer {podctl.sb.key}"},
        timeout=10,
    )


def endpoints(podctl: Podctl) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = rest(podctl, "GET", "/v2/serverless").json()["endpoints"]
    return listed


def test_apply_creates_then_no_changes_then_update_then_absent(podctl: Podctl) -> None:
    write(podctl)
    applied = cli(podctl, "apply", "-y")
    assert applied.code == 0, applied.err
    (made,) = endpoints(podctl)
    assert made["name"] == "e2e-scorer"
    # every field was sent: podctl's values, not RunPod's disagreeing defaults
    assert made["workers"] == {"min": 0, "max": 5, "idleTimeout": 7}
    assert made["timeout"] == 120000 and made["flashboot"] == "FLASHBOOT"
    assert made["scaling"] == {"type": "QUEUE_DELAY", "queueDelay": 4.0}
    assert made["env"] == {
        "MODE": "fast",
        "TOKEN": SECRET,
        "PODCTL_STACK": "e2e",
        "PODCTL_ENDPOINT": "scorer",
    }
    assert podctl.recorded()["endpoints"]["scorer"]["endpoint_id"] == made["id"]
    again = cli(podctl, "plan", "--detailed-exitcode")
    assert again.code == 0, again.out + again.err
    assert "No changes." in again.out

    write(podctl, image="org/scorer:v2")
    plan = cli(podctl, "plan")
    assert f"~ update endpoint.scorer ({made['id']}): changed: image" in plan.out
    assert '~ image: "org/scorer:v1" -> "org/scorer:v2"' in plan.out
    assert cli(podctl, "apply", "-y").code == 0
    (updated,) = endpoints(podctl)
    assert updated["id"] == made["id"] and updated["image"] == "org/scorer:v2"
    assert cli(podctl, "plan", "--detailed-exitcode").code == 0

    write(podctl, image="org/scorer:v2", state="absent")
    plan = cli(podctl, "plan")
    assert f"- delete endpoint.scorer ({made['id']}): state: absent" in plan.out
    done = cli(podctl, "apply", "-y")
    assert done.code == 0, done.err
    assert f"endpoint.scorer (delete): deleted {made['id']}" in done.out
    assert endpoints(podctl) == []
    assert "endpoints" not in podctl.recorded()
    assert cli(podctl, "plan", "--detailed-exitcode").code == 0
    assert all(SECRET not in text for text in podctl.outputs)
    assert SECRET not in podctl.lockfile.read_text()


def test_destroy_deletes_and_protect_refuses(podctl: Podctl) -> None:
    write(podctl, protect=True)
    assert cli(podctl, "apply", "-y").code == 0
    (made,) = endpoints(podctl)
    refused = cli(podctl, "destroy", "-y")
    assert refused.code == 1
    assert (
        "endpoint.scorer is protected (protect: true) and this plan would delete it (destroy); "
        "run `podctl destroy --force` to destroy it anyway"
    ) in refused.err
    assert [e["id"] for e in endpoints(podctl)] == [made["id"]]
    write(podctl, state="absent", protect=True)
    refused = cli(podctl, "apply", "-y")
    assert refused.code == 1 and "set protect: false on endpoints.scorer" in refused.err
    write(podctl, protect=False)
    destroyed = cli(podctl, "destroy", "-y")
    assert destroyed.code == 0, destroyed.err
    assert endpoints(podctl) == []


def test_an_endpoint_without_the_stacks_markers_is_never_touched(podctl: Podctl) -> None:
    body = {
        "name": "e2e-scorer",  # even its name: only the markers count
        "type": "QUEUE",
        "image": "someone/else:1",
        "gpu": {"pools": ["ADA_24"]},
        "scaling": {"type": "QUEUE_DELAY", "queueDelay": 4},
        "env": {"PODCTL_STACK": "other", "PODCTL_ENDPOINT": "scorer"},
    }
    foreign = rest(podctl, "POST", "/v2/serverless", body).json()
    write(podctl)
    assert cli(podctl, "apply", "-y").code == 0
    assert cli(podctl, "destroy", "-y").code == 0
    assert [e["id"] for e in endpoints(podctl)] == [foreign["id"]]
    assert endpoints(podctl)[0]["image"] == "someone/else:1"


def test_import_adopts_an_existing_endpoint(podctl: Podctl) -> None:
    body = {
        "name": "hand-made",
        "type": "QUEUE",
        "image": "org/scorer:v1",
        "gpu": {"pools": ["ADA_24", "AMPERE_24"]},
        "scaling": {"type": "QUEUE_DELAY", "queueDelay": 4},
        "workers": {"min": 0, "max": 5, "idleTimeout": 7},
        "timeout": 120000,
        "flashboot": "FLASHBOOT",
        "env": {"MODE": "fast", "TOKEN": SECRET},
    }
    theirs = rest(podctl, "POST", "/v2/serverless", body).json()
    write(podctl)
    imported = cli(podctl, "import", "endpoint.scorer", theirs["id"])
    assert imported.code == 0, imported.err
    assert f"Imported endpoint {theirs['id']} as endpoint.scorer" in imported.err + imported.out
    plan = cli(podctl, "plan")
    assert f"~ update endpoint.scorer ({theirs['id']})" in plan.out
    assert '+ env.PODCTL_ENDPOINT: "scorer"' in plan.out  # podctl marks what it manages
    assert "create endpoint.scorer" not in plan.out
    assert cli(podctl, "apply", "-y").code == 0
    (one,) = endpoints(podctl)
    assert one["id"] == theirs["id"] and one["env"]["PODCTL_STACK"] == "e2e"
    assert cli(podctl, "plan", "--detailed-exitcode").code == 0
    unknown = cli(podctl, "import", "endpoint.scorer", "nope")
    assert unknown.code == 1 and "already records endpoint" in unknown.err


def test_a_lost_lockfile_adopts_the_endpoint_by_its_markers(podctl: Podctl) -> None:
    write(podctl)
    assert cli(podctl, "apply", "-y").code == 0
    podctl.lockfile.unlink()
    plan = cli(podctl, "plan", "--detailed-exitcode")
    assert plan.code == 0, plan.out
    assert cli(podctl, "apply", "-y").code == 0
    (made,) = endpoints(podctl)
    assert podctl.recorded()["endpoints"]["scorer"]["endpoint_id"] == made["id"]


@pytest.mark.parametrize(("days", "lowered", "idle"), [(3, 2, 3), (8, 0, 7)])
def test_runpods_idle_lowering_of_workers_max_is_named_and_restored(
    podctl: Podctl, days: int, lowered: int, idle: int
) -> None:
    write(podctl)
    assert cli(podctl, "apply", "-y").code == 0
    (made,) = endpoints(podctl)
    answer = rest(
        podctl, "POST", "/_sandbox/serverless/idle", {"endpoint": made["id"], "days": days}
    )
    assert answer.json()["workers"]["max"] == lowered
    plan = cli(podctl, "plan", "--detailed-exitcode")
    assert plan.code == 2
    assert (
        f"endpoint.scorer: RunPod lowered workers.max to {lowered} (its automatic scale-down of "
        f"an endpoint idle for {idle} days); apply restores it"
    ) in plan.out
    assert f"workers.max: {lowered} -> 5  (changed outside podctl)" in plan.out
    assert cli(podctl, "apply", "-y").code == 0
    (restored,) = endpoints(podctl)
    assert restored["workers"]["max"] == 5
    # restoring workers.max rolls out no new release: the container fields were not sent
    releases = rest(podctl, "GET", f"/v2/serverless/{made['id']}/releases").json()
    assert releases["endpointVersion"] == 1
    assert cli(podctl, "plan", "--detailed-exitcode").code == 0


def test_status_shows_each_endpoint_with_its_health(podctl: Podctl) -> None:
    write(podctl)
    assert cli(podctl, "apply", "-y").code == 0
    (made,) = endpoints(podctl)
    shown = cli(podctl, "status")
    assert shown.code == 0, shown.err
    assert "ENDPOINT" in shown.out and "IDLE/RUNNING" in shown.out
    line = next(x for x in shown.out.splitlines() if x.startswith("scorer"))
    assert line.split()[:4] == ["scorer", "present", made["id"], "0-5"]
    data = json.loads(cli(podctl, "status", "--format", "json").out)
    (row,) = data["endpoints"]
    assert row["endpoint_id"] == made["id"]
    assert row["health"]["jobs"] == {
        "in_queue": 0,
        "in_progress": 0,
        "completed": 0,
        "failed": 0,
        "retried": 0,
    }


def test_plan_json_and_markdown_show_endpoint_rows(podctl: Podctl) -> None:
    write(podctl)
    data = json.loads(cli(podctl, "plan", "--format", "json").out)
    (change,) = [c for c in data["changes"] if c["address"] == "endpoint.scorer"]
    assert change["action"] == "create" and change["reason"] == "new"
    assert data["summary"]["create"] == 1
    md = cli(podctl, "plan", "--format", "markdown").out
    assert "| `+` | `endpoint.scorer` | create | new |  |  |" in md


def test_a_create_whose_answer_is_lost_is_found_by_its_markers(podctl: Podctl) -> None:
    write(podctl)
    podctl.sb.faults({"lose_responses": {"count": 1, "operations": ["rest:createEndpoint"]}})
    applied = cli(podctl, "apply", "-y")
    assert applied.code == 0, applied.out + applied.err
    (made,) = endpoints(podctl)  # one endpoint: the create was not sent twice
    assert podctl.recorded()["endpoints"]["scorer"]["endpoint_id"] == made["id"]
    assert "the create's answer was lost; found" in applied.out + applied.err
    assert cli(podctl, "plan", "--detailed-exitcode").code == 0


def test_a_saved_plan_is_applied_or_refused_when_the_endpoint_moved(
    podctl: Podctl, tmp_path: Any
) -> None:
    write(podctl)
    assert cli(podctl, "apply", "-y").code == 0
    (made,) = endpoints(podctl)
    write(podctl, image="org/scorer:v2")
    saved = tmp_path / "plan.json"
    assert cli(podctl, "plan", "-out", str(saved)).code == 0
    # someone edits the endpoint before the saved plan is applied
    rest(podctl, "PATCH", f"/v2/serverless/{made['id']}", {"disk": 30})
    refused = podctl("apply", str(saved))
    assert refused.code == 1
    assert (
        f"endpoint.scorer: the endpoint changed since the plan was made (endpoint {made['id']} "
        "was modified)"
    ) in refused.err
    assert endpoints(podctl)[0]["image"] == "org/scorer:v1"
    assert cli(podctl, "plan", "-out", str(saved)).code == 0
    applied = podctl("apply", str(saved))
    assert applied.code == 0, applied.err
    assert endpoints(podctl)[0]["image"] == "org/scorer:v2"
    assert endpoints(podctl)[0]["disk"] == 20  # the spec's, sent with the container change


def test_reconcile_restores_what_runpod_lowered(podctl: Podctl) -> None:
    write(podctl)
    assert cli(podctl, "apply", "-y").code == 0
    (made,) = endpoints(podctl)
    rest(podctl, "POST", "/_sandbox/serverless/idle", {"endpoint": made["id"], "days": 7})
    assert endpoints(podctl)[0]["workers"]["max"] == 0
    healed = cli(podctl, "reconcile", "--once")
    assert healed.code == 0, healed.out + healed.err
    assert endpoints(podctl)[0]["workers"]["max"] == 5
    assert cli(podctl, "plan", "--detailed-exitcode").code == 0


MIXED = """\
version: 1
stack: e2e
pods:
  box:
    image: img:1
    gpu: {type: NVIDIA RTX A4000}
    ports: [8888/http]
endpoints:
  scorer:
    image: org/scorer:v1
    gpu: {pools: [ADA_24]}
"""


def test_pods_and_endpoints_together_and_a_second_apply_mutates_nothing(
    podctl: Podctl, monkeypatch: pytest.MonkeyPatch
) -> None:
    from reconciler.backends.runpod_rest import RestClient

    sent: list[str] = []
    trip = RestClient._round_trip

    async def counting(self: RestClient, method: str, url: str, *rest: Any) -> Any:
        sent.append(rest[1])  # the operation name
        return await trip(self, method, url, *rest)

    monkeypatch.setattr(RestClient, "_round_trip", counting)
    podctl.write(text=MIXED)
    first = cli(podctl, "apply", "-y")
    assert first.code == 0, first.err
    assert len(podctl.pods()) == 1 and len(endpoints(podctl)) == 1
    assert sent.count("CreateEndpoint") == 1
    sent.clear()
    podctl.operations.clear()
    second = cli(podctl, "apply", "-y")
    assert second.code == 0 and "No changes." in second.out
    assert [op for op in sent if op.endswith("Endpoint")] == []  # only ListEndpoints
    assert sent.count("ListEndpoints") == 1
    assert podctl.mutations() == {}
    destroyed = cli(podctl, "destroy", "-y")
    assert destroyed.code == 0, destroyed.err
    assert podctl.pods() == [] and endpoints(podctl) == []
    recorded = podctl.recorded()
    assert recorded["pods"] == {} and "endpoints" not in recorded


def test_target_applies_only_the_named_endpoint(podctl: Podctl) -> None:
    podctl.write(text=MIXED)
    applied = cli(podctl, "apply", "-y", "--target", "endpoint.scorer")
    assert applied.code == 0, applied.err
    assert len(endpoints(podctl)) == 1 and podctl.pods() == []


def test_a_create_runpod_refuses_fails_the_apply_with_runpods_reason(podctl: Podctl) -> None:
    write(podctl)
    text = podctl.spec.read_text().replace(
        "gpu: {pools: [ADA_24, AMPERE_24]}", "gpu: {pools: [ADA_24], exclude: [NVIDIA L4]}"
    )
    podctl.write(text=text)
    failed = cli(podctl, "apply", "-y")
    assert failed.code == 1
    assert "failed  endpoint.scorer (create): RunPod CreateEndpoint: HTTP 400" in failed.out
    assert "excludedTypes ['NVIDIA L4'] are not GPU types of the selected pools" in failed.out
    assert endpoints(podctl) == [] and not podctl.lockfile.exists()  # nothing to record
    assert all(SECRET not in text for text in podctl.outputs)


def test_runpods_text_about_an_endpoint_is_escaped_on_the_terminal(podctl: Podctl) -> None:
    body = {
        "name": "evil\x1b]0;pwned\x07\x1b[2J",
        "type": "QUEUE",
        "image": "org/scorer:v1\x1b[31m",
        "gpu": {"pools": ["ADA_24"]},
        "scaling": {"type": "QUEUE_DELAY", "queueDelay": 4},
    }
    theirs = rest(podctl, "POST", "/v2/serverless", body).json()
    write(podctl)
    assert cli(podctl, "import", "endpoint.scorer", theirs["id"]).code == 0
    plan = cli(podctl, "plan")
    status = cli(podctl, "status")
    for out in (plan.out, status.out):
        assert "\x1b" not in out and "\x07" not in out
    assert '~ name: "evil\\u001b]0;pwned\\u0007\\u001b[2J" -> "e2e-scorer"' in plan.out
    # what RunPod filled in for the fields this create left out: podctl sends them all
    assert '~ execution_timeout: "0s" -> "2m"' in plan.out


def test_a_crash_between_create_and_record_adopts_instead_of_creating_twice(
    podctl: Podctl, monkeypatch: pytest.MonkeyPatch
) -> None:
    from reconciler.workflow.journal import LockfileJournal

    def crash(self: LockfileJournal, name: str, record: Any) -> None:
        raise KeyboardInterrupt  # podctl dies after RunPod made the endpoint, before the record

    write(podctl)
    with monkeypatch.context() as patched:
        patched.setattr(LockfileJournal, "endpoint_recorded", crash)
        interrupted = cli(podctl, "apply", "-y")
    assert interrupted.code == 130, interrupted.out + interrupted.err
    (made,) = endpoints(podctl)
    assert not podctl.lockfile.exists() or "endpoints" not in podctl.recorded()
    again = cli(podctl, "apply", "-y")
    assert again.code == 0, again.err
    assert [e["id"] for e in endpoints(podctl)] == [made["id"]]  # adopted by its markers
    assert podctl.recorded()["endpoints"]["scorer"]["endpoint_id"] == made["id"]


def test_the_sandbox_is_announced_once_though_endpoints_need_a_second_client(
    podctl: Podctl,
) -> None:
    write(podctl)  # under --api graphql the control plane is a REST client beside it
    planned = cli(podctl, "plan")
    assert planned.code == 0, planned.err
    assert planned.err.count("local RunPod sandbox") == 1, planned.err
