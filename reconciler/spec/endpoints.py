"""`endpoints:` of a stack: the rules the schema cannot express, and the EndpointSpec builder."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from reconciler.errors import Problem
from reconciler.model import CpuFlavor, EndpointSpec, EndpointState, EnvValue, Flashboot
from reconciler.spec.document import DocPath, Document
from reconciler.spec.durations import parse_duration
from reconciler.spec.stack import Entry, StackSource

MAX_ENDPOINT_NAME = 60  # `<stack>-<endpoint>`, as RunPod names it (the pods' limit) [INF]
# podctl's defaults, sent on every create and update: RunPod's schema, docs and console
# disagree (runpod-serverless.md §1.3 "Defaults disagree across sources")
DEFAULT_WORKERS_MIN = 0
DEFAULT_WORKERS_MAX = 3  # schema and docs agree
DEFAULT_IDLE_TIMEOUT_S = 5  # the docs' and runpod-python's 5, not the schema's 10
DEFAULT_QUEUE_DELAY_S = 4.0  # the docs' example
DEFAULT_EXECUTION_TIMEOUT_S = 600  # the docs' 600 s (an omitted timeout is observed as 0)
DEFAULT_DISK_GB = 20
IDLE_RANGE_S = (1, 3600)  # workers.idleTimeout, §1.3
EXECUTION_RANGE_S = (5, 7 * 86400)  # §1.3 "range 5 s - 7 days"


def endpoint_sections(doc: Document) -> Iterator[DocPath]:
    """Every `endpoints.NAME` of the document (for the env checks pods and jobs share)."""
    endpoints = doc.get(("endpoints",))
    if isinstance(endpoints, dict):
        yield from (("endpoints", name) for name in endpoints)


def check_endpoints(stack: StackSource) -> list[Problem]:
    """Every problem of the stack's endpoints the schema could not see."""
    problems: list[Problem] = []
    for name, entry in stack.endpoints.items():
        problems += _check_one(stack, name, entry)
    return problems


def _check_one(stack: StackSource, name: str, entry: Entry) -> list[Problem]:
    doc, path = entry.doc, entry.path
    problems: list[Problem] = []
    if stack.name is not None and len(f"{stack.name}-{name}") > MAX_ENDPOINT_NAME:
        full = f"{stack.name}-{name}"
        problems.append(
            doc.problem(
                path,
                f"the endpoint's RunPod name {full!r} is {len(full)} characters; "
                f"at most {MAX_ENDPOINT_NAME} fit",
                "shorten the stack or the endpoint name",
                at_key=True,
            )
        )
    value = entry.value
    if not isinstance(value, dict):
        return problems
    if "image" not in value and "template" not in value:
        problems.append(
            doc.problem(
                path,
                f"endpoint {name!r} has no image",
                "set `image:` (or `template:` with a serverless template's id)",
                at_key=True,
            )
        )
    if ("gpu" in value) == ("cpu" in value):
        what = "both gpu and cpu" if "gpu" in value else "neither gpu nor cpu"
        problems.append(
            doc.problem(
                path,
                f"endpoint {name!r} sets {what}",
                "set exactly one: `gpu: {pools: [ADA_24]}` or `cpu: [{flavor: cpu3c, vcpu: 4}]`",
                at_key=True,
            )
        )
    problems += _check_workers(doc, path, value)
    problems += _check_timeouts(doc, path, value)
    problems += _check_cpu(doc, path, value)
    return problems


def _check_workers(doc: Document, path: DocPath, value: dict[str, Any]) -> list[Problem]:
    workers = value.get("workers")
    if not isinstance(workers, dict):
        return []
    low, high = workers.get("min", DEFAULT_WORKERS_MIN), workers.get("max", DEFAULT_WORKERS_MAX)
    if isinstance(low, int) and isinstance(high, int) and low > high:
        where = (*path, "workers", "min" if "min" in workers else "max")
        return [
            doc.problem(
                where,
                f"workers.min ({low}) is more than workers.max ({high})",
                "raise workers.max or lower workers.min",
            )
        ]
    return []


def _range(doc: Document, where: DocPath, bounds: tuple[int, int], words: str) -> list[Problem]:
    written = doc.get(where)
    seconds = parse_duration(written)
    if seconds is None:
        return []  # absent, or the schema reports it
    low, high = bounds
    if low <= seconds <= high:
        return []
    return [
        doc.problem(
            where,
            f"{where[-1]} {written!r} is outside {words}",
            f"write a duration from {_short(low)} to {_short(high)}",
        )
    ]


