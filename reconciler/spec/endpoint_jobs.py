"""Endpoint jobs in the spec: which jobs target an endpoint, their rules, and their build.

A job targets a pod (`pod:` + `run:`) or an endpoint (`endpoint: NAME` of the stack, or
`endpoint_id: ID`), never both. Inputs are read here (JSON, JSON Lines) so that every
unreadable line is reported with its file and line before anything is sent.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from reconciler.errors import Problem
from reconciler.model import EndpointJobSpec, JobPolicy, Rerun
from reconciler.spec.durations import parse_duration
from reconciler.spec.rules import local_path
from reconciler.spec.schema import did_you_mean
from reconciler.spec.stack import Entry, StackSource

TARGETS = ("endpoint", "endpoint_id")
POD_ONLY = ("run", "env", "workdir", "upload", "download")
ENDPOINT_ONLY = (
    "input",
    "input_file",
    "inputs_file",
    "policy",
    "webhook",
    "sync",
    "stream",
    "output",
)
INPUTS = ("input", "input_file", "inputs_file")
DEFAULT_PARALLEL = 32
RUN_LIMIT_BYTES = 10 * 1000 * 1000  # /run payload limit (runpod-serverless.md §2.1)
RUNSYNC_LIMIT_BYTES = 20 * 1000 * 1000
EXECUTION_TIMEOUT_S = (5, 7 * 86_400)  # §2.2 policy bounds
TTL_S = (10, 7 * 86_400)
MAX_LINE_PROBLEMS = 5  # bad lines reported per inputs file


def is_endpoint_job(value: object) -> bool:
    return isinstance(value, dict) and any(key in value for key in TARGETS)


def canonical(value: object) -> str:
    """An input as the JSON text that is sent and hashed (keys sorted, no spaces)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _stack_endpoints(stack: StackSource) -> list[str]:
    names: list[str] = []
    for doc in stack.docs:
        section = doc.data.get("endpoints") if isinstance(doc.data, dict) else None
        if isinstance(section, dict):
            names += [str(n) for n in section]
    return names


def check_endpoint_jobs(stack: StackSource) -> list[Problem]:
    """Target, input and option rules of every job, with the endpoint references checked."""
    problems: list[Problem] = []
    endpoints = _stack_endpoints(stack)
    outputs: dict[str, str] = {}
    for name, job in stack.jobs.items():
        if not isinstance(job.value, dict):
            continue
        problems += _check_target(name, job, endpoints)
        if is_endpoint_job(job.value) and "pod" not in job.value:
            problems += _check_endpoint_job(name, job, stack, outputs)
    return problems


def _check_target(name: str, job: Entry, endpoints: list[str]) -> list[Problem]:
    value: dict[str, Any] = job.value  # type: ignore[assignment]
    doc, path = job.doc, job.path
    has_pod = "pod" in value
    targets = [key for key in TARGETS if key in value]
    if has_pod and targets:
        return [
            doc.problem(
                (*path, targets[0]),
                f"job {name!r} has both pod and {targets[0]}: a job runs on a pod (over SSH) "
                "or is sent to a serverless endpoint, not both",
                f"remove `pod:` to send it to the endpoint, or `{targets[0]}:` to run it on "
                "the pod",
                at_key=True,
            )
        ]
    if len(targets) == 2:
        return [
            doc.problem(
                (*path, "endpoint_id"),
                f"job {name!r} has both endpoint and endpoint_id",
                "endpoint names an endpoint of this stack, endpoint_id one outside it: keep one",
                at_key=True,
            )
        ]
    if not has_pod and not targets:
        return [
            doc.problem(
                path,
                f"job {name!r} has no target",
                "set `pod: NAME` (runs `run:` over SSH), `endpoint: NAME` (an endpoint of this "
                "stack) or `endpoint_id: ID` (an external endpoint)",
                at_key=True,
            )
        ]
    problems = []
    if has_pod:
        for key in ENDPOINT_ONLY:
            if key in value:
                problems.append(
                    doc.problem(
                        (*path, key),
                        f"{key!r} is for endpoint jobs; job {name!r} runs on pod "
                        f"{value.get('pod')!r}",
                        "send it to an endpoint (endpoint: or endpoint_id:) or remove the key",
                        at_key=True,
                    )
                )
        if isinstance(value.get("parallel"), int) and not isinstance(value["parallel"], bool):
            problems.append(
                doc.problem(
                    (*path, "parallel"),
                    "a pod job's parallel is true or false",
                    "a number of requests in flight is for batches (inputs_file)",
                )
            )
        return problems
    for key in POD_ONLY:
        if key in value:
            problems.append(
                doc.problem(
                    (*path, key),
                    f"{key!r} is for pod jobs; job {name!r} is sent to {targets[0]} "
                    f"{value[targets[0]]!r}",
                    "an endpoint job sends `input` (or input_file, inputs_file) to the "
                    "endpoint's handler; remove the key",
                    at_key=True,
                )
            )
    target = value.get("endpoint")
    if isinstance(target, str) and target not in endpoints:
        hint = did_you_mean(target, endpoints) or (
            f"declared endpoints: {', '.join(endpoints)}"
            if endpoints
            else "declare it under `endpoints:`, or use `endpoint_id:` for an external one"
        )
        problems.append(doc.problem((*path, "endpoint"), f"no endpoint named {target!r}", hint))
    return problems


