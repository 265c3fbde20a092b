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


def write_handler(folder: Path, body: str) -> str:
    path = folder / "handler.py"
    path.write_text(textwrap.dedent(body))
    return str(path)


def test_stream_chunks_states_and_output_reach_podctl_logs(podctl: Podctl, sb: Sandbox) -> None:
    handler = write_handler(
        podctl.folder,
        """
        def handler(job):
            for word in ("alpha", "beta", "gamma"):
                yield word
        """,
    )
    endpoint_id = make_endpoint(sb, env={"PODCTL_SANDBOX_HANDLER": handler})
    podctl.write(text=single_spec(endpoint_id, "    stream: true\n"))
    result = podctl("apply", "-y", "-f", str(podctl.spec))
    assert result.code == 0, result.out + result.err
    assert "[hello] alpha" in result.out + result.err
    logs = podctl("logs", "hello", "-f", str(podctl.spec))
    assert logs.code == 0, logs.err
    lines = logs.out.splitlines()
    assert lines[0] == "apply started (1 request(s))"
    assert lines[1] == "sending /run (try 1)"
    assert lines[2].startswith("submitted as ")
    assert [line for line in lines if line.startswith("[stream]")] == [
        "[stream] alpha",
        "[stream] beta",
        "[stream] gamma",
    ]
    assert "COMPLETED: output" in logs.out


def test_failed_request_error_is_in_the_summary_and_the_log(podctl: Podctl, sb: Sandbox) -> None:
    handler = write_handler(
        podctl.folder,
        """
        def handler(job):
            raise ValueError("the model is not loaded")
        """,
    )
    endpoint_id = make_endpoint(sb, env={"PODCTL_SANDBOX_HANDLER": handler})
    podctl.write(text=single_spec(endpoint_id, "    retries: 1\n"))
    result = podctl("apply", "-y", "-f", str(podctl.spec))
    assert result.code == 1
    assert "the model is not loaded" in result.out + result.err
    logs = podctl("logs", "hello", "-f", str(podctl.spec))
    assert "retrying" in logs.out  # one /retry, same id
    assert logs.out.count("FAILED: ") == 2
    mine = [j for j in sandbox_jobs(sb) if j["endpoint_id"] == endpoint_id]
    assert len(mine) == 1  # /retry keeps the job: one submission


def test_job_timeout_cancels_what_podctl_started(podctl: Podctl, sb: Sandbox) -> None:
    handler = write_handler(
        podctl.folder,
        """
        import time
        def handler(job):
            time.sleep(60)
        """,
    )
    endpoint_id = make_endpoint(sb, env={"PODCTL_SANDBOX_HANDLER": handler})
    podctl.write(text=single_spec(endpoint_id, "    timeout: 2s\n"))
    result = podctl("apply", "-y", "-f", str(podctl.spec))
    assert result.code == 1
    text = result.out + result.err
    assert "timed out after 2s; cancelled the jobs podctl started: " in text
    job_id = next(j["id"] for j in sandbox_jobs(sb) if j["endpoint_id"] == endpoint_id)
    assert job_id in text
    status = httpx.get(
        f"{sb.url}/serverless/v2/{endpoint_id}/status/{job_id}",
        headers={"Authorization": f"Bearer {sb.key}"},
        timeout=10,
    ).json()
    assert status["status"] == "CANCELLED"


def test_purge_queue_removes_queued_requests(podctl: Podctl, sb: Sandbox) -> None:
    endpoint_id = make_endpoint(sb, workers={"min": 0, "max": 0, "idleTimeout": 5})
    for i in range(3):
        httpx.post(
            f"{sb.url}/serverless/v2/{endpoint_id}/run",
            json={"input": i},
            headers={"Authorization": f"Bearer {sb.key}"},
            timeout=10,
        )
    podctl.write(text=single_spec(endpoint_id))
    result = podctl("purge-queue", f"endpoint_id.{endpoint_id}", "-f", str(podctl.spec))
    assert result.code == 0, result.err
    assert result.out.strip() == (
        f"endpoint_id.{endpoint_id}: removed 3 queued request(s); running ones go on."
    )
    bad = podctl("purge-queue", "pod.x", "-f", str(podctl.spec))
    assert bad.code != 0 and "write endpoint.NAME" in bad.err


