"""The rules the schema cannot express: references, cycles, ports, names, env, paths on disk.

Each check tolerates values of the wrong type (the schema reports those), so that one run
reports every problem.
"""

from __future__ import annotations

import math
import os
import posixpath
import re
from collections.abc import Iterator
from pathlib import Path

from reconciler.errors import Problem
from reconciler.model import Address
from reconciler.spec.document import DocPath, Document
from reconciler.spec.durations import MAX_SECONDS, parse_duration
from reconciler.spec.endpoints import check_endpoints, endpoint_sections
from reconciler.spec.money import check_money
from reconciler.spec.schema import did_you_mean
from reconciler.spec.stack import (
    Entry,
    StackSource,
    effective_pod,
    is_cpu_pod,
    machine_conflict,
)

MAX_POD_NAME = 60  # `<stack>-<pod>`, as RunPod names the pod
MAX_PORTS_PER_KIND = 10
RESERVED_ENV_PREFIX = "PODCTL_"
# an endpoint's handler file in the sandbox (relative paths start at the spec's folder)
SANDBOX_HANDLER_ENV = "PODCTL_SANDBOX_HANDLER"
SSH_PORT = "22/tcp"
_PORT = re.compile(r"([0-9]+)/(http|tcp)")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
MAX_ENV_ENTRY = 128 * 1024  # Linux's limit on one `NAME=value` string (MAX_ARG_STRLEN)


def check_stack(stack: StackSource, *, strict_env: bool) -> list[Problem]:
    """Every problem of the stack the schema could not see, with warnings for unset secrets."""
    problems: list[Problem] = []
    for doc in stack.docs:
        problems += _check_env(doc, strict_env=strict_env)
        problems += _check_ports(doc)
        problems += _check_durations(doc)
        problems += _check_spot_bids(doc)
        problems += _check_uploads(doc)
        problems += _check_nul(doc)
        problems += _check_env_sizes(doc)
    problems += _check_pods(stack)
    problems += _check_job_references(stack)
    problems += _check_cycles(stack)
    problems += check_download_collisions(stack)
    problems += check_money(stack)
    from reconciler.spec.endpoint_jobs import check_endpoint_jobs

    problems += check_endpoint_jobs(stack)
    problems += check_endpoints(stack)
    return problems


def _pod_sections(doc: Document) -> Iterator[DocPath]:
    """`defaults` and every `pods.NAME` of the document."""
    yield ("defaults",)
    pods = doc.get(("pods",))
    if isinstance(pods, dict):
        yield from (("pods", name) for name in pods)


def _job_sections(doc: Document) -> Iterator[DocPath]:
    jobs = doc.get(("jobs",))
    if isinstance(jobs, dict):
        yield from (("jobs", name) for name in jobs)


def _check_env(doc: Document, *, strict_env: bool) -> list[Problem]:
    problems = []
    for section in (*_pod_sections(doc), *_job_sections(doc), *endpoint_sections(doc)):
        env = doc.get((*section, "env"))
        if not isinstance(env, dict):
            continue
        for key, value in env.items():
            path = (*section, "env", key)
            sandbox_knob = section[0] == "endpoints" and key == SANDBOX_HANDLER_ENV
            if key.startswith(RESERVED_ENV_PREFIX) and not sandbox_knob:
                problems.append(
                    doc.problem(
                        path,
                        f"{key!r} uses the prefix {RESERVED_ENV_PREFIX}, reserved for podctl",
                        "podctl sets PODCTL_STACK, PODCTL_POD and PODCTL_UID itself; "
                        "rename the variable",
                        at_key=True,
                    )
                )
            name = value.get("from_env") if isinstance(value, dict) else None
            if isinstance(name, str) and _ENV_NAME.fullmatch(name) and name not in os.environ:
                problems.append(
                    doc.problem(
                        (*path, "from_env"),
                        f"the environment variable {name} is not set",
                        f"export {name} before plan or apply; its value is read then and "
                        "never written anywhere",
                        severity="error" if strict_env else "warning",
                    )
                )
    return problems