def _check_endpoint_job(
    name: str, job: Entry, stack: StackSource, outputs: dict[str, str]
) -> list[Problem]:
    value: dict[str, Any] = job.value  # type: ignore[assignment]
    doc, path = job.doc, job.path
    problems: list[Problem] = []
    given = [key for key in INPUTS if key in value]
    if not given:
        problems.append(
            doc.problem(
                path,
                f"job {name!r} sends nothing",
                "set `input:` (a value), `input_file:` (a JSON file) or `inputs_file:` (JSON "
                "Lines, one request per line)",
                at_key=True,
            )
        )
    elif len(given) > 1:
        problems.append(
            doc.problem(
                (*path, given[1]),
                f"job {name!r} has both {given[0]} and {given[1]}",
                "keep one: input (a value), input_file (one JSON file) or inputs_file (a batch)",
                at_key=True,
            )
        )
    batch = "inputs_file" in value
    parallel = value.get("parallel")
    if isinstance(parallel, bool):
        problems.append(
            doc.problem(
                (*path, "parallel"),
                "an endpoint job's parallel is a number of requests in flight (1 to 1000)",
                "like `parallel: 32`, with inputs_file",
            )
        )
    elif isinstance(parallel, int) and not batch:
        problems.append(
            doc.problem(
                (*path, "parallel"),
                f"job {name!r} sends one request: parallel is for batches",
                "use inputs_file for a batch, or remove parallel",
                at_key=True,
            )
        )
    if batch and value.get("stream") is True:
        problems.append(
            doc.problem(
                (*path, "stream"),
                "stream is for single endpoint jobs, not batches",
                "remove `stream: true`, or send one input (input: or input_file:)",
                at_key=True,
            )
        )
    problems += _check_policy(doc, path, value.get("policy"))
    limit = RUNSYNC_LIMIT_BYTES if value.get("sync") is True else RUN_LIMIT_BYTES
    for key in INPUTS[1:]:
        written = value.get(key)
        if isinstance(written, str) and written and "\0" not in written:
            _, found = _read_inputs(doc, (*path, key), written, lines=key == "inputs_file")
            problems += found
    if "input" in value and len(canonical(value["input"]).encode()) > limit:
        problems.append(_too_large(doc, (*path, "input"), limit))
    output = value.get("output")
    if isinstance(output, str) and output and "\0" not in output:
        written_to = str(local_path(doc, output))
        if output.endswith("/"):
            problems.append(
                doc.problem(
                    (*path, "output"),
                    "output is a file, not a folder",
                    f"like ./results/{name}.json",
                )
            )
        other = outputs.setdefault(written_to, name)
        if other != name:
            problems.append(
                doc.problem(
                    (*path, "output"),
                    f"jobs {other!r} and {name!r} both write {written_to}",
                    "give each job its own output file",
                )
            )
    return problems


def _too_large(doc: Any, path: Any, limit: int) -> Problem:
    route = "/runsync" if limit == RUNSYNC_LIMIT_BYTES else "/run"
    problem: Problem = doc.problem(
        path,
        f"the input is over RunPod's {limit // 1_000_000} MB limit of {route}",
        "send a URL or a network-volume path in the input instead of the data",
    )
    return problem