def test_the_shipped_serverless_spec_runs_once_and_writes_its_outputs(
    podctl: Podctl, sb: Sandbox, tmp_path: Path
) -> None:
    import shutil

    root = Path(__file__).resolve().parents[2]
    folder = tmp_path / "shipped"
    shutil.copytree(root / "specs", folder, ignore=shutil.ignore_patterns("results", "*.lock*"))
    spec = str(folder / "serverless.yaml")
    first = podctl("apply", "-y", "-f", spec)
    assert first.code == 0, first.out + first.err
    summary = json.loads((folder / "results" / "summary.json").read_text())
    assert summary["words"] == 6  # the shipped handler ran, not the echo handler
    rows = [json.loads(r) for r in (folder / "results" / "prompts.jsonl").read_text().splitlines()]
    assert [r["prompt"] for r in rows] == [f"prompt number {i} of the batch" for i in range(100)]
    sent = len(sandbox_jobs(sb))
    assert sent == 101
    second = podctl("apply", "-y", "-f", spec)
    assert second.code == 0, second.out + second.err
    assert "No changes." in second.out
    assert len(sandbox_jobs(sb)) == sent


def test_a_pod_job_that_needs_an_endpoint_job_runs_after_it(podctl: Podctl, sb: Sandbox) -> None:
    endpoint_id = make_endpoint(sb)
    podctl.write(
        text=textwrap.dedent(
            f"""\
            version: 1
            stack: e2e
            pods:
              box:
                image: img:1
                gpu: {{type: NVIDIA RTX A4000}}
            jobs:
              use:
                pod: box
                needs: [ask]
                run: echo used
              ask:
                endpoint_id: {endpoint_id}
                input: 1
            """
        )
    )
    plan = podctl("plan", "-f", str(podctl.spec))
    assert plan.code == 0, plan.err
    ask, use = plan.out.index("job.ask on endpoint_id"), plan.out.index("job.use on pod.box")
    assert ask < use


def test_status_shows_an_endpoint_job_and_its_ledger_counts(podctl: Podctl, sb: Sandbox) -> None:
    endpoint_id = make_endpoint(sb)
    podctl.write(text=batch_spec(endpoint_id, 5, podctl.folder))
    assert podctl("apply", "-y", "-f", str(podctl.spec)).code == 0
    result = podctl("--format", "json", "status", "-f", str(podctl.spec))
    assert result.code == 0, result.err
    rows = [r for r in json.loads(result.out)["jobs"] if r["job"] == "many"]
    assert rows[0]["pod"] == f"endpoint_id.{endpoint_id}"
    assert rows[0]["status"] == "succeeded"
    assert rows[0]["note"].startswith("5/5 done; 5/5 done in ")


def test_sync_job_uses_runsync_and_one_request(podctl: Podctl, sb: Sandbox) -> None:
    from reconciler.backends.serverless.client import JobApi

    endpoint_id = make_endpoint(sb)
    podctl.write(text=single_spec(endpoint_id, "    sync: true\n"))
    routes: list[str] = []
    original = JobApi._call

    async def spy(self: JobApi, method: str, route: str, *args: Any, **kwargs: Any) -> Any:
        routes.append(route)
        return await original(self, method, route, *args, **kwargs)

    import pytest

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(JobApi, "_call", spy)
        result = podctl("apply", "-y", "-f", str(podctl.spec))
    assert result.code == 0, result.out + result.err
    assert routes == ["runsync"]
    assert json.loads((podctl.folder / "results" / "hello.json").read_text())["n"] == 3
