"""In-memory PodBackend and Journal for executor tests: scripted failures, recorded calls."""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from reconciler.errors import (
    CapacityError,
    PodNotFoundError,
    ResumeCapacityError,
    TransientApiError,
)
from reconciler.model import (
    ActualPod,
    ActualState,
    CloudType,
    DesiredState,
    GpuOffer,
    JobRecord,
    NetworkVolume,
    PodMarkers,
    PodRecord,
    PodSpec,
    PodStatus,
    SshEndpoint,
    WatchdogArming,
)
from reconciler.plans import Action, Change, Placement, Plan
from reconciler.podops import PodCreate, PodEdit

NO_CAPACITY = "There are no longer any instances available with the requested specifications."
OFFERED = ("NVIDIA RTX A4000", "NVIDIA RTX A5000", "NVIDIA GeForce RTX 4090")


@dataclass
class FakeApi:
    """Pods in a dict; `polls_until_ready` list rounds before a new pod's runtime shows."""

    pods: dict[str, ActualPod] = field(default_factory=dict)
    exhausted: set[str] = field(default_factory=set)
    gpu_taken: set[str] = field(default_factory=set)
    polls_until_ready: int = 0
    never_ready: bool = False
    calls: Counter[str] = field(default_factory=Counter)
    requests: list[PodCreate] = field(default_factory=list)
    edits: list[dict[str, Any]] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    create_error: BaseException | None = None
    lose_answers: int = 0  # creates that make the pod, then lose the answer
    offered: tuple[str, ...] = OFFERED  # GPU types gpu_offers lists (on both clouds)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _pending: dict[str, int] = field(default_factory=dict)

    async def _call(self, name: str) -> None:
        self.calls[name] += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0)
        finally:
            self.in_flight -= 1

    def _running(self, pod: ActualPod) -> ActualPod:
        if self.never_ready or self._pending.get(pod.pod_id, 0) > 0:
            return replace(pod, desired_status=PodStatus.RUNNING, runtime_ready=False, ssh=None)
        ssh = SshEndpoint("127.0.0.1", 2200) if "22/tcp" in pod.ports else None
        return replace(pod, desired_status=PodStatus.RUNNING, runtime_ready=True, ssh=ssh)

    async def list_pods(self) -> ActualState:
        await self._call("list_pods")
        for pod_id in list(self._pending):
            self._pending[pod_id] -= 1
        self.pods = {
            k: (self._running(p) if p.desired_status is PodStatus.RUNNING else p)
            for k, p in self.pods.items()
        }
        return ActualState(pods=dict(self.pods))

    async def get_pod(self, pod_id: str) -> ActualPod | None:
        await self._call("get_pod")
        return self.pods.get(pod_id)

    def _known(self, pod_id: str, operation: str) -> ActualPod:
        """The pod, or RunPod's not-found error (the fake is no kinder than RunPod)."""
        pod = self.pods.get(pod_id)
        if pod is None:
            raise PodNotFoundError(f"RunPod {operation}: Pod {pod_id} not found.")
        return pod

    async def create_pod(self, request: PodCreate) -> ActualPod:
        await self._call("create_pod")
        self.requests.append(request)
        if self.create_error is not None:
            raise self.create_error
        if request.gpu_type_id in self.exhausted:
            raise CapacityError(f"RunPod CreatePod: {NO_CAPACITY}")
        pod_id = f"pod{next(self._ids)}"
        env = dict(request.env)
        pod = ActualPod(
            pod_id=pod_id,
            name=request.name,
            desired_status=PodStatus.RUNNING,
            image=request.image,
            # a CPU pod has no GPU; REST v2 reports its flavor and vCPUs
            gpu_type_id=None if request.cpu_flavor else request.gpu_type_id,
            gpu_count=0 if request.cpu_flavor else request.gpu_count,
            cpu_flavor=request.cpu_flavor,
            vcpu_count=request.vcpu_count,
            # RunPod places an ALL request on one cloud and reports that one
            cloud=CloudType.COMMUNITY if request.cloud is CloudType.COMMUNITY else CloudType.SECURE,
            container_disk_gb=request.container_disk_gb,
            volume_gb=0 if request.cpu_flavor else request.volume_gb,  # none on a CPU pod
            volume_mount=request.volume_mount
            if request.volume_gb > 0 and not request.cpu_flavor
            else None,
            ports=tuple(request.ports),
            env=env,
            markers=PodMarkers.from_env(env),
            docker_args=request.docker_args,
            network_volume_id=request.network_volume_id,
            data_center_id=request.data_center_id,
        )
        self._pending[pod_id] = self.polls_until_ready
        self.pods[pod_id] = self._running(pod)
        if self.lose_answers > 0:
            self.lose_answers -= 1
            raise TransientApiError("RunPod CreatePod: ReadTimeout", maybe_processed=True)
        return self.pods[pod_id]

    async def resume_pod(self, pod_id: str, gpu_count: int | None = None) -> ActualPod:
        await self._call("resume_pod")
        return self._resume(pod_id)

    async def bid_resume_pod(self, pod_id: str, bid_per_gpu: float, gpu_count: int) -> ActualPod:
        await self._call("bid_resume_pod")
        return self._resume(pod_id)

    def _resume(self, pod_id: str) -> ActualPod:
        pod = self._known(pod_id, "ResumePod")
        if pod_id in self.gpu_taken:
            raise ResumeCapacityError("RunPod ResumePod: not enough free GPUs on the host machine")
        self.pods[pod_id] = self._running(pod)
        return self.pods[pod_id]

    async def stop_pod(self, pod_id: str) -> PodStatus:
        await self._call("stop_pod")
        self.pods[pod_id] = replace(
            self._known(pod_id, "StopPod"),
            desired_status=PodStatus.EXITED,
            runtime_ready=False,
            ssh=None,
        )
        return PodStatus.EXITED

    async def terminate_pod(self, pod_id: str) -> bool:
        await self._call("terminate_pod")
        return self.pods.pop(pod_id, None) is not None

    async def edit_pod(self, pod_id: str, edit: PodEdit) -> ActualPod:
        await self._call("edit_pod")
        pod = self._known(pod_id, "EditPod")
        self.edits.append({"pod_id": pod_id, "image": edit.image, "env": dict(edit.env)})
        env = dict(edit.env)
        edited = replace(
            pod,
            image=edit.image,
            env=env,
            markers=PodMarkers.from_env(env),
            container_disk_gb=edit.container_disk_gb,
            ports=tuple(edit.ports),
            docker_args=edit.docker_args,
        )
        # a stopped pod is edited and stays stopped, as on RunPod
        running = pod.desired_status is PodStatus.RUNNING
        self.pods[pod_id] = self._running(edited) if running else edited
        return self.pods[pod_id]

    async def gpu_offers(
        self, gpu_type_ids: Sequence[str] | None = None
    ) -> dict[CloudType, dict[str, GpuOffer]]:
        await self._call("gpu_offers")
        wanted = self.offered if gpu_type_ids is None else tuple(gpu_type_ids)
        return {
            cloud: {
                gpu: GpuOffer(
                    gpu_type_id=gpu,
                    display_name=gpu.removeprefix("NVIDIA ").removeprefix("GeForce "),
                    on_demand_price=0.5 if cloud is CloudType.SECURE else 0.3,
                    stock_status=None if gpu in self.exhausted else "High",
                )
                for gpu in self.offered
                if gpu in wanted
            }
            for cloud in (CloudType.SECURE, CloudType.COMMUNITY)
        }

    async def cpu_offers(self) -> dict[str, GpuOffer]:
        await self._call("cpu_offers")
        return {}

    async def network_volumes(self) -> dict[str, NetworkVolume]:
        await self._call("network_volumes")
        return {}

    async def pod_logs(
        self, pod_id: str, on_line: Callable[[str], None], *, follow: bool = False, tail: int = 100
    ) -> int:
        """The container's lines: the fake runs no container, so only its readiness shows."""
        await self._call("pod_logs")
        pod = self._known(pod_id, "PodLogs")
        lines = ["fake: container running"] if pod.runtime_ready else []
        for line in lines[-tail:] if tail else lines:
            on_line(line)
        return len(lines[-tail:] if tail else lines)

    def add(self, pod_id: str, stack: str, name: str, status: PodStatus, **kw: Any) -> ActualPod:
        env = PodMarkers(stack, name, f"uid-{pod_id}").as_env()
        pod = ActualPod(
            pod_id=pod_id,
            name=f"{stack}-{name}",
            desired_status=status,
            image="img",
            ports=("22/tcp",),
            env=env,
            markers=PodMarkers.from_env(env),
            **kw,
        )
        self.pods[pod_id] = self._running(pod) if status is PodStatus.RUNNING else pod
        return pod


