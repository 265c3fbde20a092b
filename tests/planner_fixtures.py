"""Builders shared by the planner and renderer tests: specs, actual pods, offers, lockfiles."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from reconciler.jobs import job_fingerprint, job_inputs
from reconciler.model import (
    ActualPod,
    ActualState,
    CloudType,
    DesiredState,
    GpuOffer,
    JobRecord,
    JobSpec,
    JobStatus,
    Lockfile,
    PodMarkers,
    PodRecord,
    PodSpec,
    PodStatus,
    SecretRef,
)
from reconciler.planner import plan, pod_fingerprint
from reconciler.plans import Plan

STACK = "demo"
SECRET_VALUE = "hf_s3cr3t_TOKEN_value_9d8f"
SECRETS = {"HF_TOKEN": SECRET_VALUE}
T0 = datetime(2026, 1, 1, tzinfo=UTC)
RTX4090 = "NVIDIA GeForce RTX 4090"
A6000 = "NVIDIA RTX A6000"


def pod_spec(name: str = "trainer", **kw: Any) -> PodSpec:
    base: dict[str, Any] = {
        "name": name,
        "image": "img:1",
        "gpu_types": (RTX4090, A6000),
        "ports": ("22/tcp", "8888/http"),
        "env": {"WANDB_PROJECT": "eval", "HF_TOKEN": SecretRef("HF_TOKEN")},
    }
    base.update(kw)
    return PodSpec(**base)


def desired(*pods: PodSpec, jobs: tuple[JobSpec, ...] = ()) -> DesiredState:
    return DesiredState(
        stack=STACK,
        pods={p.name: p for p in pods},
        jobs={j.name: j for j in jobs},
        files=("spec.yaml",),
    )


def actual_pod(
    spec: PodSpec,
    pod_id: str = "p1",
    status: PodStatus = PodStatus.RUNNING,
    uid: str = "u1",
    stack: str = STACK,
    **kw: Any,
) -> ActualPod:
    """The pod RunPod would report for this spec, as podctl created it."""
    markers = PodMarkers(stack=stack, pod=spec.name, uid=uid)
    env = {k: SECRETS[v.from_env] if isinstance(v, SecretRef) else v for k, v in spec.env.items()}
    env.update(markers.as_env())
    env["PUBLIC_KEY"] = "ssh-ed25519 AAAA"
    base: dict[str, Any] = {
        "pod_id": pod_id,
        "name": f"{stack}-{spec.name}",
        "desired_status": status,
        "image": spec.image,
        "gpu_type_id": spec.gpu_types[0],
        "gpu_count": spec.gpu_count,
        "cloud": CloudType.COMMUNITY if spec.cloud is CloudType.COMMUNITY else CloudType.SECURE,
        "interruptible": spec.spot_bid_per_gpu is not None,
        "container_disk_gb": spec.container_disk_gb,
        "volume_gb": spec.volume_gb,
        "volume_mount": spec.volume_mount,
        "ports": tuple(reversed(spec.ports)),
        "env": env,
        "markers": markers,
        "docker_args": spec.docker_args,
        "data_center_id": "EU-RO-1",
        "network_volume_id": spec.network_volume,
        "cost_per_hr": 0.69 if status is PodStatus.RUNNING else 0.0,
    }
    base.update(kw)
    if "env" in kw:
        base["markers"] = PodMarkers.from_env(base["env"])
    return ActualPod(**base)


def actual(*pods: ActualPod) -> ActualState:
    return ActualState(pods={p.pod_id: p for p in pods})


def record(spec: PodSpec, pod_id: str = "p1", uid: str = "u1", **kw: Any) -> PodRecord:
    return PodRecord(pod_id=pod_id, uid=uid, fingerprint=pod_fingerprint(spec), **kw)


def lockfile(*records: tuple[str, PodRecord], **kw: Any) -> Lockfile:
    base: dict[str, Any] = {
        "stack": STACK,
        "lineage": "lin-1",
        "serial": 3,
        "pods": dict(records),
    }
    base.update(kw)
    return Lockfile(**base)


def succeeded(
    job: JobSpec, spec: PodSpec, pod_id: str = "p1", status: JobStatus = JobStatus.SUCCEEDED
) -> JobRecord:
    """A ledger entry for `job` as it is now (same fingerprint): it does not run again."""
    inputs = job_inputs(job, spec, secrets={})
    return JobRecord(
        fingerprint=job_fingerprint(inputs), pod_id=pod_id, status=status, inputs=inputs
    )


def offer(gpu: str, price: float, min_bid: float = 0.2, name: str = "") -> GpuOffer:
    return GpuOffer(
        gpu_type_id=gpu,
        display_name=name or gpu.removeprefix("NVIDIA ").removeprefix("GeForce "),
        on_demand_price=price,
        minimum_bid_price=min_bid,
    )


OFFERS = {
    CloudType.SECURE: {RTX4090: offer(RTX4090, 0.69, 0.35), A6000: offer(A6000, 0.49, 0.25)},
    CloudType.COMMUNITY: {RTX4090: offer(RTX4090, 0.34, 0.2), A6000: offer(A6000, 0.33, 0.2)},
}


def make_plan(d: DesiredState, a: ActualState, r: Lockfile | None = None, **kw: Any) -> Plan:
    kw.setdefault("secrets", SECRETS)
    return plan(d, a, r if r is not None else lockfile(), offers=OFFERS, **kw)