def _check_ports(doc: Document) -> list[Problem]:
    problems = []
    for section in _pod_sections(doc):
        ports = doc.get((*section, "ports"))
        if not isinstance(ports, list):
            continue
        seen: set[str] = set()
        per_kind: dict[str, int] = {}
        for index, port in enumerate(ports):
            match = _PORT.fullmatch(port) if isinstance(port, str) else None
            if match is None:
                continue  # the schema reports it
            path = (*section, "ports", index)
            number = int(match.group(1)) if len(match.group(1)) <= 6 else 0
            if not 1 <= number <= 65535:
                problems.append(doc.problem(path, f"port number must be 1 to 65535, got {port!r}"))
            if port in seen:
                problems.append(doc.problem(path, f"port {port!r} is listed twice"))
            seen.add(port)
            per_kind[match.group(2)] = per_kind.get(match.group(2), 0) + 1
        for kind, count in sorted(per_kind.items()):
            if count > MAX_PORTS_PER_KIND:
                problems.append(
                    doc.problem(
                        (*section, "ports"),
                        f"{count} {kind} ports; RunPod exposes at most {MAX_PORTS_PER_KIND} "
                        "of each kind",
                    )
                )
    return problems


def _check_durations(doc: Document) -> list[Problem]:
    paths = [
        (*section, key)
        for section in _pod_sections(doc)
        for key in ("max_lifetime", "idle_timeout", "stopped_ttl")
    ]
    paths += [(*section, "timeout") for section in _job_sections(doc)]
    problems = []
    for path in paths:
        value = doc.get(path)
        seconds = parse_duration(value)
        if seconds is None:
            continue  # absent, or the schema reports it
        if seconds == 0:
            problems.append(doc.problem(path, f"the duration {value!r} is zero"))
        elif seconds > MAX_SECONDS:
            problems.append(
                doc.problem(path, f"the duration {value!r} is longer than a year (365d)")
            )
    return problems


def _check_spot_bids(doc: Document) -> list[Problem]:
    problems = []
    for section in _pod_sections(doc):
        path = (*section, "spot", "bid_per_gpu")
        bid = doc.get(path)
        if isinstance(bid, float) and not math.isfinite(bid):
            problems.append(doc.problem(path, f"the bid must be a number of dollars, got {bid}"))
    return problems


def local_path(doc: Document, written: str) -> Path:
    """A local path from the spec: `~` expanded, relative ones against the spec's folder."""
    path = Path(written).expanduser()
    return Path(os.path.normpath(path if path.is_absolute() else doc.folder / path))


def download_target(doc: Document, written: str) -> str:
    """A download's `to` as a local path; a trailing "/" (into that folder) is kept."""
    path = str(local_path(doc, written))
    into = written.endswith(("/", os.sep)) and not path.endswith(os.sep)
    return path + os.sep if into else path


def check_download_collisions(stack: StackSource) -> list[Problem]:
    """Two downloads of the stack that would write one local path (the later one would win).

    A `to` ending in "/" writes `<to>/<name of from>` (a folder's contents merge there, file
    by file, so two folders into one `to/` are fine when their names differ).
    """
    problems = []
    seen: dict[str, str] = {}
    for name, job in stack.jobs.items():
        downloads = job.doc.get((*job.path, "download"))
        if not isinstance(downloads, list):
            continue
        for index, item in enumerate(downloads):
            source = item.get("from") if isinstance(item, dict) else None
            target = item.get("to") if isinstance(item, dict) else None
            if not (isinstance(source, str) and isinstance(target, str) and source and target):
                continue
            if "\0" in source or "\0" in target:
                continue
            path = (*job.path, "download", index, "to")
            written = download_target(job.doc, target)
            if written.endswith(os.sep):
                leaf = posixpath.basename(posixpath.normpath(source)) or "root"
                written = os.path.join(written, leaf)
            here = f"{Address.job(name)} download {index + 1} ({job.doc.location(path)})"
            other = seen.setdefault(written, here)
            if other != here:
                problems.append(
                    job.doc.problem(
                        path,
                        f"this download writes {written}, as {other} does: the later one "
                        "would replace the other's files",
                        "give each download its own `to` (a folder ending in / receives "
                        "the remote file or folder contents)",
                    )
                )
    return problems


def _check_uploads(doc: Document) -> list[Problem]:
    problems = []
    for section in _job_sections(doc):
        uploads = doc.get((*section, "upload"))
        if not isinstance(uploads, list):
            continue
        for index, upload in enumerate(uploads):
            source = upload.get("from") if isinstance(upload, dict) else None
            if not isinstance(source, str) or not source or "\0" in source:
                continue
            path = (*section, "upload", index, "from")
            try:
                exists = local_path(doc, source).exists()
            except (OSError, ValueError, RuntimeError):
                exists = False
            if not exists:
                problems.append(
                    doc.problem(
                        path,
                        f"the upload source {source!r} does not exist",
                        f"relative paths start at the folder of the spec file ({doc.folder})",
                    )
                )
    return problems


