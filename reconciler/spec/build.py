"""Build the DesiredState of a stack whose files passed every check, filling every default."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reconciler.errors import Problem
from reconciler.model import (
    AfterJobs,
    Budget,
    BudgetAction,
    CloudType,
    DesiredState,
    EnvValue,
    JobSpec,
    LifetimeAction,
    OnResumeFailure,
    PodSpec,
    PodState,
    Rerun,
    SecretRef,
    Transfer,
)
from reconciler.spec.document import DocPath, Document
from reconciler.spec.durations import parse_duration
from reconciler.spec.endpoints import build_endpoints
from reconciler.spec.rules import download_target, local_path
from reconciler.spec.stack import Entry, StackSource, effective_pod, is_cpu_pod

DEFAULT_CONTAINER_GB = 20
DEFAULT_VOLUME_GB = 20
DEFAULT_MOUNT = "/workspace"
DEFAULT_PORTS = ("22/tcp",)


def build_desired_state(stack: StackSource, warnings: list[Problem]) -> DesiredState:
    pods = {name: _build_pod(stack, name, entry) for name, entry in stack.pods.items()}
    from reconciler.spec.endpoint_jobs import build_endpoint_job, is_endpoint_job

    jobs = {
        name: _build_job(name, entry, pods)
        for name, entry in stack.jobs.items()
        if not is_endpoint_job(entry.value)
    }
    endpoint_jobs = {
        name: build_endpoint_job(name, entry)
        for name, entry in stack.jobs.items()
        if is_endpoint_job(entry.value)
    }
    return DesiredState(
        stack=stack.name or "",
        pods=pods,
        jobs=jobs,
        files=stack.files,
        warnings=tuple(warnings),
        ssh_key=_ssh_key(stack),
        state_url_env=_state_url_env(stack),
        budget=_budget(stack),
        endpoint_jobs=endpoint_jobs,
        endpoints=build_endpoints(stack),
    )


def _budget(stack: StackSource) -> Budget:
    """`budget:` of the first file that sets it."""
    for doc in stack.docs:
        value = doc.data.get("budget") if isinstance(doc.data, dict) else None
        if isinstance(value, dict):
            per_hour, total = value.get("max_usd_per_hour"), value.get("max_usd_total")
            return Budget(
                max_usd_per_hour=None if per_hour is None else float(per_hour),
                max_usd_total=None if total is None else float(total),
                action=BudgetAction(value.get("action", BudgetAction.STOP.value)),
            )
    return Budget()


def _ssh_key(stack: StackSource) -> str | None:
    """`ssh_key:` of the first file that sets it, as a path relative to that file."""
    for doc in stack.docs:
        value = doc.data.get("ssh_key") if isinstance(doc.data, dict) else None
        if isinstance(value, str) and value:
            return str(local_path(doc, value))
    return None


def _state_url_env(stack: StackSource) -> str | None:
    """`state: {url_from_env: NAME}` of the first file that sets it."""
    for doc in stack.docs:
        value = doc.data.get("state") if isinstance(doc.data, dict) else None
        if isinstance(value, dict) and isinstance(value.get("url_from_env"), str):
            return str(value["url_from_env"])
    return None


def _build_pod(stack: StackSource, name: str, pod: Entry) -> PodSpec:
    fields = effective_pod(stack, pod)

    def get(key: str, default: Any = None) -> Any:
        entry = fields.get(key)
        return default if entry is None else entry.value

    cpu: dict[str, Any] | None = get("cpu") if is_cpu_pod(stack, pod) else None
    gpu: dict[str, Any] = {} if cpu is not None else get("gpu", {})
    gpu_type = () if cpu is not None else gpu["type"]
    disk: dict[str, Any] = get("disk", {})
    spot = False if cpu is not None else get("spot", False)
    env = fields.get("env")
    # a CPU pod has no volume disk on RunPod (rules refuse one): its default is none
    default_volume = 0 if cpu is not None else DEFAULT_VOLUME_GB
    cloud = CloudType(get("cloud", CloudType.SECURE.value))
    return PodSpec(
        name=name,
        image=get("image"),
        gpu_types=(gpu_type,) if isinstance(gpu_type, str) else tuple(gpu_type),
        gpu_count=0 if cpu is not None else int(gpu.get("count", 1)),
        cpu_flavor=str(cpu["flavor"]) if cpu is not None else None,
        vcpu=int(cpu["vcpu"]) if cpu is not None else None,
        # CPU pods run on secure cloud only (`all` asks for nothing else)
        cloud=CloudType.SECURE if cpu is not None else cloud,
        spot_bid_per_gpu=float(spot["bid_per_gpu"]) if isinstance(spot, dict) else None,
        container_disk_gb=int(disk.get("container_gb", DEFAULT_CONTAINER_GB)),
        volume_gb=int(disk.get("volume_gb", default_volume)),
        volume_mount=disk.get("mount", DEFAULT_MOUNT),
        network_volume=get("network_volume"),
        ports=tuple(get("ports", DEFAULT_PORTS)),
        env=_build_env(stack, pod, env),
        docker_args=get("docker_args", ""),
        registry=get("registry"),
        template=get("template"),
        min_vcpu=_optional_int(get("min_vcpu")),
        min_memory_gb=_optional_int(get("min_memory_gb")),
        cuda=tuple(get("cuda", ())),
        data_center=get("data_center"),
        state=PodState(get("state", PodState.RUNNING.value)),
        max_lifetime_s=parse_duration(get("max_lifetime")),
        lifetime_action=LifetimeAction(get("lifetime_action", LifetimeAction.TERMINATE.value)),
        after_jobs=AfterJobs(get("after_jobs", AfterJobs.KEEP.value)),
        on_resume_failure=OnResumeFailure(get("on_resume_failure", OnResumeFailure.FAIL.value)),
        protect=bool(get("protect", False)),
        idle_timeout_s=parse_duration(get("idle_timeout")),
        idle_action=LifetimeAction(get("idle_action", LifetimeAction.STOP.value)),
        stopped_ttl_s=parse_duration(get("stopped_ttl")),
        on_failure=None if get("on_failure") is None else AfterJobs(get("on_failure")),
    )


def _optional_int(value: object) -> int | None:
    return None if value is None else int(value)  # type: ignore[call-overload]


def _build_env(stack: StackSource, pod: Entry, env: Entry | None) -> Mapping[str, EnvValue]:
    """The merged env; each value's written text is looked up in the file that set it."""
    if env is None or not isinstance(env.value, dict):
        return {}
    own_path = (*pod.path, "env")
    own = pod.doc.get(own_path)
    inherited = stack.defaults.get("env")
    result: dict[str, EnvValue] = {}
    for key, value in env.value.items():
        if (isinstance(own, dict) and key in own) or inherited is None:
            result[key] = env_value(pod.doc, (*own_path, key), value)
        else:
            result[key] = env_value(inherited.doc, (*inherited.path, key), value)
    return result