@dataclass
class ListJournal:
    """Records every journal call in order (as the workflow's lockfile journal would write)."""

    entries: list[tuple[Any, ...]] = field(default_factory=list)
    noted: list[tuple[Any, ...]] = field(default_factory=list)  # stopped_at, watchdog arming

    async def commit(self, record: Callable[[], None]) -> None:
        record()

    def intend(self, pod: str, uid: str) -> None:
        self.entries.append(("intend", pod, uid))

    def create_failed(self, uid: str) -> None:
        self.entries.append(("create_failed", uid))

    def created(self, pod: str, record: PodRecord) -> None:
        self.entries.append(("created", pod, record.pod_id, record.uid, record.gpu_type_id))

    def touched(self, pod: str, pod_id: str, fingerprint: str | None) -> None:
        self.entries.append(("touched", pod, pod_id, fingerprint))

    def terminated(self, pod: str, pod_id: str) -> None:
        self.entries.append(("terminated", pod, pod_id))

    def stopped(
        self, pod: str, pod_id: str, at: datetime | None, *, keep_earlier: bool = False
    ) -> None:
        self.noted.append(("stopped", pod, pod_id, at))

    def armed(self, pod: str, pod_id: str, arming: WatchdogArming | None) -> None:
        self.noted.append(("armed", pod, pod_id, arming))

    def job_started(self, job: str, record: JobRecord) -> None:
        self.entries.append(("job_started", job, record.pod_id, record.fingerprint))

    def job_finished(self, job: str, record: JobRecord) -> None:
        self.entries.append(("job_finished", job, record.status.value, record.exit_code))

    def kinds(self) -> list[str]:
        return [e[0] for e in self.entries]


def spec(name: str = "box", **kw: Any) -> PodSpec:
    values: dict[str, Any] = {
        "name": name,
        "image": "img:1",
        "gpu_types": ("NVIDIA RTX A4000", "NVIDIA RTX A5000"),
    }
    values.update(kw)
    return PodSpec(**values)


def desired(*pods: PodSpec, stack: str = "st") -> DesiredState:
    return DesiredState(stack=stack, pods={p.name: p for p in pods}, jobs={})


def change(pod: PodSpec, action: Action, pod_id: str | None = None, **kw: Any) -> Change:
    values: dict[str, Any] = {"reason": "test", "pod": pod.name, "pod_id": pod_id}
    if action in (Action.CREATE, Action.REPLACE):
        values["placements"] = tuple(Placement(gpu, CloudType.SECURE, 0.5) for gpu in pod.gpu_types)
    values.update(kw)
    return Change(address=pod.address, action=action, **values)


def plan(*changes: Change, stack: str = "st") -> Plan:
    return Plan(stack=stack, changes=tuple(changes))
