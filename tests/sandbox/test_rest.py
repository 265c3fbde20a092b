"""REST v2 on the sandbox over real HTTP: pods CRUD, actions, cross-API, validation, faults,
catalog, logs (runpod-rest-v2.md 1-6, 12); and the kept schema is a faithful OpenAPI subset."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from reconciler.cli import run
from reconciler.sandbox.rest import derive, validate
from tests.sandbox.conftest import Sandbox

NO_CAPACITY = (
    "There are no longer any instances available with the requested specifications. "
    "Please refresh and try again."
)
GPU = "NVIDIA RTX A4000"


def _h(sb: Sandbox, key: str | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {key or sb.key}"}


def rest(sb: Sandbox, method: str, path: str, body: Any = None, **kw: Any) -> httpx.Response:
    headers = kw.pop("headers", None) or _h(sb)
    return httpx.request(method, sb.url + path, json=body, headers=headers, timeout=10, **kw)


def create(sb: Sandbox, **fields: Any) -> dict[str, Any]:
    body = {"name": "r", "image": "img", "gpu": {"id": GPU}, "ports": ["22/tcp", "8888/http"]}
    body.update(fields)
    body = {k: v for k, v in body.items() if v is not None}
    resp = rest(sb, "POST", "/v2/pods", body)
    assert resp.status_code == 201, resp.text
    pod: dict[str, Any] = resp.json()
    return pod


def test_crud_and_actions(sb: Sandbox) -> None:
    made = create(sb, env={"A": "1", "B": "2"}, mounts={"persistent": {"size": 20, "path": "/w"}})
    assert made["status"] == "PROVISIONING" and made["actions"] == ["stop", "terminate"]
    assert made["runtime"] is None and made["ssh"]["direct"] is None
    assert made["env"] == {"A": "1", "B": "2"} and made["gpu"] == {"id": GPU, "count": 1}
    assert made["mounts"] == {"persistent": {"size": 20, "path": "/w"}}
    assert made["ports"] == ["22/tcp", "8888/http"] and made["cloud"] == "SECURE"
    pod_id = made["id"]

    got = rest(sb, "GET", f"/v2/pods/{pod_id}").json()
    assert got["status"] == "RUNNING" and got["actions"] == ["stop", "restart", "terminate"]
    direct = got["ssh"]["direct"]
    assert direct["host"] == "127.0.0.1" and direct["username"] == "root"
    assert direct["port"] == sb.ssh_port(pod_id)
    assert direct["command"] == f"ssh root@127.0.0.1 -p {direct['port']}"
    assert {p["private"] for p in got["runtime"]["ports"]} == {22, 8888}
    assert got["cudaVersion"] == "12.8" and got["cost"] == pytest.approx(0.32)

    listed = rest(sb, "GET", "/v2/pods?desiredStatus=EXITED&limit=1").json()  # ignored (2)
    assert [p["id"] for p in listed["pods"]] == [pod_id]

    patched = rest(sb, "PATCH", f"/v2/pods/{pod_id}", {"env": {"C": "3"}, "name": "n2"})
    assert patched.status_code == 200, patched.text
    assert patched.json()["env"] == {"C": "3"} and patched.json()["name"] == "n2"  # replaced

    stopped = rest(sb, "POST", f"/v2/pods/{pod_id}/action", {"action": "stop"})
    assert stopped.status_code == 200
    body = stopped.json()
    assert body["status"] == "EXITED" and body["cost"] == 0.0 and body["ssh"]["direct"] is None
    assert body["actions"] == ["start", "terminate"]
    again = rest(sb, "POST", f"/v2/pods/{pod_id}/action", {"action": "stop"})
    assert again.status_code == 409
    assert again.json() == {
        "title": "Conflict",
        "status": 409,
        "detail": "cannot stop a pod that is EXITED",
    }
    started = rest(sb, "POST", f"/v2/pods/{pod_id}/action", {"action": "start"})
    assert started.status_code == 200 and started.json()["status"] == "RUNNING"
    restarted = rest(sb, "POST", f"/v2/pods/{pod_id}/action", {"action": "restart"})
    assert restarted.status_code == 200 and restarted.json()["status"] == "RUNNING"

    gone = rest(sb, "DELETE", f"/v2/pods/{pod_id}")
    assert gone.status_code == 204 and gone.content == b""
    missing = rest(sb, "GET", f"/v2/pods/{pod_id}")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.json() == {"title": "Not Found", "status": 404, "detail": "pod not found"}
    assert rest(sb, "DELETE", f"/v2/pods/{pod_id}").status_code == 404
    assert rest(sb, "GET", "/v2/pods").json() == {"pods": []}


def test_terminate_action_is_204(sb: Sandbox) -> None:
    pod_id = create(sb)["id"]
    resp = rest(sb, "POST", f"/v2/pods/{pod_id}/action", {"action": "terminate"})
    assert resp.status_code == 204 and resp.content == b""
    assert sb.pod(pod_id) is None


def test_graphql_pod_changed_over_rest_and_read_over_graphql(sb: Sandbox) -> None:
    pod_id = sb.create(env=[{"key": "OLD", "value": "x"}], ports="22/tcp")["id"]
    listed = rest(sb, "GET", "/v2/pods").json()["pods"]
    assert [p["id"] for p in listed] == [pod_id] and listed[0]["env"] == {"OLD": "x"}
    resp = rest(sb, "PATCH", f"/v2/pods/{pod_id}", {"env": {"NEW": "y"}})
    assert resp.status_code == 200, resp.text
    seen = sb.pod(pod_id)
    assert seen is not None and seen["env"] == ["NEW=y"]
    rest(sb, "POST", f"/v2/pods/{pod_id}/action", {"action": "stop"})
    seen = sb.pod(pod_id)
    assert seen is not None and seen["desiredStatus"] == "EXITED"


def test_rest_pod_changed_over_graphql_and_read_over_rest(sb: Sandbox) -> None:
    pod_id = create(sb, env={"K": "V"})["id"]
    seen = sb.pod(pod_id)
    assert seen is not None and seen["env"] == ["K=V"] and seen["desiredStatus"] == "RUNNING"
    sb.gql(
        "mutation($i: PodEditJobInput!) { podEditJob(input: $i) { id } }",
        {"i": {"podId": pod_id, "imageName": "img2", "env": [{"key": "G", "value": "1"}]}},
    )
    sb.gql("mutation($i: PodStopInput!) { podStop(input: $i) { id } }", {"i": {"podId": pod_id}})
    got = rest(sb, "GET", f"/v2/pods/{pod_id}").json()
    assert got["image"] == "img2" and got["env"] == {"G": "1"} and got["status"] == "EXITED"
    sb.gql("mutation($i: PodTerminateInput!) { podTerminate(input: $i) }", {"i": {"podId": pod_id}})
    assert rest(sb, "GET", f"/v2/pods/{pod_id}").status_code == 404


def test_unknown_field_is_422_with_runpods_shape(sb: Sandbox) -> None:
    # v1 / GraphQL names are unknown to v2 (runpod-rest-v2.md 5.5): 422, nothing created
    body = {"name": "r", "image": "img", "gpuTypeIds": [GPU], "interruptible": False}
    resp = rest(sb, "POST", "/v2/pods", body)
    assert resp.status_code == 422
    assert resp.headers["content-type"] == "application/problem+json"
    assert resp.json() == {
        "title": "Unprocessable Entity",
        "status": 422,
        "detail": "Request validation failed.",
        "errors": ["$: additional properties 'gpuTypeIds', 'interruptible' not allowed"],
    }
    assert rest(sb, "GET", "/v2/pods").json() == {"pods": []}
    pod_id = create(sb)["id"]
    reset = rest(sb, "POST", f"/v2/pods/{pod_id}/action", {"action": "reset"})
    assert reset.status_code == 422
    assert reset.json()["errors"] == [
        "$.action: value must be one of 'start', 'stop', 'restart', 'terminate'"
    ]
    patch = rest(sb, "PATCH", f"/v2/pods/{pod_id}", {"gpu": {"id": GPU}})
    assert patch.json()["errors"] == ["$: additional properties 'gpu' not allowed"]
    missing = rest(sb, "POST", "/v2/pods", {"image": "img", "gpu": {"id": GPU}})
    assert missing.json()["errors"] == ["$: missing property 'name'"]


def test_create_rules(sb: Sandbox) -> None:
    both = rest(sb, "POST", "/v2/pods", {"name": "r", "image": "i"})
    assert both.status_code == 400
    assert both.json()["detail"] == "exactly one of gpu or cpu must be set"
    cuda = rest(
        sb,
        "POST",
        "/v2/pods",
        {"name": "r", "image": "i", "gpu": {"id": GPU, "allowedCudaVersions": ["9.0"]}},
    )
    assert cuda.status_code == 400 and cuda.json()["detail"] == NO_CAPACITY
    floor = create(sb, gpu={"id": GPU, "minCudaVersion": "12.1"}, cloud="COMMUNITY")
    assert floor["cudaVersion"] == "12.8" and floor["cloud"] == "COMMUNITY"
    placed = create(sb, dataCenterIds=["US-NOPE-1", "US-TX-3"])
    assert placed["dataCenterId"] == "US-TX-3"
    cpu = create(sb, gpu=None, cpu={"id": "cpu3c", "vcpuCount": 4})
    cpu_pod = rest(sb, "GET", f"/v2/pods/{cpu['id']}").json()
    assert "gpu" not in cpu_pod and cpu_pod["cpu"] == {"id": "cpu3c", "vcpuCount": 4, "memory": 8}


def test_create_without_capacity_is_400(sb: Sandbox) -> None:
    sb.faults({"exhaust": [GPU]})
    resp = rest(sb, "POST", "/v2/pods", {"name": "r", "image": "i", "gpu": {"id": GPU}})
    assert resp.status_code == 400
    assert resp.json() == {"title": "Bad Request", "status": 400, "detail": NO_CAPACITY}
    assert rest(sb, "GET", "/v2/pods").json() == {"pods": []}
    sb.faults({"restore": [GPU]})
    create(sb)


def test_auth(sb: Sandbox) -> None:
    none = httpx.get(sb.url + "/v2/pods", timeout=10)
    assert none.status_code == 401
    assert none.json() == {"title": "Unauthorized", "status": 401, "detail": "missing bearer token"}
    assert "ratelimit" not in none.headers
    query_key = httpx.get(sb.url + f"/v2/pods?api_key={sb.key}", timeout=10)
    assert query_key.status_code == 401  # v2 takes no query-string key (1)
    wrong = rest(sb, "GET", "/v2/pods", headers=_h(sb, "sbx_wrong"))
    assert wrong.status_code == 401
    ok = rest(sb, "GET", "/v2/pods")
    assert ok.headers["ratelimit"].startswith('"minute";r=')
    assert ok.headers["ratelimit-policy"].startswith('"minute";q=')


def test_body_over_the_cap_is_413_and_a_strangers_is_never_read(sb: Sandbox) -> None:
    big = b"{" + b" " * (1 << 20) + b"}"
    headers = {**_h(sb), "content-type": "application/json"}
    resp = httpx.post(sb.url + "/v2/pods", content=big, headers=headers, timeout=10)
    assert resp.status_code == 413 and resp.json()["status"] == 413
    stranger = httpx.post(sb.url + "/v2/pods", content=big, timeout=10)
    assert stranger.status_code == 401
    assert rest(sb, "GET", "/v2/pods").json() == {"pods": []}


def test_routes_404_and_405(sb: Sandbox) -> None:
    resp = rest(sb, "GET", "/v2/networkvolumes")
    assert resp.status_code == 404 and resp.json()["detail"] == "resource not found"
    put = rest(sb, "PUT", "/v2/pods")
    assert put.status_code == 405 and put.headers["allow"] == "GET, POST"
    assert put.json()["title"] == "Method Not Allowed"


def test_faults_apply_to_rest(sb: Sandbox) -> None:
    sb.faults({"errors": {"kinds": ["429"], "count": 1, "retry_after": 7}})
    limited = rest(sb, "GET", "/v2/pods")
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "7"
    assert limited.headers["ratelimit"].startswith('"minute";r=0;t=7')
    assert limited.json() == {
        "title": "Too Many Requests",
        "status": 429,
        "detail": "rate limit exceeded for the minute window",
    }
    sb.faults({"errors": {"kinds": ["500"], "count": 1}})
    assert rest(sb, "GET", "/v2/pods").status_code == 500
    sb.faults({"errors": {"kinds": ["reset"], "count": 1}})
    with pytest.raises(httpx.TransportError):
        rest(sb, "GET", "/v2/pods")
    assert rest(sb, "GET", "/v2/pods").status_code == 200

    # a lost answer: the pod exists although the client never heard of it
    sb.faults({"lose_responses": {"count": 1, "operations": ["rest:createPod"]}})
    with pytest.raises(httpx.TransportError):
        rest(sb, "POST", "/v2/pods", {"name": "lost", "image": "i", "gpu": {"id": GPU}})
    pods = rest(sb, "GET", "/v2/pods").json()["pods"]
    assert [p["name"] for p in pods] == ["lost"]
    shown = sb.faults({})
    assert shown["injected"] == {"429": 1, "500": 1, "lost-response": 1, "reset": 1}


def test_lose_response_by_default_hits_rest_too(sb: Sandbox) -> None:
    pod_id = create(sb)["id"]
    sb.faults({"lose_responses": 1})
    with pytest.raises(httpx.TransportError):
        rest(sb, "POST", f"/v2/pods/{pod_id}/action", {"action": "stop"})
    assert rest(sb, "GET", f"/v2/pods/{pod_id}").json()["status"] == "EXITED"


def test_catalog(sb: Sandbox) -> None:
    plain = rest(sb, "GET", "/v2/catalog/gpus").json()["gpus"]
    a4000 = next(g for g in plain if g["id"] == GPU)
    assert "availability" not in a4000 and a4000["price"] == {"secure": 0.32, "community": 0.17}
    sb.faults({"stock": {GPU: {"SECURE": 2}}})
    url = "/v2/catalog/gpus/NVIDIA%20RTX%20A4000?include=AVAILABILITY&product=POD"
    one = rest(sb, "GET", url).json()
    assert one["availability"] == "LOW" and one["manufacturer"] == "NVIDIA"
    assert {"version": "12.8", "available": True} in one["cudaVersions"]
    assert [d["id"] for d in one["dataCenters"]] == ["EU-RO-1", "US-TX-3", "CA-MTL-1"]
    three = rest(sb, "GET", url + "&count=3").json()
    assert three["availability"] == "NONE" and "dataCenters" not in three
    assert rest(sb, "GET", url + "&cloud=COMMUNITY").json()["availability"] == "HIGH"
    in_us = rest(sb, "GET", url + "&countryCodes=US").json()
    assert [d["id"] for d in in_us["dataCenters"]] == ["US-TX-3"]

    no_product = rest(sb, "GET", "/v2/catalog/gpus?include=AVAILABILITY")
    assert no_product.status_code == 400
    assert rest(sb, "GET", "/v2/catalog/gpus?product=POD").status_code == 400
    bad = rest(sb, "GET", "/v2/catalog/gpus?include=STOCK&product=POD")
    assert bad.status_code == 422
    assert bad.json()["errors"] == ["$.include: value must be one of 'AVAILABILITY'"]
    assert rest(sb, "GET", "/v2/catalog/gpus/NVIDIA%20Nope").status_code == 404
    h100 = rest(sb, "GET", "/v2/catalog/gpus?cudaVersions=11.8").json()["gpus"]
    assert "NVIDIA H100 80GB HBM3" not in {g["id"] for g in h100}


def _events(sb: Sandbox, path: str, n: int, headers: dict[str, str] | None = None) -> list[Any]:
    out: list[Any] = []
    with httpx.stream("GET", sb.url + path, headers=headers or _h(sb), timeout=10) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"] == "text/event-stream"
        event: dict[str, Any] = {}
        for line in resp.iter_lines():
            if line.startswith("id: "):
                event["id"] = line[4:]
            elif line.startswith("data: "):
                event["data"] = json.loads(line[6:])
            elif not line and event:
                out.append(event)
                event = {}
                if len(out) >= n:
                    break
    return out


def test_logs_are_sse(sb: Sandbox) -> None:
    pod_id = create(sb)["id"]
    events = _events(sb, f"/v2/pods/{pod_id}/logs", 5)
    lines = [e["data"]["line"] for e in events]
    assert lines[-1] == "sandbox: container running"
    assert {e["data"]["source"] for e in events} == {"system", "container"}
    container = _events(sb, f"/v2/pods/{pod_id}/logs?source=container&tail=1", 1)
    assert [e["data"]["line"] for e in container] == ["sandbox: container running"]
    # Last-Event-ID resumes after that event (exclusive): only the stop that came since
    resume = {**_h(sb), "Last-Event-ID": events[-1]["id"]}
    rest(sb, "POST", f"/v2/pods/{pod_id}/action", {"action": "stop"})
    after = _events(sb, f"/v2/pods/{pod_id}/logs", 1, resume)
    assert after[0]["data"] == {
        "ts": after[0]["data"]["ts"],
        "source": "system",
        "line": "sandbox: stop container",
    }
    too_many = rest(sb, "GET", f"/v2/pods/{pod_id}/logs?tail=5001")
    assert too_many.status_code == 422
    assert rest(sb, "GET", "/v2/pods/nope/logs").status_code == 404


def _resolved(spec: dict[str, Any], node: Any) -> Any:
    return derive.flatten(spec, node)


def test_kept_schema_is_a_faithful_subset_of_the_openapi() -> None:
    spec = json.loads(derive.OPENAPI.read_text())
    kept = validate.kept_schema()
    assert kept == derive.derive(spec)  # schema.json is what derive.py writes
    for operation, schema in kept["operations"].items():
        name = schema["source"].rsplit("/", 1)[-1]
        original = derive.flatten(spec, spec["components"]["schemas"][name])
        _check_subset(schema, original, operation)


def _check_subset(kept: dict[str, Any], original: dict[str, Any], where: str) -> None:
    """Every kept property exists in the OpenAPI with the same type and constraints."""
    if kept.get("type") == "array":
        assert original.get("type") == "array", where
        _check_subset(kept["items"], original["items"], where + "[]")
        return
    for key in ("type", "enum", "minimum", "minLength", "pattern", "maxItems"):
        assert kept.get(key) == original.get(key), f"{where}: {key}"
    for name, sub in (kept.get("properties") or {}).items():
        assert name in (original.get("properties") or {}), f"{where}.{name} is not in the OpenAPI"
        _check_subset(sub, original["properties"][name], f"{where}.{name}")
    assert set(kept.get("required") or []) <= set(original.get("required") or []), where


def test_official_sdk_pod_calls_are_graphql_only(sb: Sandbox) -> None:
    # runpod==1.12.0 manages pods over GraphQL only (its /v2 is serverless endpoints on
    # api.runpod.ai): test_api.py's SDK lifecycle covers it; a REST pod is seen by it too
    pod_id = create(sb)["id"]
    data = sb.gql("query { myself { pods { id desiredStatus } } }")
    assert data["myself"]["pods"] == [{"id": pod_id, "desiredStatus": "RUNNING"}]


def test_fault_cli_targets_a_rest_operation(
    sb: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    opt = ["--data-dir", str(sb.data_dir)]
    assert run(["sandbox", "fault", "lose-response", "--on", "rest:updatePod", *opt]) == 0
    assert '"rest:updatePod"' in capsys.readouterr().out
    pod_id = create(sb)["id"]  # a create is not targeted: answered
    with pytest.raises(httpx.TransportError):
        rest(sb, "PATCH", f"/v2/pods/{pod_id}", {"name": "renamed"})
    assert rest(sb, "GET", f"/v2/pods/{pod_id}").json()["name"] == "renamed"  # applied
    sb.gql("mutation($i: PodStopInput!) { podStop(input: $i) { id } }", {"i": {"podId": pod_id}})


def test_no_direct_ssh_without_22_tcp(sb: Sandbox) -> None:
    pod_id = create(sb, ports=["8888/http"])["id"]
    got = rest(sb, "GET", f"/v2/pods/{pod_id}").json()
    assert got["status"] == "RUNNING" and got["ssh"]["direct"] is None
    assert got["runtime"]["ports"][0]["type"] == "http"


def test_start_with_the_gpu_taken_is_400(sb: Sandbox) -> None:
    pod_id = create(sb)["id"]
    rest(sb, "POST", f"/v2/pods/{pod_id}/action", {"action": "stop"})
    sb.faults({"gpu_taken": [pod_id]})
    resp = rest(sb, "POST", f"/v2/pods/{pod_id}/action", {"action": "start"})
    assert resp.status_code == 400
    assert resp.json()["detail"] == (
        "There are not enough free GPUs on the host machine to start this pod."
    )
    assert rest(sb, "GET", f"/v2/pods/{pod_id}").json()["status"] == "EXITED"


@pytest.mark.parametrize("kind", ["502", "garbage", "wrong-types"])
def test_bad_answers_on_rest(sb: Sandbox, kind: str) -> None:
    pod_id = create(sb)["id"]
    sb.faults({"errors": {"kinds": [kind], "count": 1}})
    resp = rest(sb, "GET", f"/v2/pods/{pod_id}")
    if kind == "502":
        assert resp.status_code == 502 and resp.headers["content-type"] == "text/html"
    elif kind == "garbage":
        assert resp.status_code == 200
        with pytest.raises(ValueError):
            resp.json()
    else:
        assert (
            resp.status_code == 200 and resp.json() != rest(sb, "GET", f"/v2/pods/{pod_id}").json()
        )
    assert rest(sb, "GET", f"/v2/pods/{pod_id}").json()["id"] == pod_id


def _pod_key(sb: Sandbox, pod_id: str) -> str:
    state = json.loads((sb.data_dir / "state.json").read_text())
    key: str = next(p["api_key"] for p in state["pods"] if p["id"] == pod_id)
    return key


def test_pod_scoped_key_reads_stops_terminates_its_own_pod_only(sb: Sandbox) -> None:
    mine, other, third = create(sb)["id"], create(sb)["id"], create(sb)["id"]
    key = _h(sb, _pod_key(sb, mine))
    assert rest(sb, "GET", f"/v2/pods/{mine}", headers=key).status_code == 200
    for method, path, body in (
        ("GET", f"/v2/pods/{other}", None),
        ("POST", f"/v2/pods/{other}/action", {"action": "stop"}),
        ("POST", f"/v2/pods/{other}/action", {"action": "terminate"}),
        ("GET", "/v2/pods", None),
        ("PATCH", f"/v2/pods/{mine}", {"name": "x"}),
        ("POST", f"/v2/pods/{mine}/action", {"action": "restart"}),
        ("DELETE", f"/v2/pods/{other}", None),
    ):
        resp = rest(sb, method, path, body, headers=key)
        assert resp.status_code == 403, (method, path)
        assert resp.json() == {"title": "Forbidden", "status": 403, "detail": "access denied"}
    stop = rest(sb, "POST", f"/v2/pods/{mine}/action", {"action": "stop"}, headers=key)
    assert stop.status_code == 200
    assert rest(sb, "DELETE", f"/v2/pods/{mine}", headers=key).status_code == 204
    # the on-pod watchdog terminates through the action route (5.7: the same as DELETE)
    own = _h(sb, _pod_key(sb, third))
    gone = rest(sb, "POST", f"/v2/pods/{third}/action", {"action": "terminate"}, headers=own)
    assert (gone.status_code, gone.content) == (204, b"")
    assert [p["id"] for p in rest(sb, "GET", "/v2/pods").json()["pods"]] == [other]


def test_a_planted_log_symlink_is_not_followed(sb: Sandbox, tmp_path) -> None:
    pod_id = create(sb)["id"]
    secret = tmp_path / "secret"
    secret.write_text('[1, 0, "system", "leaked"]\n')
    log = sb.data_dir / "pods" / pod_id / "rest-log.jsonl"
    log.unlink(missing_ok=True)
    log.symlink_to(secret)
    lines = [e["data"]["line"] for e in _events(sb, f"/v2/pods/{pod_id}/logs", 2)]
    assert "leaked" not in lines and lines[0].startswith("sandbox: pulling image")
    assert secret.read_text() == '[1, 0, "system", "leaked"]\n'  # not written through


def test_refused_creates_402_and_403(sb: Sandbox, capsys: pytest.CaptureFixture[str]) -> None:
    opt = ["--data-dir", str(sb.data_dir)]
    assert run(["sandbox", "fault", "refuse-create", "402", "--count", "1", *opt]) == 0
    body = {"name": "r", "image": "i", "gpu": {"id": GPU}}
    resp = rest(sb, "POST", "/v2/pods", body)
    assert resp.status_code == 402
    assert resp.json() == {
        "title": "Payment Required",
        "status": 402,
        "detail": "Insufficient balance.",
    }
    assert rest(sb, "GET", "/v2/pods").json() == {"pods": []}
    create(sb)  # the count is used up
    sb.faults({"refuse_creates": {"status": 403}})
    for _ in range(2):
        denied = rest(sb, "POST", "/v2/pods", body)
        assert denied.json() == {"title": "Forbidden", "status": 403, "detail": "access denied"}
    assert run(["sandbox", "fault", "refuse-create", "--lift", *opt]) == 0
    create(sb)
    assert sb.faults({})["injected"] == {"402": 1, "403": 2}
    assert run(["sandbox", "fault", "refuse-create", *opt]) == 2
    assert "Name a STATUS" in capsys.readouterr().err