def _check_pods(stack: StackSource) -> list[Problem]:
    problems = []
    for name, pod in stack.pods.items():
        if stack.name is not None and len(f"{stack.name}-{name}") > MAX_POD_NAME:
            full = f"{stack.name}-{name}"
            problems.append(
                pod.doc.problem(
                    pod.path,
                    f"the pod's RunPod name {full!r} is {len(full)} characters; "
                    f"at most {MAX_POD_NAME} fit",
                    "shorten the stack or the pod name",
                    at_key=True,
                )
            )
        if not isinstance(pod.value, dict):
            continue
        fields = effective_pod(stack, pod)
        if "image" not in fields:
            problems.append(
                pod.doc.problem(
                    pod.path,
                    f"pod {name!r} has no image",
                    "set `image:` in the pod or under `defaults:`",
                    at_key=True,
                )
            )
        if machine_conflict(stack, pod):
            problems.append(
                pod.doc.problem(
                    pod.path,
                    f"pod {name!r} sets both gpu and cpu"
                    + ("" if "cpu" in pod.value or "gpu" in pod.value else " (from defaults:)"),
                    "a pod is a GPU pod (`gpu:`) or a CPU pod (`cpu:`): keep one of them",
                    at_key=True,
                )
            )
            continue
        if is_cpu_pod(stack, pod):
            problems += _check_cpu_pod(pod, name, fields)
            continue
        gpu = fields.get("gpu")
        if gpu is None or (isinstance(gpu.value, dict) and "type" not in gpu.value):
            problems.append(
                pod.doc.problem(
                    pod.path,
                    f"pod {name!r} has no GPU type",
                    "set `gpu: {type: NAME}` (or `cpu: {flavor: NAME, vcpu: N}` for a CPU pod) "
                    "in the pod or under `defaults:`",
                    at_key=True,
                )
            )
    return problems


def _check_cpu_pod(pod: Entry, name: str, fields: dict[str, Entry]) -> list[Problem]:
    """What a CPU pod cannot have on RunPod: a volume disk (REST v2 refuses
    `mounts.persistent` on CPU pods), spot, community cloud, or GPU-only settings."""
    problems = []

    def refuse(entry: Entry, message: str, hint: str) -> None:
        problems.append(
            entry.doc.problem(entry.path, f"pod {name!r} is a CPU pod: {message}", hint)
        )

    disk = fields.get("disk")
    if disk is not None and isinstance(disk.value, dict) and disk.value.get("volume_gb", 0):
        refuse(
            disk,
            "RunPod gives CPU pods no volume disk (only the container disk and a network volume)",
            f"set pods.{name}.disk.volume_gb to 0, or use network_volume for files that must last",
        )
    spot = fields.get("spot")
    if spot is not None and spot.value not in (None, False):
        refuse(spot, "RunPod has no spot CPU pods", f"remove pods.{name}.spot")
    cloud = fields.get("cloud")
    if cloud is not None and cloud.value == "community":
        refuse(cloud, "RunPod runs CPU pods on secure cloud only", "set cloud: secure (or all)")
    for key in ("cuda", "min_vcpu", "min_memory_gb"):
        entry = fields.get(key)
        if entry is not None:
            hint = "set cpu.vcpu instead" if key == "min_vcpu" else f"remove pods.{name}.{key}"
            refuse(entry, f"{key} applies to GPU pods only", hint)
    idle = fields.get("idle_timeout")
    if idle is not None:
        # the watchdog's idle test is GPU utilisation (nvidia-smi): a CPU pod would never idle
        refuse(
            idle,
            "idle_timeout watches GPU utilisation, and a CPU pod has no GPU",
            f"remove pods.{name}.idle_timeout, or end the pod with max_lifetime",
        )
    return problems


def _check_job_references(stack: StackSource) -> list[Problem]:
    problems = []
    jobs_by_pod: dict[str, list[str]] = {}
    for name, job in stack.jobs.items():
        if not isinstance(job.value, dict):
            continue
        pod_name = job.value.get("pod")
        if isinstance(pod_name, str):
            problems += _check_job_pod(stack, job, pod_name)
            if pod_name in stack.pods:
                jobs_by_pod.setdefault(pod_name, []).append(name)
        needs = job.value.get("needs")
        if isinstance(needs, list):
            for index, needed in enumerate(needs):
                if isinstance(needed, str) and needed not in stack.jobs:
                    problems.append(
                        job.doc.problem(
                            (*job.path, "needs", index),
                            f"no job named {needed!r}",
                            did_you_mean(needed, stack.jobs) or _declared("jobs", stack.jobs),
                        )
                    )
    for pod_name, job_names in jobs_by_pod.items():
        problems += _check_ssh_port(stack, stack.pods[pod_name], job_names)
    return problems