def _check_policy(doc: Any, path: Any, policy: object) -> list[Problem]:
    if not isinstance(policy, dict):
        return []
    problems = []
    for key, (low, high) in (("execution_timeout", EXECUTION_TIMEOUT_S), ("ttl", TTL_S)):
        seconds = parse_duration(policy.get(key))
        if seconds is not None and not low <= seconds <= high:
            problems.append(
                doc.problem(
                    (*path, "policy", key),
                    f"policy.{key} must be between {low}s and 7d, got {policy[key]!r}",
                    "RunPod refuses a request outside these bounds",
                )
            )
    return problems


def _read_inputs(
    doc: Any, path: Any, written: str, *, lines: bool
) -> tuple[list[str], list[Problem]]:
    """Each input as canonical JSON text, or the problems of the file (at most a few lines)."""
    file = local_path(doc, written)
    try:
        text = Path(file).read_text(encoding="utf-8")
    except FileNotFoundError:
        return [], [
            doc.problem(
                path,
                f"the file {written!r} does not exist",
                f"relative paths start at the folder of the spec file ({doc.folder})",
            )
        ]
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return [], [doc.problem(path, f"cannot read {written!r}: {exc}")]
    if not lines:
        try:
            return [canonical(json.loads(text))], []
        except (ValueError, RecursionError) as exc:
            return [], [doc.problem(path, f"{file} is not JSON: {exc}")]
    out: list[str] = []
    problems: list[Problem] = []
    bad = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            out.append(canonical(json.loads(line)))
        except (ValueError, RecursionError) as exc:
            bad += 1
            if bad <= MAX_LINE_PROBLEMS:
                problems.append(doc.problem(path, f"{file}:{number}: not JSON ({exc})"))
    if bad > MAX_LINE_PROBLEMS:
        problems.append(doc.problem(path, f"{file}: {bad - MAX_LINE_PROBLEMS} more bad line(s)"))
    if not out and not problems:
        problems.append(doc.problem(path, f"{file} has no inputs", "write one JSON value per line"))
    for index, item in enumerate(out):
        if len(item.encode()) > RUN_LIMIT_BYTES:
            problems.append(_too_large(doc, path, RUN_LIMIT_BYTES))
            break
        del index
    return out, problems


def endpoint_job_entries(stack: StackSource) -> Iterator[tuple[str, Entry]]:
    for name, entry in stack.jobs.items():
        if is_endpoint_job(entry.value):
            yield name, entry


def build_endpoint_job(name: str, job: Entry) -> EndpointJobSpec:
    """The job of a stack that passed every check, every default filled."""
    value: dict[str, Any] = job.value  # type: ignore[assignment]
    doc = job.doc
    if "input" in value:
        inputs = [canonical(value["input"])]
    else:
        key = "inputs_file" if "inputs_file" in value else "input_file"
        inputs, _ = _read_inputs(doc, (*job.path, key), value[key], lines=key == "inputs_file")
    policy = value.get("policy") or {}
    parallel = value.get("parallel")
    output = value.get("output")
    return EndpointJobSpec(
        name=name,
        inputs=tuple(inputs),
        endpoint=value.get("endpoint"),
        endpoint_id=value.get("endpoint_id"),
        batch="inputs_file" in value,
        inputs_file=str(local_path(doc, value["inputs_file"])) if "inputs_file" in value else None,
        policy=JobPolicy(
            execution_timeout_s=parse_duration(policy.get("execution_timeout")),
            ttl_s=parse_duration(policy.get("ttl")),
            low_priority=bool(policy.get("low_priority", False)),
        ),
        webhook=value.get("webhook"),
        sync=bool(value.get("sync", False)),
        stream=bool(value.get("stream", False)),
        output=None if output is None else str(local_path(doc, output)),
        parallel=int(parallel)
        if isinstance(parallel, int) and not isinstance(parallel, bool)
        else DEFAULT_PARALLEL,
        needs=tuple(value.get("needs", ())),
        timeout_s=parse_duration(value.get("timeout")),
        retries=int(value.get("retries", 0)),
        rerun=Rerun(value.get("rerun", Rerun.ON_CHANGE.value)),
    )
