"""RunPod's own env on every sandbox pod, and its pod-scoped `RUNPOD_API_KEY`."""

from __future__ import annotations

from typing import Any

import httpx

from tests.sandbox.conftest import Sandbox
from tests.sandbox.test_ssh import _create_ssh_pod, ssh

ENV = "RUNPOD_POD_ID RUNPOD_API_KEY RUNPOD_TCP_PORT_22 RUNPOD_GPU_COUNT RUNPOD_DC_ID"


def _pod_env(sb: Sandbox, key: Any, pod_id: str) -> dict[str, str]:
    port = sb.ssh_port(pod_id)
    script = "; ".join(f'echo "{name}=${name}"' for name in ENV.split())
    out = ssh(port, key, script)
    assert out.returncode == 0, out.stderr
    return dict(line.split("=", 1) for line in out.stdout.splitlines())


def _errors(resp: httpx.Response) -> list[dict[str, Any]]:
    assert resp.status_code == 200, resp.text
    errors: list[dict[str, Any]] = resp.json().get("errors") or []
    return errors


def test_every_pod_carries_runpods_env(sb: Sandbox, client_key):
    key, pub = client_key
    pod_id = _create_ssh_pod(sb, pub)
    env = _pod_env(sb, key, pod_id)
    assert env["RUNPOD_POD_ID"] == pod_id
    assert env["RUNPOD_TCP_PORT_22"] == str(sb.ssh_port(pod_id))
    assert env["RUNPOD_GPU_COUNT"] == "1"
    assert env["RUNPOD_DC_ID"] != ""
    assert env["RUNPOD_API_KEY"] not in ("", sb.key)  # its own key, not the account's
    # the key is injected into the container: it is not part of the pod's env on the API
    listed = sb.gql("{ myself { pods { id env } } }")["myself"]["pods"]
    assert all(env["RUNPOD_API_KEY"] not in " ".join(p["env"]) for p in listed)


def test_the_pod_key_reads_and_stops_its_own_pod_and_nothing_else(sb: Sandbox, client_key):
    key, pub = client_key
    mine = _create_ssh_pod(sb, pub)
    other = _create_ssh_pod(sb, pub)
    pod_key = _pod_env(sb, key, mine)["RUNPOD_API_KEY"]
    own = sb.post(f'{{ pod(input: {{podId: "{mine}"}}) {{ id desiredStatus }} }}', key=pod_key)
    assert own.json() == {"data": {"pod": {"id": mine, "desiredStatus": "RUNNING"}}}

    refused = [
        f'{{ pod(input: {{podId: "{other}"}}) {{ id }} }}',
        f'mutation {{ podStop(input: {{podId: "{other}"}}) {{ id }} }}',
        f'mutation {{ podTerminate(input: {{podId: "{other}"}}) }}',
        f'mutation {{ podResume(input: {{podId: "{mine}"}}) {{ id }} }}',
        "{ myself { pods { id } } }",
        "{ gpuTypes { id } }",
        'mutation { podFindAndDeployOnDemand(input: {imageName: "x",'
        ' gpuTypeId: "NVIDIA RTX A4000"}) { id } }',
        'mutation { updateUserSettings(input: {pubKey: "x"}) { id } }',
    ]
    for query in refused:
        errors = _errors(sb.post(query, key=pod_key))
        assert errors, query
        assert errors[0]["extensions"]["code"] == "FORBIDDEN", errors
        assert f"This API key is scoped to pod {mine}" in errors[0]["message"]
    pods = {
        p["id"]: p["desiredStatus"]
        for p in sb.gql("{ myself { pods { id desiredStatus } } }")["myself"]["pods"]
    }
    assert pods == {mine: "RUNNING", other: "RUNNING"}  # nothing refused changed anything

    stopped = sb.post(
        f'mutation {{ podStop(input: {{podId: "{mine}"}}) {{ id desiredStatus }} }}', key=pod_key
    )
    assert stopped.json() == {"data": {"podStop": {"id": mine, "desiredStatus": "EXITED"}}}
    assert sb.post(
        f'mutation {{ podTerminate(input: {{podId: "{mine}"}}) }}', key=pod_key
    ).json() == {"data": {"podTerminate": None}}
    # a terminated pod's key opens nothing any more
    assert sb.post("{ myself { id } }", key=pod_key).status_code == 401
    assert sb.pod(other) is not None


def test_the_pod_key_is_not_an_admin_key(sb: Sandbox, client_key):
    key, pub = client_key
    pod_key = _pod_env(sb, key, _create_ssh_pod(sb, pub))["RUNPOD_API_KEY"]
    resp = httpx.get(sb.url + "/_sandbox/status", headers={"Authorization": f"Bearer {pod_key}"})
    assert resp.status_code == 401


def test_a_pod_stops_itself_from_inside_with_its_key(sb: Sandbox, client_key):
    key, pub = client_key
    pod_id = _create_ssh_pod(sb, pub)
    port = sb.ssh_port(pod_id)
    body = '{"query": "mutation { podStop(input: {podId: \\"\'$RUNPOD_POD_ID\'\\"}) { id } }"}'
    out = ssh(
        port,
        key,
        f"curl -s -X POST -H 'Content-Type: application/json' "
        f"-H \"Authorization: Bearer $RUNPOD_API_KEY\" -d '{body}' {sb.url}/graphql",
    )
    assert sb.pod(pod_id)["desiredStatus"] == "EXITED", out  # type: ignore[index]