def _short(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _check_timeouts(doc: Document, path: DocPath, value: dict[str, Any]) -> list[Problem]:
    problems = _range(doc, (*path, "idle_timeout"), IDLE_RANGE_S, "1s to 1h, RunPod's range")
    problems += _range(
        doc, (*path, "execution_timeout"), EXECUTION_RANGE_S, "5s to 7d, RunPod's range"
    )
    scaling = value.get("scaling")
    if "idle_timeout" in value and isinstance(scaling, dict) and "request_count" in scaling:
        problems.append(
            doc.problem(
                (*path, "idle_timeout"),
                "idle_timeout does not apply with `scaling: {request_count}`: RunPod refuses it "
                "on queue endpoints scaling on request count",
                "remove idle_timeout, or scale on `queue_delay`",
                at_key=True,
            )
        )
    return problems


def _check_cpu(doc: Document, path: DocPath, value: dict[str, Any]) -> list[Problem]:
    cpu = value.get("cpu")
    if not isinstance(cpu, list):
        return []
    problems = []
    seen: set[tuple[object, object]] = set()
    for index, item in enumerate(cpu):
        if not isinstance(item, dict):
            continue
        vcpu, flavor = item.get("vcpu"), item.get("flavor")
        where = (*path, "cpu", index)
        if isinstance(vcpu, int) and not isinstance(vcpu, bool) and vcpu & (vcpu - 1):
            problems.append(
                doc.problem((*where, "vcpu"), f"vcpu {vcpu} is not a power of two (2, 4, 8...)")
            )
        if (flavor, vcpu) in seen:
            problems.append(
                doc.problem(where, f"cpu flavor {flavor!r} with {vcpu} vCPUs is listed twice")
            )
        seen.add((flavor, vcpu))
    return problems


# --- build ------------------------------------------------------------------------------------


def build_endpoints(stack: StackSource) -> dict[str, EndpointSpec]:
    """The stack's endpoints with every default filled (the stack passed every check)."""
    return {name: _build(name, entry) for name, entry in stack.endpoints.items()}


def _flashboot(value: object) -> Flashboot:
    if value is True:
        return Flashboot.ON
    if value is False or value is None:
        return Flashboot.OFF
    return Flashboot(value)


def _env(doc: Document, path: DocPath, key: str, value: object) -> EnvValue:
    """An env value; the sandbox's handler file as an absolute path (from the spec's folder)."""
    from reconciler.spec.build import env_value
    from reconciler.spec.rules import SANDBOX_HANDLER_ENV, local_path

    if key == SANDBOX_HANDLER_ENV and isinstance(value, str) and value and "\0" not in value:
        return str(local_path(doc, value))
    return env_value(doc, path, value)


def _build(name: str, entry: Entry) -> EndpointSpec:

    value: dict[str, Any] = entry.value  # type: ignore[assignment]
    doc = entry.doc
    gpu: dict[str, Any] = value.get("gpu") or {}
    workers: dict[str, Any] = value.get("workers") or {}
    scaling: dict[str, Any] = value.get("scaling") or {}
    by_count = "request_count" in scaling
    delay = parse_duration(scaling.get("queue_delay"))
    idle = parse_duration(value.get("idle_timeout"))
    execution = parse_duration(value.get("execution_timeout"))
    env = value.get("env") or {}
    return EndpointSpec(
        name=name,
        image=value.get("image"),
        template=value.get("template"),
        gpu_pools=tuple(gpu.get("pools", ())),
        gpu_count=int(gpu.get("count", 1)),
        gpu_exclude=tuple(gpu.get("exclude", ())),
        cuda=tuple(gpu.get("cuda", ())),
        cpu=tuple(CpuFlavor(str(c["flavor"]), int(c["vcpu"])) for c in value.get("cpu", ())),
        workers_min=int(workers.get("min", DEFAULT_WORKERS_MIN)),
        workers_max=int(workers.get("max", DEFAULT_WORKERS_MAX)),
        idle_timeout_s=None if by_count else (idle or DEFAULT_IDLE_TIMEOUT_S),
        queue_delay_s=None if by_count else float(delay or DEFAULT_QUEUE_DELAY_S),
        request_count=int(scaling["request_count"]) if by_count else None,
        execution_timeout_s=execution or DEFAULT_EXECUTION_TIMEOUT_S,
        flashboot=_flashboot(value.get("flashboot")),
        env={k: _env(doc, (*entry.path, "env", k), k, v) for k, v in env.items()},
        network_volumes=tuple(value.get("network_volumes", ())),
        data_centers=tuple(value.get("data_centers", ())),
        disk_gb=int(value.get("disk_gb", DEFAULT_DISK_GB)),
        docker_args=str(value.get("docker_args", "")),
        registry=value.get("registry"),
        state=EndpointState(value.get("state", EndpointState.PRESENT.value)),
        protect=bool(value.get("protect", False)),
    )