def env_value(doc: Document, path: DocPath, value: object) -> EnvValue:
    """A plain value as the text written in the file (`1e3` stays `1e3`), or a SecretRef."""
    if isinstance(value, dict):
        return SecretRef(from_env=str(value["from_env"]))
    if isinstance(value, str):
        return value
    return doc.raw_scalars.get(path, str(value))


def _build_job(name: str, job: Entry, pods: Mapping[str, PodSpec]) -> JobSpec:
    value: dict[str, Any] = job.value  # type: ignore[assignment]
    doc = job.doc
    env = value.get("env", {})
    pod = pods[value["pod"]]
    return JobSpec(
        name=name,
        pod=value["pod"],
        run=value["run"],
        env={key: env_value(doc, (*job.path, "env", key), v) for key, v in env.items()},
        workdir=value.get("workdir", pod.volume_mount),
        upload=tuple(
            Transfer(source=str(local_path(doc, item["from"])), target=item["to"])
            for item in value.get("upload", ())
        ),
        download=tuple(
            Transfer(source=item["from"], target=download_target(doc, item["to"]))
            for item in value.get("download", ())
        ),
        needs=tuple(value.get("needs", ())),
        timeout_s=parse_duration(value.get("timeout")),
        retries=int(value.get("retries", 0)),
        rerun=Rerun(value.get("rerun", Rerun.ON_CHANGE.value)),
        parallel=bool(value.get("parallel", False)),
    )
