"""The read-only use cases: `status` (the stack's pods, desired vs actual) and `gpus` (offers)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from reconciler.lockfile import LockfileStore
from reconciler.model import ActualPod, ActualState, CloudType, GpuOffer, Lockfile, PodStatus
from reconciler.workflow.context import Connection, connect, load_desired, lockfile_path


@dataclass(frozen=True)
class PodStatusRow:
    """One line of `podctl status`."""

    pod: str
    desired: str  # running / stopped / absent, or "(not in spec)"
    actual: str  # RUNNING, EXITED... or "none"
    pod_id: str | None
    gpu: str | None
    cost_per_hr: float | None
    uptime_s: int | None
    ssh: str | None

    def as_dict(self) -> dict[str, object]:
        return {
            "pod": self.pod,
            "desired": self.desired,
            "actual": self.actual,
            "pod_id": self.pod_id,
            "gpu": self.gpu,
            "cost_per_hr": self.cost_per_hr,
            "uptime_s": self.uptime_s,
            "ssh": self.ssh,
        }


def _row(name: str, desired: str, pod: ActualPod | None) -> PodStatusRow:
    if pod is None:
        return PodStatusRow(name, desired, "none", None, None, None, None, None)
    running = pod.desired_status is PodStatus.RUNNING
    gpu = pod.gpu_display_name or pod.gpu_type_id
    return PodStatusRow(
        pod=name,
        desired=desired,
        actual=pod.desired_status.value,
        pod_id=pod.pod_id,
        gpu=f"{pod.gpu_count}x {gpu}" if gpu else None,
        cost_per_hr=pod.cost_per_hr if running else 0.0,
        uptime_s=pod.uptime_s if running else None,
        ssh=f"{pod.ssh.host}:{pod.ssh.port}" if pod.ssh else None,
    )


def status_rows(
    desired_pods: Mapping[str, str], stack: str, actual: ActualState, recorded: Lockfile
) -> tuple[PodStatusRow, ...]:
    """Each desired pod (matched by recorded id, else markers), then the stack's other pods."""
    rows: list[PodStatusRow] = []
    used: set[str] = set()
    for name, state in desired_pods.items():
        record = recorded.pods.get(name)
        pod = actual.get(record.pod_id) if record is not None else None
        if pod is None:
            found = actual.find_by_markers(stack, name)
            pod = found[0] if found else None
        if pod is not None:
            used.add(pod.pod_id)
        rows.append(_row(name, state, pod))
    for pod in actual.of_stack(stack):
        if pod.pod_id not in used and pod.desired_status is not PodStatus.TERMINATED:
            name = pod.markers.pod if pod.markers else pod.name
            rows.append(_row(name, "(not in spec)", pod))
    return tuple(rows)


def status(connection: Connection, paths: tuple[Path, ...]) -> tuple[str, tuple[PodStatusRow, ...]]:
    """`podctl status`: one list_pods, no lock taken (it changes nothing)."""
    desired = load_desired(paths)
    recorded = LockfileStore(lockfile_path(connection, desired)).read()

    async def run() -> ActualState:
        async with connect(connection) as client:
            return await client.list_pods()

    actual = asyncio.run(run())
    states = {name: pod.state.value for name, pod in desired.pods.items()}
    return desired.stack, status_rows(states, desired.stack, actual, recorded)


def gpus(connection: Connection) -> dict[CloudType, dict[str, GpuOffer]]:
    """`podctl gpus`: every GPU type's per-GPU price and stock on both clouds (one request)."""

    async def run() -> dict[CloudType, dict[str, GpuOffer]]:
        async with connect(connection) as client:
            return await client.gpu_offers()

    return asyncio.run(run())
