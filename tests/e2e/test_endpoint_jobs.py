"""Endpoint jobs through the CLI against the sandbox's data plane: each request sent once,
reattached by id after a crash, an unknown /run answer never sent again, outputs collected."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.conftest import Podctl, Sandbox
from tests.sandbox.test_serverless import GPU_ENDPOINT


def make_endpoint(sb: Sandbox, **fields: Any) -> str:
    body = {"name": "e2e-ep", **GPU_ENDPOINT, **fields}
    resp = httpx.post(
        sb.url + "/v2/serverless",
        json=body,
        headers={"Authorization": f"Bearer {sb.key}"},
        timeout=10,
    )
    assert resp.status_code == 201, resp.text
    endpoint_id: str = resp.json()["id"]
    return endpoint_id


def sandbox_jobs(sb: Sandbox) -> list[dict[str, Any]]:
    resp = httpx.get(
        sb.url + "/_sandbox/serverless", headers={"Authorization": f"Bearer {sb.key}"}, timeout=10
    )
    assert resp.status_code == 200, resp.text
    jobs: list[dict[str, Any]] = resp.json()["submitted"]
    return jobs


def single_spec(endpoint_id: str, extra: str = "") -> str:
    return (
        textwrap.dedent(
            f"""\
        version: 1
        stack: e2e
        jobs:
          hello:
            endpoint_id: {endpoint_id}
            input: {{prompt: hi, n: 3}}
            output: ./results/hello.json
        """
        )
        + extra
    )


def test_single_job_runs_once_and_writes_its_output(podctl: Podctl, sb: Sandbox) -> None:
    endpoint_id = make_endpoint(sb)
    podctl.write(text=single_spec(endpoint_id))
    first = podctl("apply", "-y", "-f", str(podctl.spec))
    assert first.code == 0, first.out + first.err
    out = podctl.folder / "results" / "hello.json"
    assert json.loads(out.read_text()) == {"n": 3, "prompt": "hi"}  # the echo handler
    assert podctl.recorded()["jobs"]["hello"]["status"] == "succeeded"
    second = podctl("apply", "-y", "-f", str(podctl.spec))
    assert second.code == 0, second.out + second.err
    plan = podctl("plan", "-f", str(podctl.spec), "--detailed-exitcode")
    assert plan.code == 0, plan.out + plan.err
    mine = [j for j in sandbox_jobs(sb) if j.get("endpoint_id") == endpoint_id]
    assert len(mine) == 1


def test_single_job_output_never_replaces_a_users_file(podctl: Podctl, sb: Sandbox) -> None:
    endpoint_id = make_endpoint(sb)
    podctl.write(text=single_spec(endpoint_id))
    out = podctl.folder / "results" / "hello.json"
    out.parent.mkdir()
    out.write_text("mine\n")
    result = podctl("apply", "-y", "-f", str(podctl.spec))
    assert result.code == 1
    assert "exists and podctl did not write it" in result.out + result.err
    assert out.read_text() == "mine\n"


def batch_spec(endpoint_id: str, lines: int, folder: Path, extra: str = "") -> str:
    (folder / "prompts.jsonl").write_text(
        "".join(json.dumps({"i": i}) + "\n" for i in range(lines))
    )
    return (
        textwrap.dedent(
            f"""\
        version: 1
        stack: e2e
        jobs:
          many:
            endpoint_id: {endpoint_id}
            inputs_file: ./prompts.jsonl
            parallel: 8
            output: ./results/out.jsonl
        """
        )
        + extra
    )


def test_batch_outputs_in_input_order_and_second_apply_sends_nothing(
    podctl: Podctl, sb: Sandbox
) -> None:
    endpoint_id = make_endpoint(sb, workers={"min": 0, "max": 4, "idleTimeout": 5})
    podctl.write(text=batch_spec(endpoint_id, 40, podctl.folder))
    first = podctl("apply", "-y", "-f", str(podctl.spec))
    assert first.code == 0, first.out + first.err
    rows = (podctl.folder / "results" / "out.jsonl").read_text().splitlines()
    assert [json.loads(r) for r in rows] == [{"i": i} for i in range(40)]
    assert "40/40 done" in first.out + first.err
    again = podctl("apply", "-y", "-f", str(podctl.spec))
    assert again.code == 0
    mine = [j for j in sandbox_jobs(sb) if j.get("endpoint_id") == endpoint_id]
    assert len(mine) == 40