def _declared(section: str, names: dict[str, Entry]) -> str:
    if not names:
        return f"declare it under `{section}:`"
    return f"declared {section}: {', '.join(names)}"


def _check_job_pod(stack: StackSource, job: Entry, pod_name: str) -> list[Problem]:
    path = (*job.path, "pod")
    pod = stack.pods.get(pod_name)
    if pod is None:
        hint = did_you_mean(pod_name, stack.pods) or _declared("pods", stack.pods)
        return [job.doc.problem(path, f"no pod named {pod_name!r}", hint)]
    return []  # a job of a `state: absent` pod is not run: the plan says so


def _check_ssh_port(stack: StackSource, pod: Entry, job_names: list[str]) -> list[Problem]:
    ports = effective_pod(stack, pod).get("ports")
    if ports is None or not isinstance(ports.value, list) or SSH_PORT in ports.value:
        return []
    return [
        ports.doc.problem(
            ports.path,
            f"pod {pod.path[-1]!r} runs jobs ({', '.join(job_names)}) but does not expose "
            f"{SSH_PORT}",
            f"add {SSH_PORT} to its ports: jobs run over SSH",
        )
    ]


def _check_cycles(stack: StackSource) -> list[Problem]:
    graph: dict[str, list[str]] = {}
    for name, job in stack.jobs.items():
        needs = job.value.get("needs") if isinstance(job.value, dict) else None
        graph[name] = [n for n in (needs if isinstance(needs, list) else []) if isinstance(n, str)]
        graph[name] = [n for n in graph[name] if n in stack.jobs]
    problems = []
    reported: set[frozenset[str]] = set()
    for cycle in _find_cycles(graph):
        members = frozenset(cycle)
        if members in reported:
            continue
        reported.add(members)
        first = stack.jobs[cycle[0]]
        problems.append(
            first.doc.problem(
                (*first.path, "needs"),
                f"jobs depend on each other in a cycle: {' -> '.join([*cycle, cycle[0]])}",
                "remove one of these needs",
            )
        )
    return problems


def _find_cycles(graph: dict[str, list[str]]) -> Iterator[list[str]]:
    """Cycles found by an iterative depth-first search (no recursion limit on long chains)."""
    done: set[str] = set()
    for start in graph:
        if start in done:
            continue
        path: list[str] = [start]
        on_path = {start}
        iterators = [iter(graph[start])]
        while iterators:
            following = next(iterators[-1], None)
            if following is None:
                iterators.pop()
                done.add(path[-1])
                on_path.discard(path.pop())
            elif following in on_path:
                yield path[path.index(following) :]
            elif following not in done:
                path.append(following)
                on_path.add(following)
                iterators.append(iter(graph[following]))


def _strings(value: object, path: DocPath) -> Iterator[tuple[DocPath, str]]:
    """Every string value under `value` (not mapping keys), with its path."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, (*path, index))


def _check_nul(doc: Document) -> list[Problem]:
    """A NUL cannot reach a pod (a shell, a path, the API): refused before anything is made."""
    return [
        doc.problem(
            path,
            "contains a NUL character (\\0), which no command, path or environment value can hold",
            "remove the \\0 escape from the quoted string",
        )
        for path, text in _strings(doc.data, ())
        if "\0" in text and path[-1:] != ("from_env",)  # the schema reports a from_env name
    ]


def _check_env_sizes(doc: Document) -> list[Problem]:
    """`NAME=value` over 128 KiB cannot be in a process's environment (exec fails)."""
    problems = []
    for section in (*_pod_sections(doc), *_job_sections(doc), *endpoint_sections(doc)):
        env = doc.get((*section, "env"))
        if not isinstance(env, dict):
            continue
        for key, value in env.items():
            path: DocPath = (*section, "env", key)
            name = value.get("from_env") if isinstance(value, dict) else None
            if isinstance(name, str):
                value, path = os.environ.get(name, ""), (*path, "from_env")
            if not isinstance(value, str | int | float):
                continue
            size = len(f"{key}={value}".encode("utf-8", "surrogateescape"))
            if size >= MAX_ENV_ENTRY:
                what = f"the value of ${name}" if isinstance(name, str) else "the value"
                problems.append(
                    doc.problem(
                        path,
                        f"{what} is too long for an environment variable ({key}=value is "
                        f"{size} bytes; the limit is 128 KiB, {MAX_ENV_ENTRY} bytes)",
                        "put large data in a file (upload it) and pass its path instead",
                    )
                )
    return problems
