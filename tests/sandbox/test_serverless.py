"""RunPod Serverless in the sandbox, over real HTTP: the official SDK's Endpoint, user handler
files run by worker subprocesses, job states and limits, faults, the control plane's errors."""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
import runpod
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.cli import run
from reconciler.sandbox import control
from reconciler.sandbox.rest.api import Problem
from reconciler.sandbox.serverless import endpoints, engine
from tests.sandbox.conftest import Sandbox

GPU_ENDPOINT: dict[str, Any] = {
    "type": "QUEUE",
    "image": "myorg/worker:v1",
    "gpu": {"pools": ["ADA_24"], "count": 1},
    "workers": {"min": 0, "max": 2, "idleTimeout": 5},
    "scaling": {"type": "QUEUE_DELAY", "queueDelay": 4},
    "timeout": 600000,
    "flashboot": "OFF",
}


def _auth(sb: Sandbox) -> dict[str, str]:
    return {"Authorization": f"Bearer {sb.key}"}


def create_endpoint(sb: Sandbox, **fields: Any) -> dict[str, Any]:
    body = {"name": "ep", **GPU_ENDPOINT, **fields}
    resp = httpx.post(sb.url + "/v2/serverless", json=body, headers=_auth(sb), timeout=10)
    assert resp.status_code == 201, resp.text
    endpoint: dict[str, Any] = resp.json()
    return endpoint


def data(sb: Sandbox, method: str, path: str, **kwargs: Any) -> httpx.Response:
    return httpx.request(
        method, f"{sb.url}/serverless/v2/{path}", headers=_auth(sb), timeout=30, **kwargs
    )


