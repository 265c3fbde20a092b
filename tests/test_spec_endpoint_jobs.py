"""Endpoint jobs in the spec: each broken form reported once with where and how to fix it,
and a valid one built with its inputs read and its defaults filled."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reconciler.model import Rerun
from tests.spec_helpers import load, problems_of, write

HEAD = """\
version: 1
stack: demo
pods:
  box:
    image: img
    gpu: {type: A4000, count: 1}
jobs:
  ask:
"""


def one_problem(tmp_path: Path, job: str) -> tuple[str, str, str, str]:
    spec = write(tmp_path, HEAD + job)
    problems = problems_of([spec])
    assert len(problems) == 1, [p.message for p in problems]
    p = problems[0]
    return p.location.removeprefix(f"{spec}:"), p.path, p.message, p.hint


CASES = [
    (
        "both-pod-and-endpoint",
        "    pod: box\n    run: echo\n    endpoint_id: abc123\n",
        (
            "11:5",
            "jobs.ask.endpoint_id",
            "job 'ask' has both pod and endpoint_id: a job runs on a pod (over SSH) or is sent "
            "to a serverless endpoint, not both",
            "remove `pod:` to send it to the endpoint, or `endpoint_id:` to run it on the pod",
        ),
    ),
    (
        "neither",
        "    retries: 1\n",
        (
            "8:3",
            "jobs.ask",
            "job 'ask' has no target",
            "set `pod: NAME` (runs `run:` over SSH), `endpoint: NAME` (an endpoint of this "
            "stack) or `endpoint_id: ID` (an external endpoint)",
        ),
    ),
    (
        "both-endpoint-and-id",
        "    endpoint: scorer\n    endpoint_id: abc\n    input: 1\n",
        (
            "10:5",
            "jobs.ask.endpoint_id",
            "job 'ask' has both endpoint and endpoint_id",
            "endpoint names an endpoint of this stack, endpoint_id one outside it: keep one",
        ),
    ),
    (
        "no-input",
        "    endpoint_id: abc\n",
        (
            "8:3",
            "jobs.ask",
            "job 'ask' sends nothing",
            "set `input:` (a value), `input_file:` (a JSON file) or `inputs_file:` (JSON Lines, "
            "one request per line)",
        ),
    ),
    (
        "run-on-endpoint",
        "    endpoint_id: abc\n    input: 1\n    run: echo hi\n",
        (
            "11:5",
            "jobs.ask.run",
            "'run' is for pod jobs; job 'ask' is sent to endpoint_id 'abc'",
            "an endpoint job sends `input` (or input_file, inputs_file) to the endpoint's "
            "handler; remove the key",
        ),
    ),
    (
        "input-on-pod",
        "    pod: box\n    run: echo\n    input: 1\n",
        (
            "11:5",
            "jobs.ask.input",
            "'input' is for endpoint jobs; job 'ask' runs on pod 'box'",
            "send it to an endpoint (endpoint: or endpoint_id:) or remove the key",
        ),
    ),
    (
        "parallel-on-single",
        "    endpoint_id: abc\n    input: 1\n    parallel: 4\n",
        (
            "11:5",
            "jobs.ask.parallel",
            "job 'ask' sends one request: parallel is for batches",
            "use inputs_file for a batch, or remove parallel",
        ),
    ),
    (
        "unknown-endpoint",
        "    endpoint: scorer\n    input: 1\n",
        (
            "9:15",
            "jobs.ask.endpoint",
            "no endpoint named 'scorer'",
            "declare it under `endpoints:`, or use `endpoint_id:` for an external one",
        ),
    ),
    (
        "policy-too-short",
        "    endpoint_id: abc\n    input: 1\n    policy: {execution_timeout: 2s}\n",
        (
            "11:33",
            "jobs.ask.policy.execution_timeout",
            "policy.execution_timeout must be between 5s and 7d, got '2s'",
            "RunPod refuses a request outside these bounds",
        ),
    ),
    (
        "missing-inputs-file",
        "    endpoint_id: abc\n    inputs_file: ./nope.jsonl\n",
        (
            "10:18",
            "jobs.ask.inputs_file",
            "the file './nope.jsonl' does not exist",
            None,
        ),
    ),
]


@pytest.mark.parametrize(("job", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_broken_endpoint_job_reports_one_precise_problem(
    tmp_path: Path, job: str, expected: tuple[str, str, str, str | None]
) -> None:
    where, path, message, hint = one_problem(tmp_path, job)
    assert (where, path, message) == expected[:3]
    if expected[3] is not None:
        assert hint == expected[3]


def test_bad_lines_of_an_inputs_file_are_named_by_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "p.jsonl").write_text('{"a": 1}\n\nnot json\n{"b": 2}\n')
    spec = write(tmp_path, HEAD + "    endpoint_id: abc\n    inputs_file: p.jsonl\n")
    problems = problems_of([spec])
    assert [p.message for p in problems] == [
        f"{tmp_path / 'p.jsonl'}:3: not JSON (Expecting value: line 1 column 1 (char 0))"
    ]


def test_a_pod_job_without_run_still_says_so(tmp_path: Path) -> None:
    _where, path, message, _ = one_problem(tmp_path, "    pod: box\n")
    assert (path, message) == ("jobs.ask", "missing required key 'run'")


def test_batch_builds_with_inputs_in_order_and_defaults(tmp_path: Path) -> None:
    (tmp_path / "p.jsonl").write_text('{"b": 2, "a": 1}\n\n"two"\n3\n')
    spec = write(
        tmp_path,
        HEAD
        + "    endpoint_id: abc\n    inputs_file: p.jsonl\n    output: out/r.jsonl\n"
        + "    policy: {ttl: 1h, execution_timeout: 10m, low_priority: true}\n",
    )
    desired = load([spec])
    assert "ask" not in desired.jobs
    job = desired.endpoint_jobs["ask"]
    assert job.inputs == ('{"a":1,"b":2}', '"two"', "3")
    assert job.batch and job.parallel == 32 and job.rerun is Rerun.ON_CHANGE
    assert job.output == str(tmp_path / "out" / "r.jsonl")
    assert (job.policy.ttl_s, job.policy.execution_timeout_s) == (3600, 600)
    assert job.policy.low_priority


def test_single_job_from_an_input_file(tmp_path: Path) -> None:
    (tmp_path / "one.json").write_text(json.dumps({"prompt": "hi"}))
    spec = write(
        tmp_path, HEAD + "    endpoint_id: abc\n    input_file: one.json\n    sync: true\n"
    )
    job = load([spec]).endpoint_jobs["ask"]
    assert job.inputs == ('{"prompt":"hi"}',) and job.sync and not job.batch