def wait_for(what: Callable[[], Any], timeout: float = 30.0) -> Any:
    """Poll until `what()` is truthy; bounded, never asserting how long it took."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = what()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met within the bound")


def status_of(sb: Sandbox, endpoint_id: str, job_id: str) -> dict[str, Any] | None:
    resp = data(sb, "GET", f"{endpoint_id}/status/{job_id}")
    if resp.status_code == 404:
        return None
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def terminal(sb: Sandbox, endpoint_id: str, job_id: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        body = status_of(sb, endpoint_id, job_id)
        assert body is not None
        return body if body["status"] not in ("IN_QUEUE", "IN_PROGRESS") else None

    result: dict[str, Any] = wait_for(done)
    return result


@pytest.fixture
def sdk(sb: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    """The official SDK pointed at the sandbox, as `podctl sandbox env` says (§2.8)."""
    monkeypatch.setattr(runpod, "api_key", sb.key)
    monkeypatch.setattr(runpod, "endpoint_url_base", sb.url + "/serverless/v2")
    return sb


def handler_file(tmp_path: Path, body: str) -> str:
    path = tmp_path / "handler.py"
    path.write_text(textwrap.dedent(body))
    return str(path)


# -- the official SDK ------------------------------------------------------------------------


def test_sdk_run_sync_run_status_output_health(sdk: Sandbox):
    endpoint = create_endpoint(sdk)
    ep = runpod.Endpoint(endpoint["id"])
    assert ep.run_sync({"prompt": "hi"}, timeout=60) == {"prompt": "hi"}  # the echo handler
    raw = data(sdk, "POST", f"{endpoint['id']}/run", json={"input": 1}).json()
    assert raw == {"id": raw["id"], "status": "IN_QUEUE"}  # §2.3, even with an idle worker
    job = ep.run({"n": 7})
    assert job.status() in ("IN_QUEUE", "IN_PROGRESS", "COMPLETED")
    assert job.output(timeout=60) == {"n": 7}
    assert job.status() == "COMPLETED"
    assert terminal(sdk, endpoint["id"], raw["id"])["output"] == 1
    health = ep.health()
    assert health["jobs"] == {
        "completed": 3,
        "failed": 0,
        "inProgress": 0,
        "inQueue": 0,
        "retried": 0,
    }
    assert health["workers"]["idle"] + health["workers"]["running"] >= 1
    body = status_of(sdk, endpoint["id"], job.job_id)
    assert body is not None
    assert body["output"] == {"n": 7} and body["status"] == "COMPLETED"
    assert {"delayTime", "executionTime", "workerId"} <= set(body)


def test_sdk_cancel_and_purge_queue(sdk: Sandbox):
    endpoint = create_endpoint(sdk, workers={"min": 0, "max": 0, "idleTimeout": 5})
    ep = runpod.Endpoint(endpoint["id"])  # max 0 workers: jobs stay queued
    first, second, third = ep.run({"a": 1}), ep.run({"a": 2}), ep.run({"a": 3})
    assert first.status() == "IN_QUEUE"
    assert first.cancel() == {"id": first.job_id, "status": "CANCELLED"}
    assert first.status() == "CANCELLED"
    assert ep.health()["jobs"]["inQueue"] == 2
    assert ep.purge_queue() == {"removed": 2, "status": "completed"}
    for job in (second, third):  # purged: gone, not merely cancelled
        assert data(sdk, "GET", f"{endpoint['id']}/status/{job.job_id}").status_code == 404
    assert ep.health()["jobs"]["inQueue"] == 0


def test_sdk_stream_from_a_generator_handler(sdk: Sandbox, tmp_path: Path):
    handler = handler_file(
        tmp_path,
        """
        def handler(job):
            for i in range(job["input"]["n"]):
                yield {"token": i}
        """,
    )
    endpoint = create_endpoint(sdk, env={"PODCTL_SANDBOX_HANDLER": handler})
    job = runpod.Endpoint(endpoint["id"]).run({"n": 3})
    assert list(job.stream()) == [{"token": 0}, {"token": 1}, {"token": 2}]
    assert job.status() == "COMPLETED"
    # chunks are handed out once: a later poll has none
    again = data(sdk, "GET", f"{endpoint['id']}/stream/{job.job_id}").json()
    assert again == {"status": "COMPLETED", "stream": []}


def test_user_handler_with_sdk_start_and_imports_beside_it(sdk: Sandbox, tmp_path: Path):
    (tmp_path / "helper.py").write_text("def shout(s):\n    return s.upper()\n")
    handler = handler_file(
        tmp_path,
        """
        import os
        import runpod
        from helper import shout

        def handler(job):
            return {"text": shout(job["input"]["text"]), "model": os.environ["MODEL"]}

        runpod.serverless.start({"handler": handler})
        """,
    )
    endpoint = create_endpoint(sdk, env={"PODCTL_SANDBOX_HANDLER": handler, "MODEL": "m1"})
    out = runpod.Endpoint(endpoint["id"]).run_sync({"text": "hi"}, timeout=60)
    assert out == {"text": "HI", "model": "m1"}


def test_raising_handler_fails_the_job_with_its_error(sdk: Sandbox, tmp_path: Path):
    handler = handler_file(
        tmp_path,
        """
        def handler(job):
            raise ValueError("model weights missing")
        """,
    )
    endpoint = create_endpoint(sdk, env={"PODCTL_SANDBOX_HANDLER": handler})
    job = runpod.Endpoint(endpoint["id"]).run({"x": 1})
    body = terminal(sdk, endpoint["id"], job.job_id)
    assert body["status"] == "FAILED"
    assert "output" not in body
    error = json.loads(body["error"])  # runpod-python's worker reports a JSON string
    assert error["error_message"] == "model weights missing"
    assert "ValueError" in error["error_type"]
    # the SDK's run_sync gives None for a FAILED job (no exception, §2.8)
    assert runpod.Endpoint(endpoint["id"]).run_sync({"x": 2}, timeout=60) is None
    assert runpod.Endpoint(endpoint["id"]).health()["jobs"]["failed"] == 2


def test_retry_reruns_a_failed_job_under_the_same_id(sb: Sandbox, tmp_path: Path):
    marker = tmp_path / "tried"
    handler = handler_file(
        tmp_path,
        f"""
        import os

        def handler(job):
            if not os.path.exists({str(marker)!r}):
                open({str(marker)!r}, "w").close()
                raise RuntimeError("first try fails")
            return "second try"
        """,
    )
    endpoint = create_endpoint(sb, env={"PODCTL_SANDBOX_HANDLER": handler})
    job_id = data(sb, "POST", f"{endpoint['id']}/run", json={"input": {}}).json()["id"]
    assert terminal(sb, endpoint["id"], job_id)["status"] == "FAILED"
    retried = data(sb, "POST", f"{endpoint['id']}/retry/{job_id}")
    assert retried.json() == {"id": job_id, "status": "IN_QUEUE"}
    body = terminal(sb, endpoint["id"], job_id)
    assert body["status"] == "COMPLETED" and body["output"] == "second try"
    assert "error" not in body
    # only FAILED or TIMED_OUT can be retried
    assert data(sb, "POST", f"{endpoint['id']}/retry/{job_id}").status_code == 400


def test_execution_timeout_kills_a_hung_handler(sb: Sandbox, tmp_path: Path):
    handler = handler_file(
        tmp_path,
        """
        import time

        def handler(job):
            if job["input"].get("hang"):
                time.sleep(3600)
            return "quick"
        """,
    )
    endpoint = create_endpoint(sb, timeout=500, env={"PODCTL_SANDBOX_HANDLER": handler})
    job_id = data(sb, "POST", f"{endpoint['id']}/run", json={"input": {"hang": True}}).json()["id"]
    assert terminal(sb, endpoint["id"], job_id)["status"] == "TIMED_OUT"
    # the sandbox still answers, and the endpoint runs the next job on a new worker
    resp = data(sb, "POST", f"{endpoint['id']}/runsync", json={"input": {}})
    assert resp.json()["status"] == "COMPLETED" and resp.json()["output"] == "quick"


def test_a_crashing_worker_requeues_then_fails_and_the_sandbox_lives(sb: Sandbox, tmp_path: Path):
    runs = tmp_path / "runs.txt"
    handler = handler_file(
        tmp_path,
        f"""
        import os

        def handler(job):
            with open({str(runs)!r}, "a") as f:
                f.write(job["id"] + "\\n")
            os._exit(3)
        """,
    )
    endpoint = create_endpoint(sb, env={"PODCTL_SANDBOX_HANDLER": handler})
    job_id = data(sb, "POST", f"{endpoint['id']}/run", json={"input": {}}).json()["id"]
    body = terminal(sb, endpoint["id"], job_id)
    assert body["status"] == "FAILED" and "worker exited 3 times" in body["error"]
    assert runs.read_text().splitlines() == [job_id] * 3
    health = data(sb, "GET", f"{endpoint['id']}/health").json()
    assert health["jobs"]["retried"] == 2 and health["jobs"]["failed"] == 1


# -- retention, limits, faults ---------------------------------------------------------------


def test_expired_result_is_404(sb: Sandbox):
    sb.faults({"serverless": {"retention": {"run": 0.5}}})
    endpoint = create_endpoint(sb)
    job_id = data(sb, "POST", f"{endpoint['id']}/run", json={"input": 1}).json()["id"]
    assert terminal(sb, endpoint["id"], job_id)["output"] == 1
    wait_for(lambda: data(sb, "GET", f"{endpoint['id']}/status/{job_id}").status_code == 404)
    assert data(sb, "POST", f"{endpoint['id']}/retry/{job_id}").status_code == 404
    assert data(sb, "GET", f"{endpoint['id']}/status/no-such-job").status_code == 404


def test_lost_run_answer_the_job_still_runs(sb: Sandbox, tmp_path: Path):
    log = tmp_path / "ran.txt"
    handler = handler_file(
        tmp_path,
        f"""
        def handler(job):
            with open({str(log)!r}, "a") as f:
                f.write(job["input"]["key"] + "\\n")
            return "ok"
        """,
    )
    endpoint = create_endpoint(sb, env={"PODCTL_SANDBOX_HANDLER": handler})
    sb.faults({"serverless": {"lose_run": 1}})
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        data(sb, "POST", f"{endpoint['id']}/run", json={"input": {"key": "k1"}})
    # no job listing, no idempotency key: the client cannot find it, but it ran

    def completed() -> bool:
        return bool(data(sb, "GET", f"{endpoint['id']}/health").json()["jobs"]["completed"] == 1)

    wait_for(completed)
    assert log.read_text() == "k1\n"
    assert data(sb, "GET", f"{endpoint['id']}/requests").status_code == 404


def test_worker_death_mid_job_runs_the_job_twice(sdk: Sandbox, tmp_path: Path):
    log = tmp_path / "ran.txt"
    handler = handler_file(
        tmp_path,
        f"""
        def handler(job):
            with open({str(log)!r}, "a") as f:
                f.write(job["id"] + "\\n")
            return {{"done": True}}
        """,
    )
    endpoint = create_endpoint(sdk, env={"PODCTL_SANDBOX_HANDLER": handler})
    sdk.faults({"serverless": {"kill_worker": 1}})
    ep = runpod.Endpoint(endpoint["id"])
    job = ep.run({})
    assert job.output(timeout=60) == {"done": True}
    assert log.read_text().splitlines() == [job.job_id, job.job_id]
    assert ep.health()["jobs"]["retried"] == 1
    injected = sdk.faults({})["injected"]
    assert injected["worker-death"] == 1


def test_429_on_run_and_status(sdk: Sandbox):
    endpoint = create_endpoint(sdk)
    sdk.faults({"serverless": {"errors": {"routes": ["run", "status"], "count": 1}}})
    assert data(sdk, "POST", f"{endpoint['id']}/run", json={"input": 1}).status_code == 429
    job_id = data(sdk, "POST", f"{endpoint['id']}/run", json={"input": 1}).json()["id"]
    assert data(sdk, "GET", f"{endpoint['id']}/status/{job_id}").status_code == 429
    assert terminal(sdk, endpoint["id"], job_id)["status"] == "COMPLETED"
    # the SDK retries 429 on http:// for GET only (urllib3's Retry leaves POST alone)
    ep = runpod.Endpoint(endpoint["id"])
    job = ep.run({"v": 1})
    sdk.faults({"serverless": {"errors": {"routes": ["run", "status"], "count": 2}}})
    assert job.output(timeout=60) == {"v": 1}  # two 429s on /status: retried, unseen
    with pytest.raises(requests.HTTPError, match="429"):
        ep.run({"v": 2})


def test_payload_over_the_run_limit_is_refused(sb: Sandbox):
    endpoint = create_endpoint(sb)
    big = {"input": {"blob": "x" * 10_000_000}}  # §2.1: /run takes 10 MB
    resp = data(sb, "POST", f"{endpoint['id']}/run", json=big)
    assert resp.status_code == 400
    assert resp.json() == {"error": "request body exceeds the 10 MB limit of /run"}
    assert data(sb, "GET", f"{endpoint['id']}/health").json()["jobs"]["inQueue"] == 0


def test_bad_job_requests_and_auth(sb: Sandbox):
    endpoint = create_endpoint(sb)
    eid = endpoint["id"]
    assert data(sb, "POST", f"{eid}/run", json={"prompt": "no input"}).status_code == 400
    bad_policy = {"input": 1, "policy": {"executionTimeout": 10}}  # below 5 s
    assert data(sb, "POST", f"{eid}/run", json=bad_policy).status_code == 400
    assert data(sb, "POST", "nosuchendpoint/run", json={"input": 1}).status_code == 404
    resp = httpx.post(f"{sb.url}/serverless/v2/{eid}/run", json={"input": 1}, timeout=10)
    assert resp.status_code == 401
    bare = httpx.post(  # §2.1: the bare key is accepted too
        f"{sb.url}/serverless/v2/{eid}/runsync",
        json={"input": 1},
        headers={"Authorization": sb.key},
        timeout=30,
    )
    assert bare.status_code == 200 and bare.json()["id"].startswith("sync-")


def test_runsync_wait_hands_back_a_running_job(sb: Sandbox, tmp_path: Path):
    release = tmp_path / "go"
    handler = handler_file(
        tmp_path,
        f"""
        import os, time

        def handler(job):
            while not os.path.exists({str(release)!r}):
                time.sleep(0.02)
            return "released"
        """,
    )
    endpoint = create_endpoint(sb, env={"PODCTL_SANDBOX_HANDLER": handler})
    resp = data(sb, "POST", f"{endpoint['id']}/runsync", params={"wait": 1000}, json={"input": 0})
    body = resp.json()
    assert body["status"] in ("IN_QUEUE", "IN_PROGRESS") and set(body) == {"id", "status"}
    release.touch()
    assert terminal(sb, endpoint["id"], body["id"])["output"] == "released"


# -- webhooks --------------------------------------------------------------------------------


@pytest.fixture
def hook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            received.append(json.loads(self.rfile.read(length)))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    finally:
        server.shutdown()
        server.server_close()


def test_webhook_posted_to_loopback_recorded_otherwise(sb: Sandbox, hook):
    url, received = hook
    endpoint = create_endpoint(sb)
    eid = endpoint["id"]
    job_id = data(sb, "POST", f"{eid}/run", json={"input": "x", "webhook": url}).json()["id"]
    wait_for(lambda: received)
    assert received[0]["id"] == job_id and received[0]["status"] == "COMPLETED"
    assert received[0]["output"] == "x"
    other = "https://hooks.example.com/runpod"
    job2 = data(sb, "POST", f"{eid}/run", json={"input": "y", "webhook": other}).json()["id"]
    terminal(sb, eid, job2)

    def recorded() -> list[dict[str, Any]]:
        resp = httpx.get(sb.url + "/_sandbox/serverless", headers=_auth(sb), timeout=10)
        return [w for w in resp.json()["webhooks"] if w["job"] == job2]

    assert wait_for(recorded)[0]["delivered"] is False
    assert len(received) == 1


# -- the control plane -----------------------------------------------------------------------


def test_control_plane_crud_and_defaults(sb: Sandbox):
    minimal = {
        "name": "m",
        "type": "QUEUE",
        "image": "img:1",
        "gpu": {"pools": ["AMPERE_24"]},
        "scaling": {"type": "QUEUE_DELAY", "queueDelay": 4},
    }
    resp = httpx.post(sb.url + "/v2/serverless", json=minimal, headers=_auth(sb), timeout=10)
    assert resp.status_code == 201
    endpoint = resp.json()
    # §1.3: omitted timeout is observed as 0, FlashBoot OFF, schema defaults for workers
    assert endpoint["timeout"] == 0 and endpoint["flashboot"] == "OFF"
    assert endpoint["workers"] == {"min": 0, "max": 3, "idleTimeout": 10}
    assert endpoint["gpu"] == {
        "pools": ["AMPERE_24"],
        "count": 1,
        "allowedCudaVersions": [],
        "minCudaVersion": None,
    }
    eid = endpoint["id"]
    assert endpoint["requestUrls"]["run"] == f"{sb.url}/serverless/v2/{eid}/run"
    listed = httpx.get(sb.url + "/v2/serverless", headers=_auth(sb), timeout=10).json()
    assert [e["id"] for e in listed["endpoints"]] == [eid]
    patched = httpx.patch(
        f"{sb.url}/v2/serverless/{eid}",
        json={"workers": {"max": 5}, "name": "renamed"},
        headers=_auth(sb),
        timeout=10,
    ).json()
    assert patched["workers"] == {"min": 0, "max": 5, "idleTimeout": 10}
    assert patched["name"] == "renamed"
    got = httpx.get(f"{sb.url}/v2/serverless/{eid}", headers=_auth(sb), timeout=10).json()
    assert got == patched
    deleted = httpx.delete(f"{sb.url}/v2/serverless/{eid}", headers=_auth(sb), timeout=10)
    assert deleted.status_code == 204 and deleted.content == b""
    gone = httpx.get(f"{sb.url}/v2/serverless/{eid}", headers=_auth(sb), timeout=10)
    assert gone.status_code == 404
    assert gone.json() == {"title": "Not Found", "status": 404, "detail": "endpoint not found"}
    assert data(sb, "POST", f"{eid}/run", json={"input": 1}).status_code == 404


@pytest.mark.parametrize(
    "change,status,detail,errors",
    [
        (
            {"bogus": 1, "workers": {"min": 0, "maxx": 2}},
            422,
            "Request validation failed.",
            [  # sorted, as RunPod's validator lists them
                "$.workers: additional properties 'maxx' not allowed",
                "$: additional properties 'bogus' not allowed",
            ],
        ),
        (
            {"flashboot": True},  # §1.3: v1's boolean is a 422
            422,
            "Request validation failed.",
            ["$.flashboot: value must be one of 'OFF', 'FLASHBOOT', 'PRIORITY_FLASHBOOT'"],
        ),
        (
            {"workers": {"min": -1, "max": "3"}, "gpu": {"pools": [], "count": 0}},
            422,
            "Request validation failed.",
            [
                "$.gpu.count: must be >= 1 but found 0",
                "$.gpu.pools: minimum 1 items required, but found 0 items",
                "$.workers.max: got string, want integer",
                "$.workers.min: must be >= 0 but found -1",
            ],
        ),
        ({"cpu": [{"id": "cpu3c", "vcpuCount": 6}], "gpu": None}, 422, None, None),
        (
            {"scaling": {"type": "REQUEST_COUNT", "requestCount": 2}},
            422,
            "idleTimeout does not apply to queue-based endpoints scaling on requestCount",
            None,
        ),
        ({"cpu": [{"id": "cpu3c", "vcpuCount": 4}]}, 400, None, None),
        (
            {
                "gpu": {
                    "pools": ["ADA_24"],
                    "allowedCudaVersions": ["12.8"],
                    "minCudaVersion": "12.1",
                }
            },
            400,
            "allowedCudaVersions and minCudaVersion are mutually exclusive",
            None,
        ),
        ({"gpu": {"pools": ["ADA_24"], "excludedTypes": ["NVIDIA L4"]}}, 400, None, None),
    ],
)
def test_control_plane_rejects(sb: Sandbox, change, status, detail, errors):
    body = {"name": "ep", **GPU_ENDPOINT, **change}
    resp = httpx.post(sb.url + "/v2/serverless", json=body, headers=_auth(sb), timeout=10)
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"] == "application/problem+json"
    problem = resp.json()
    assert problem["status"] == status and problem["title"]
    if detail is not None:
        assert problem["detail"] == detail
    if errors is not None:
        assert problem["errors"] == errors
    listed = httpx.get(sb.url + "/v2/serverless", headers=_auth(sb), timeout=10).json()
    assert listed == {"endpoints": []}


@settings(max_examples=300, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
        lambda inner: (
            st.lists(inner, max_size=3)
            | st.dictionaries(
                st.sampled_from(
                    [*endpoints.CREATE_FIELDS, *endpoints.GPU_FIELDS, "min", "max", "type", "x"]
                ),
                inner,
                max_size=6,
            )
        ),
        max_leaves=20,
    )
)
def test_any_json_body_is_an_endpoint_or_a_problem(body: Any) -> None:
    """No body makes the control plane fail with anything but a Problem (never a 500)."""
    for update in (False, True):
        try:
            result = endpoints.update(_stored(), body) if update else endpoints.create(body)
        except Problem as problem:
            assert problem.status in (400, 404, 422)
        else:
            assert set(result) >= {"id", "name", "workers", "scaling", "timeout", "flashboot"}


def _stored() -> dict[str, Any]:
    return endpoints.create({"name": "ep", **GPU_ENDPOINT}, now=0)


def test_control_plane_missing_fields_and_auth(sb: Sandbox):
    resp = httpx.post(sb.url + "/v2/serverless", json={}, headers=_auth(sb), timeout=10)
    assert resp.status_code == 422
    assert resp.json()["errors"] == [
        "$: missing property 'image'",
        "$: missing property 'name'",
        "$: missing property 'scaling'",
        "$: missing property 'type'",
    ]
    anon = httpx.get(sb.url + "/v2/serverless", timeout=10)
    assert anon.status_code == 401
    assert anon.json() == {"title": "Unauthorized", "status": 401, "detail": "missing bearer token"}
    endpoint = create_endpoint(sb)
    patch = httpx.patch(
        f"{sb.url}/v2/serverless/{endpoint['id']}",
        json={"type": "LOAD_BALANCER"},  # §1.4: not patchable
        headers=_auth(sb),
        timeout=10,
    )
    assert patch.status_code == 422
    assert patch.json()["errors"] == ["$: additional properties 'type' not allowed"]


def test_workers_scale_between_min_and_max(sb: Sandbox, tmp_path: Path):
    release = tmp_path / "go"
    handler = handler_file(
        tmp_path,
        f"""
        import os, time

        def handler(job):
            while not os.path.exists({str(release)!r}):
                time.sleep(0.02)
            return job["input"]
        """,
    )
    endpoint = create_endpoint(
        sb,
        workers={"min": 1, "max": 2, "idleTimeout": 1},
        env={"PODCTL_SANDBOX_HANDLER": handler},
    )
    eid = endpoint["id"]

    def workers() -> dict[str, int]:
        resp = httpx.get(f"{sb.url}/v2/serverless/{eid}/workers", headers=_auth(sb), timeout=10)
        summary: dict[str, int] = resp.json()["summary"]
        return summary

    wait_for(lambda: workers()["idle"] == 1)  # min 1: a worker without any job
    ids = [data(sb, "POST", f"{eid}/run", json={"input": i}).json()["id"] for i in range(3)]
    wait_for(lambda: workers()["running"] == 2)  # max 2: the third job waits
    assert workers()["total"] == 2
    assert data(sb, "GET", f"{eid}/health").json()["jobs"]["inQueue"] == 1
    release.touch()
    assert [terminal(sb, eid, i)["output"] for i in ids] == [0, 1, 2]
    wait_for(lambda: workers()["total"] == 1)  # idle past idleTimeout, down to min


def test_endpoints_and_results_survive_a_restart(tmp_path: Path):
    directory = tmp_path / "sb"
    sb = Sandbox(control.start_detached(directory, start_delay=0))
    try:
        endpoint = create_endpoint(sb)
        job_id = data(sb, "POST", f"{endpoint['id']}/run", json={"input": 5}).json()["id"]
        terminal(sb, endpoint["id"], job_id)
        control.stop(directory)
        sb = Sandbox(control.start_detached(directory, start_delay=0))
        assert status_of(sb, endpoint["id"], job_id) is not None
        assert status_of(sb, endpoint["id"], job_id)["output"] == 5  # type: ignore[index]
    finally:
        control.stop(directory)
        control.reset(directory)  # offline: the files go
    assert not (directory / "serverless.json").exists()


def test_env_prints_the_endpoint_base_url_and_fault_cli(sb: Sandbox, capsys):
    opt = ["--data-dir", str(sb.data_dir)]
    assert run(["sandbox", "env", *opt]) == 0
    out = capsys.readouterr().out
    assert f"export RUNPOD_ENDPOINT_BASE_URL={sb.url}/serverless/v2\n" in out.splitlines(True)
    args = ["sandbox", "fault", "serverless", "--429", "run", "--lose-run", "1", *opt]
    assert run([*args, "--retention-run", "2"]) == 0
    shown = json.loads(capsys.readouterr().out)["serverless"]
    assert shown["errors"] == {"run": 1} and shown["lose_run"] == 1
    assert shown["retention"] == {"run": 2.0}
    assert run(["sandbox", "fault", "serverless", *opt]) == 2
    lose = ["sandbox", "fault", "lose-response", "--on", "rest:createEndpoint", *opt]
    assert run(lose) == 0
    assert json.loads(capsys.readouterr().out)["lose"]["operations"] == ["rest:createEndpoint"]


def test_unread_stream_backlog_is_bounded(sb: Sandbox, tmp_path: Path):
    handler = handler_file(
        tmp_path,
        """
        def handler(job):
            for i in range(20_000):
                yield i
        """,
    )
    endpoint = create_endpoint(sb, env={"PODCTL_SANDBOX_HANDLER": handler})
    job_id = data(sb, "POST", f"{endpoint['id']}/run", json={"input": 0}).json()["id"]
    body = terminal(sb, endpoint["id"], job_id)
    assert body["status"] == "FAILED"
    assert body["error"] == "more than 10000 stream chunks unread"


def test_a_handler_file_that_does_not_load_leaves_jobs_queued(sb: Sandbox, tmp_path: Path):
    handler = handler_file(tmp_path, "def handler(job):\n    return (\n")
    endpoint = create_endpoint(sb, env={"PODCTL_SANDBOX_HANDLER": handler})
    eid = endpoint["id"]
    job_id = data(sb, "POST", f"{eid}/run", json={"input": 0}).json()["id"]
    logs = sb.data_dir / "serverless" / eid
    wait_for(lambda: any("SyntaxError" in p.read_text() for p in logs.glob("*.log")))
    assert status_of(sb, eid, job_id) == {"id": job_id, "status": "IN_QUEUE"}
    # a fixed file is picked up by the next worker (the crash loop backs off, it does not stop)
    Path(handler).write_text("def handler(job):\n    return 'fixed'\n")
    assert terminal(sb, eid, job_id)["output"] == "fixed"


def _worker_pids(sb: Sandbox) -> list[int]:
    resp = httpx.get(sb.url + "/_sandbox/serverless", headers=_auth(sb), timeout=10)
    return [int(w["pid"]) for w in resp.json()["workers"]]


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_cancel_in_progress_kills_the_worker(sdk: Sandbox, tmp_path: Path):
    started, finished = tmp_path / "started", tmp_path / "finished"
    handler = handler_file(
        tmp_path,
        f"""
        import time

        def handler(job):
            if job["input"]["what"] == "block":
                open({str(started)!r}, "w").close()
                time.sleep(3600)
                open({str(finished)!r}, "w").close()
            return job["input"]["what"]
        """,
    )
    endpoint = create_endpoint(sdk, env={"PODCTL_SANDBOX_HANDLER": handler})
    ep = runpod.Endpoint(endpoint["id"])
    job = ep.run({"what": "block"})
    wait_for(started.exists)
    [pid] = _worker_pids(sdk)
    assert job.cancel() == {"id": job.job_id, "status": "CANCELLED"}
    assert job.status() == "CANCELLED"
    wait_for(lambda: _gone(pid))
    assert not finished.exists()
    assert ep.run_sync({"what": "next"}, timeout=60) == "next"  # a new worker takes the next job


@pytest.mark.slow
def test_ttl_expiry_deletes_a_queued_job(sb: Sandbox):
    endpoint = create_endpoint(sb, workers={"min": 0, "max": 0, "idleTimeout": 5})
    body = {"input": 1, "policy": {"ttl": 10_000}}  # §2.2: the shortest TTL, 10 s
    job_id = data(sb, "POST", f"{endpoint['id']}/run", json=body).json()["id"]
    assert status_of(sb, endpoint["id"], job_id) == {"id": job_id, "status": "IN_QUEUE"}
    wait_for(lambda: status_of(sb, endpoint["id"], job_id) is None, timeout=60)


def test_delete_endpoint_and_stop_sandbox_end_their_workers(tmp_path: Path):
    directory = tmp_path / "sb"
    sb = Sandbox(control.start_detached(directory, start_delay=0))
    try:
        doomed = create_endpoint(sb, workers={"min": 1, "max": 1, "idleTimeout": 5})
        [first] = wait_for(lambda: _worker_pids(sb))
        url = f"{sb.url}/v2/serverless/{doomed['id']}"
        assert httpx.delete(url, headers=_auth(sb), timeout=10).status_code == 204
        wait_for(lambda: _gone(first))
        create_endpoint(sb, workers={"min": 1, "max": 1, "idleTimeout": 5})
        [second] = wait_for(lambda: _worker_pids(sb))
    finally:
        control.stop(directory)
    wait_for(lambda: _gone(second))


def test_lost_queue_fault_drops_queued_jobs(sb: Sandbox):
    endpoint = create_endpoint(sb, workers={"min": 0, "max": 0, "idleTimeout": 5})
    eid = endpoint["id"]
    ids = [data(sb, "POST", f"{eid}/run", json={"input": i}).json()["id"] for i in range(2)]
    sb.faults({"serverless": {"lose_queue": 1}})
    wait_for(lambda: all(status_of(sb, eid, i) is None for i in ids))
    assert data(sb, "GET", f"{eid}/health").json()["jobs"]["inQueue"] == 0
    later = data(sb, "POST", f"{eid}/run", json={"input": 9}).json()["id"]  # once only
    assert status_of(sb, eid, later) == {"id": later, "status": "IN_QUEUE"}


def test_container_changes_make_releases_and_replace_idle_workers(sb: Sandbox):
    endpoint = create_endpoint(sb, workers={"min": 1, "max": 1, "idleTimeout": 5})
    eid = endpoint["id"]
    url = f"{sb.url}/v2/serverless/{eid}"

    def workers() -> list[dict[str, Any]]:
        listed: list[dict[str, Any]] = httpx.get(
            url + "/workers", headers=_auth(sb), timeout=10
        ).json()["workers"]
        return listed

    [old] = wait_for(workers)
    assert old["version"] == 1 and old["isStale"] is False
    httpx.patch(url, json={"workers": {"max": 2}}, headers=_auth(sb), timeout=10)
    patch = {"image": "myorg/worker:v2", "env": {"A": "1"}}
    assert httpx.patch(url, json=patch, headers=_auth(sb), timeout=10).status_code == 200
    history = httpx.get(url + "/releases", headers=_auth(sb), timeout=10).json()
    assert history["endpointVersion"] == 2
    assert [r["version"] for r in history["releases"]] == [2, 1]  # workers.max is no release
    assert history["releases"][0]["diff"] == [
        {"field": "image", "old": "myorg/worker:v1", "new": "myorg/worker:v2"},
        {"field": "env", "old": {}, "new": {"A": "1"}},
    ]
    # §1.4: an idle worker of the old release goes at once; its successor runs the new one
    [new] = wait_for(lambda: [w for w in workers() if w["id"] != old["id"]])
    assert new["version"] == 2 and [w["id"] for w in workers()] == [new["id"]]


def test_webhook_post_follows_no_redirect(hook):
    url, received = hook
    hits: list[str] = []

    class Redirect(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            hits.append(self.path)
            self.send_response(307)
            self.send_header("Location", url)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        code = engine._post(f"http://127.0.0.1:{server.server_address[1]}/x", b"{}")
    finally:
        server.shutdown()
        server.server_close()
    assert code == 307 and hits == ["/x"] and received == []
    assert not engine._loopback("http://10.0.0.1/hook")
    assert not engine._loopback("file:///etc/passwd")
    assert engine._loopback("http://[::1]:9/hook") and engine._loopback("http://localhost/h")


def test_cold_start_holds_jobs_until_the_worker_is_ready(sb: Sandbox):
    sb.faults({"serverless": {"cold_start": 3600}})
    endpoint = create_endpoint(sb)
    eid = endpoint["id"]
    job_id = data(sb, "POST", f"{eid}/run", json={"input": "cold"}).json()["id"]

    def health() -> dict[str, Any]:
        body: dict[str, Any] = data(sb, "GET", f"{eid}/health").json()
        return body

    wait_for(lambda: health()["workers"]["initializing"] == 1)
    assert status_of(sb, eid, job_id) == {"id": job_id, "status": "IN_QUEUE"}
    sb.faults({"serverless": {"cold_start": 0}})  # the booting worker is ready now
    assert terminal(sb, eid, job_id)["output"] == "cold"
    assert health()["workers"]["initializing"] == 0


def test_sdk_in_a_fresh_process_reads_the_env_that_podctl_prints(sb: Sandbox, capsys):
    endpoint = create_endpoint(sb)
    assert run(["sandbox", "env", "--data-dir", str(sb.data_dir)]) == 0
    env = {"PATH": os.environ.get("PATH", "")}
    for line in capsys.readouterr().out.splitlines():
        if line.startswith("export "):
            env.update(item.split("=", 1) for item in line[len("export ") :].split())
    script = (
        "import os, runpod\n"  # the SDK reads RUNPOD_ENDPOINT_BASE_URL at import (§2.8)
        "runpod.api_key = os.environ['RUNPOD_API_KEY']\n"
        f"print(runpod.Endpoint({endpoint['id']!r}).run_sync({{'from': 'env'}}, timeout=60))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "{'from': 'env'}\n"


def test_control_plane_shares_the_rest_transport_and_its_faults(sb: Sandbox):
    """/v2/serverless answers like the other REST v2 routes: RateLimit headers, the REST
    faults (429 with Retry-After, a create applied but its answer lost), the 1 MiB cap."""
    body = {"name": "ep", **GPU_ENDPOINT}
    ok = httpx.get(sb.url + "/v2/serverless", headers=_auth(sb), timeout=10)
    assert "ratelimit" in ok.headers and "ratelimit-policy" in ok.headers
    sb.faults({"errors": {"kinds": ["429"], "count": 1, "retry_after": 2}})
    limited = httpx.post(sb.url + "/v2/serverless", json=body, headers=_auth(sb), timeout=10)
    assert limited.status_code == 429 and limited.headers["retry-after"] == "2"
    assert httpx.get(sb.url + "/v2/serverless", headers=_auth(sb), timeout=10).json() == {
        "endpoints": []
    }
    sb.faults({"lose_responses": {"count": 1, "operations": ["rest:createEndpoint"]}})
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        httpx.post(sb.url + "/v2/serverless", json=body, headers=_auth(sb), timeout=10)
    listed = httpx.get(sb.url + "/v2/serverless", headers=_auth(sb), timeout=10).json()
    assert [e["name"] for e in listed["endpoints"]] == ["ep"]  # created all the same
    huge = {"name": "x" * (2 << 20), **GPU_ENDPOINT}
    too_big = httpx.post(sb.url + "/v2/serverless", json=huge, headers=_auth(sb), timeout=10)
    assert too_big.status_code == 413
    bad = httpx.post(sb.url + "/v2/serverless", content=b"{not json", headers=_auth(sb), timeout=10)
    assert bad.status_code == 400 and bad.json()["title"] == "Bad Request"


def test_purge_queue_rate_limit(sb: Sandbox):
    endpoint = create_endpoint(sb)
    codes = [data(sb, "POST", f"{endpoint['id']}/purge-queue").status_code for _ in range(3)]
    assert codes == [200, 200, 429]  # §2.1: 2 per 10 s per endpoint
    other = create_endpoint(sb)  # the limit is per endpoint
    assert data(sb, "POST", f"{other['id']}/purge-queue").status_code == 200
