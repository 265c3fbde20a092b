"""The sandbox's state: pods, GPU stock and the account, with RunPod's business rules.

All changes go through `Store`, which saves the whole state to `state.json` atomically
(temp file + fsync + rename) after every change, so a restarted sandbox comes back as it was.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import os
import re
import secrets
import shutil
import socket
import string
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from reconciler.sandbox import catalog, layout
from reconciler.sandbox.billing import Ledger
from reconciler.sandbox.faults import Faults

STATE_VERSION = 1

NO_CAPACITY = (
    "There are no longer any instances available with the requested specifications. "
    "Please refresh and try again."
)
GPU_TAKEN = "There are not enough free GPUs on the host machine to start this pod."
NOT_FOUND_TERMINATE = "pod not found to terminate"

_PORT_RE = re.compile(r"^(\d{1,5})/(http|tcp)$")
_ID_ALPHABET = string.ascii_lowercase + string.digits


class BusinessError(Exception):
    """A RunPod business error: HTTP 200 with `errors[{message, path, extensions.code}]`."""

    def __init__(self, message: str, code: str = "BAD_REQUEST") -> None:
        super().__init__(message)
        self.extensions = {"code": code}


def _rand(n: int, alphabet: str = _ID_ALPHABET) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(n))


def _status_text(what: str, now: float) -> str:
    stamp = time.strftime("%a %b %d %Y %H:%M:%S", time.gmtime(now))
    return f"{what}: {stamp} GMT+0000 (Coordinated Universal Time)"


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def new_pod_key() -> str:
    return "sbx_pod_" + secrets.token_urlsafe(24)


def parse_datetime(value: Any) -> float | None:
    """A DateTime input (ISO 8601 string, or epoch seconds) as epoch seconds."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float):
        return float(value)
    text = str(value).strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise BusinessError(f"Invalid DateTime: {value!r}", "BAD_USER_INPUT") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def parse_ports(ports: str | None) -> list[tuple[int, str]]:
    """`"8888/http,22/tcp"` as [(8888, "http"), (22, "tcp")]; RunPod's port syntax."""
    out: list[tuple[int, str]] = []
    for raw in (ports or "").split(","):
        item = raw.strip()
        if not item:
            continue
        match = _PORT_RE.match(item)
        if not match or not 0 < int(match.group(1)) < 65536:
            raise BusinessError(
                f'Invalid port "{item}": expected PORT/http or PORT/tcp.', "BAD_USER_INPUT"
            )
        out.append((int(match.group(1)), match.group(2)))
    return out


def _cpu_instance(instance_id: str | None) -> tuple[int, int]:
    """(vCPUs, GB) of a `deployCpuPod` instance id `<flavor>-<vcpu>-<memory GB>` (runpod-api.md
    2.2, `cpu3c-2-4`): a known flavor, a power of two in its range, and the flavor's memory for
    that count; anything else cannot be placed. [INF] runpod-python sends none when it is not
    given one; RunPod's default is undocumented: the sandbox gives 2 vCPUs and 8 GB."""
    if not instance_id:
        return 2, 8
    parts = instance_id.split("-")
    if len(parts) != 3 or not (parts[1].isdigit() and parts[2].isdigit()):
        raise BusinessError(f"Invalid instanceId {instance_id!r}.", "BAD_USER_INPUT")
    flavor, vcpu, memory = parts[0], int(parts[1]), int(parts[2])
    ram = catalog.CPU_FLAVOURS.get(flavor)
    low, high = catalog.CPU_VCPUS
    if ram is None or vcpu & (vcpu - 1) or not low <= vcpu <= high or memory != vcpu * ram:
        raise BusinessError(NO_CAPACITY, "NO_CAPACITY")
    return vcpu, memory


def free_tcp_port(avoid: Iterable[int] = ()) -> int:
    """A port on 127.0.0.1 that nothing listens on right now."""
    taken = set(avoid)
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in taken:
            return port
    raise RuntimeError("no free TCP port on 127.0.0.1")


@dataclass
class Pod:
    """One pod as the sandbox stores it (snake_case); `Store.view` renders RunPod's fields."""

    id: str
    name: str
    image_name: str
    env: list[list[str]]
    gpu_type_id: str | None
    gpu_count: int
    cloud: str
    data_center_id: str
    container_disk_gb: int
    volume_gb: int
    volume_mount_path: str
    ports: str
    start_ssh: bool
    pod_type: str  # RESERVED | INTERRUPTABLE
    desired_status: str  # RUNNING | EXITED
    last_status_change: str
    created_at: float
    machine_id: str
    pod_host_id: str
    vcpu_count: int
    memory_gb: int
    docker_args: str = ""
    bid_per_gpu: float | None = None
    instance_id: str | None = None
    template_id: str | None = None
    network_volume_id: str | None = None
    container_registry_auth_id: str | None = None
    last_started_at: float | None = None
    ready_at: float | None = None  # runtime stays null until then
    holds_gpus: bool = False
    generation: int = 0  # bumped on every (re)start: new ports, new container
    port_map: dict[str, int] = field(default_factory=dict)  # "22/tcp" -> public port
    http_ip: str = ""
    # RunPod's pod-scoped `RUNPOD_API_KEY`: reads, stops and terminates this pod, nothing else
    api_key: str = field(default_factory=lambda: new_pod_key())

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Pod:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def env_dict(self) -> dict[str, str]:
        return {k: v for k, v in self.env}

    def is_ready(self, now: float) -> bool:
        return (
            self.desired_status == "RUNNING" and self.ready_at is not None and now >= self.ready_at
        )

    def ssh_port(self) -> int | None:
        return self.port_map.get("22/tcp")


@dataclass
class Volume:
    """A network volume (runpod-rest-v2.md 7): bound to one data center, grow-only."""

    id: str
    name: str
    size: int
    data_center: str
    type: str = "STANDARD"

    def view(self) -> dict[str, Any]:
        """REST v2's `NetworkVolume`."""
        return {
            "id": self.id,
            "name": self.name,
            "size": self.size,
            "dataCenter": self.data_center,
            "type": self.type,
        }


NO_VOLUME = "network volume {id} not found"  # [INF] RunPod's wording is not documented
VOLUME_ELSEWHERE = (
    "network volume {id} is in data center {dc}: the pod must be placed there "
    "(set dataCenterIds to [{dc!r}])"
)


@dataclass
class Account:
    id: str = "user_sandbox"
    email: str = "sandbox@podctl.invalid"
    pub_key: str = ""


Killer = Callable[[str], None]


class Store:
    """Pods, stock and the account, plus the rules RunPod applies to them."""

    def __init__(
        self,
        data_dir: Path,
        *,
        faults: Faults | None = None,
        start_delay: float = 2.0,
        default_stock: int = catalog.DEFAULT_STOCK,
        killer: Killer | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.faults = faults or Faults()
        self.start_delay = start_delay
        self.initial_start_delay = start_delay
        self.default_stock = default_stock
        self.killer: Killer = killer or (lambda _pod_id: None)
        self.pods: dict[str, Pod] = {}
        self.volumes: dict[str, Volume] = {}
        self.account = Account()
        self.stock: dict[str, dict[str, int]] = {}
        self.mount_points: set[str] = set()  # host dirs the sandbox created as mount points
        self.changed = 0  # bumped on every change; the SSH supervisor watches it
        self.ledger = Ledger()  # what each pod has cost so far (/v2/billing/pods)

    # -- persistence -------------------------------------------------------------------------

    @property
    def state_file(self) -> Path:
        return self.data_dir / layout.STATE_FILE

    def load(self) -> None:
        try:
            data = json.loads(self.state_file.read_text())
        except FileNotFoundError:
            return
        self.pods = {p["id"]: Pod.from_dict(p) for p in data.get("pods", [])}
        self.volumes = {v["id"]: Volume(**v) for v in data.get("volumes", [])}
        self.account = Account(**data.get("account", {}))
        self.stock = {k: dict(v) for k, v in data.get("stock", {}).items()}
        self.mount_points = set(data.get("mount_points", []))
        self.ledger.load(data.get("billing", {}))

    def save(self) -> None:
        # every change saves: the ledger closes and opens its segments at the same moment
        self.ledger.sync(((p, self.cost_per_hr(p)) for p in self.pods.values()), time.time())
        data = {
            "version": STATE_VERSION,
            "account": asdict(self.account),
            "stock": self.stock,
            "mount_points": sorted(self.mount_points),
            # shallow: the same JSON as asdict() at a thirtieth of its cost, which a save per
            # create of a large account would otherwise spend (the fields hold no dataclass)
            "pods": [dict(vars(p)) for p in self.pods.values()],
            "volumes": [dict(vars(v)) for v in self.volumes.values()],
            "billing": self.ledger.dump(),
        }
        layout.atomic_write(self.state_file, json.dumps(data, separators=(",", ":")).encode())
        self.changed += 1

    def reset(self) -> None:
        """Terminate every pod and forget all state (the API key stays)."""
        for pod_id in list(self.pods):
            self._remove(pod_id)
        self.volumes = {}
        self.account = Account()
        self.stock = {}
        self.start_delay = self.initial_start_delay
        self.ledger.clear()
        self.save()

    # -- capacity ----------------------------------------------------------------------------

    def total_stock(self, gpu_type_id: str, cloud: str) -> int:
        return self.stock.get(gpu_type_id, {}).get(cloud, self.default_stock)

    def used(self, gpu_type_id: str, cloud: str) -> int:
        return sum(
            p.gpu_count
            for p in self.pods.values()
            if p.holds_gpus and p.gpu_type_id == gpu_type_id and p.cloud == cloud
        )

    def available(self, gpu_type_id: str, cloud: str, *, for_create: bool = True) -> int:
        if for_create and self.faults.is_exhausted(gpu_type_id, cloud):
            return 0
        return max(0, self.total_stock(gpu_type_id, cloud) - self.used(gpu_type_id, cloud))

    def set_stock(self, gpu_type_id: str, cloud: str | None, count: int) -> None:
        if gpu_type_id not in catalog.GPU_BY_ID:
            raise BusinessError(f"Unknown GPU type {gpu_type_id!r}", "BAD_USER_INPUT")
        for c in [cloud] if cloud else list(catalog.CLOUDS):
            self.stock.setdefault(gpu_type_id, {})[c] = count
        self.save()

    # -- views (what GraphQL returns) --------------------------------------------------------

    def cost_per_hr(self, pod: Pod) -> float:
        if pod.gpu_type_id is None:
            return round(pod.vcpu_count * catalog.CPU_PRICE_PER_VCPU, 3)
        if pod.pod_type == "INTERRUPTABLE" and pod.bid_per_gpu is not None:
            return round(pod.bid_per_gpu * pod.gpu_count, 3)
        gpu = catalog.GPU_BY_ID[pod.gpu_type_id]
        price = gpu.secure_price if pod.cloud == "SECURE" else gpu.community_price
        return round(price * pod.gpu_count, 3)

    def runtime(self, pod: Pod, now: float) -> dict[str, Any] | None:
        if not pod.is_ready(now):
            return None
        ports = []
        for private, kind in parse_ports(pod.ports):
            public = pod.port_map.get(f"{private}/{kind}")
            if kind == "tcp":
                ports.append(
                    {
                        "ip": "127.0.0.1",
                        "isIpPublic": True,
                        "privatePort": private,
                        "publicPort": public,
                        "type": "tcp",
                    }
                )
            else:
                ports.append(
                    {
                        "ip": pod.http_ip,
                        "isIpPublic": False,
                        "privatePort": private,
                        "publicPort": public,
                        "type": "http",
                    }
                )
        assert pod.ready_at is not None
        return {
            "uptimeInSeconds": int(now - pod.ready_at),
            "ports": ports,
            "gpus": [
                {"id": f"GPU-{pod.id}-{i}", "gpuUtilPercent": 0, "memoryUtilPercent": 0}
                for i in range(pod.gpu_count)
            ],
            "container": {"cpuPercent": 0, "memoryPercent": 0},
        }

    def view(self, pod: Pod, now: float | None = None) -> dict[str, Any]:
        """The pod with RunPod's GraphQL field names."""
        now = time.time() if now is None else now
        gpu = catalog.GPU_BY_ID.get(pod.gpu_type_id or "")
        dc = catalog.DATA_CENTER_BY_ID[pod.data_center_id]
        ready = pod.is_ready(now)
        first_port = parse_ports(pod.ports)
        cost = self.cost_per_hr(pod)
        return {
            "id": pod.id,
            "name": pod.name,
            "desiredStatus": pod.desired_status,
            "lastStatusChange": pod.last_status_change,
            "imageName": pod.image_name,
            "dockerArgs": pod.docker_args,
            "dockerId": f"{pod.id}-{pod.generation}" if ready else None,
            "env": [f"{k}={v}" for k, v in pod.env],
            "costPerHr": cost,
            "adjustedCostPerHr": cost,
            "costMultiplier": 1.0,
            "gpuCount": pod.gpu_count,
            "vcpuCount": float(pod.vcpu_count),
            "memoryInGb": float(pod.memory_gb),
            "volumeInGb": float(pod.volume_gb),
            "containerDiskInGb": pod.container_disk_gb,
            "volumeMountPath": pod.volume_mount_path,
            "ports": pod.ports,
            "port": first_port[0][0] if first_port else None,
            "podType": pod.pod_type,
            "uptimeSeconds": int(now - pod.ready_at) if ready and pod.ready_at else 0,
            "machineId": pod.machine_id,
            "machine": {
                "podHostId": pod.pod_host_id,
                "gpuDisplayName": gpu.display_name if gpu else None,
                "gpuTypeId": pod.gpu_type_id,
                "location": dc.location,
                "secureCloud": pod.cloud == "SECURE",
                "supportPublicIp": True,
                "dataCenterId": dc.id,
                "runpodIp": pod.http_ip,
                "maxDownloadSpeedMbps": 1000,
            },
            "runtime": self.runtime(pod, now),
            "containerRegistryAuthId": pod.container_registry_auth_id,
            "templateId": pod.template_id,
            "networkVolumeId": pod.network_volume_id,
            "clusterIp": None,
            "createdAt": _iso(pod.created_at),
            "lastStartedAt": _iso(pod.last_started_at),
            "locked": False,
            "version": pod.generation,
            "volumeEncrypted": False,
            "gpus": [{"id": f"GPU-{pod.id}-{i}", "podId": pod.id} for i in range(pod.gpu_count)],
            "lowestBidPriceToResume": self._min_bid(pod) if gpu else None,
        }

    def _min_bid(self, pod: Pod) -> float:
        gpu = catalog.GPU_BY_ID[pod.gpu_type_id or ""]
        return gpu.secure_spot_price if pod.cloud == "SECURE" else gpu.community_spot_price

    def get(self, pod_id: str) -> Pod | None:
        return self.pods.get(pod_id)

    def pod_for_key(self, key: str) -> str | None:
        """The id of the pod whose pod-scoped API key this is, if any."""
        if not key:
            return None
        found = None
        for pod in self.pods.values():  # compare every key: no early exit to time
            if hmac.compare_digest(pod.api_key.encode(), key.encode()):
                found = pod.id
        return found

    # -- mutations ---------------------------------------------------------------------------

    def create(self, inp: dict[str, Any], *, kind: str = "ON_DEMAND") -> Pod:
        """`podFindAndDeployOnDemand` (ON_DEMAND), `podRentInterruptable` (SPOT), `deployCpuPod`."""
        now = time.time()
        image = inp.get("imageName") or None
        template = inp.get("templateId") or None
        if not image and not template:
            raise BusinessError("imageName or templateId is required.", "BAD_USER_INPUT")
        ports = inp.get("ports") or ""
        parse_ports(ports)
        cloud_req = inp.get("cloudType") or "ALL"
        dc_id = inp.get("dataCenterId") or catalog.DATA_CENTERS[0].id
        if dc_id not in catalog.DATA_CENTER_BY_ID:
            raise BusinessError(NO_CAPACITY, "NO_CAPACITY")
        gpu_type_id: str | None = None
        gpu_count = 0
        bid: float | None = None
        if kind == "CPU":
            # [INF] dstack deploys CPU pods on SECURE only; the sandbox refuses the rest
            if cloud_req not in ("SECURE", "ALL"):
                raise BusinessError(
                    "CPU pods are available on SECURE cloud only.", "BAD_USER_INPUT"
                )
            cloud = "SECURE"
            vcpu, memory = _cpu_instance(inp.get("instanceId"))
        else:
            gpu_type_id = inp.get("gpuTypeId") or None
            if gpu_type_id is None:
                ids = [i for i in inp.get("gpuTypeIdList") or [] if i]
                gpu_type_id = ids[0] if ids else None
            if gpu_type_id is None:
                raise BusinessError("gpuTypeId is required.", "BAD_USER_INPUT")
            gpu = catalog.GPU_BY_ID.get(gpu_type_id)
            if gpu is None:
                raise BusinessError(NO_CAPACITY, "NO_CAPACITY")
            gpu_count = inp.get("gpuCount") or 1
            if gpu_count < 1 or gpu_count > gpu.max_gpu_count:
                raise BusinessError(NO_CAPACITY, "NO_CAPACITY")
            clouds = list(catalog.CLOUDS) if cloud_req == "ALL" else [cloud_req]
            if inp.get("networkVolumeId") and cloud_req == "ALL":
                clouds = ["SECURE"]  # network volumes serve Secure Cloud pods only (7)
            chosen = [c for c in clouds if self.available(gpu_type_id, c) >= gpu_count]
            if not chosen:
                raise BusinessError(NO_CAPACITY, "NO_CAPACITY")
            cloud = chosen[0]
            if kind == "SPOT":
                bid = inp.get("bidPerGpu")
                minimum = gpu.secure_spot_price if cloud == "SECURE" else gpu.community_spot_price
                if bid is None or bid < minimum:
                    raise BusinessError(
                        f"Your bid price of ${bid}/hr per GPU is below the minimum bid price "
                        f"of ${minimum}/hr for this GPU.",
                        "BID_TOO_LOW",
                    )
            vcpu = max(inp.get("minVcpuCount") or 0, 8 * gpu_count)
            memory = max(inp.get("minMemoryInGb") or 0, 31 * gpu_count)
        volume_id = inp.get("networkVolumeId") or None  # "" is none, as RunPod reports it
        if volume_id is not None:
            self._volume_placement(volume_id, inp.get("dataCenterId"), cloud)
        pod_id = _rand(14)
        while pod_id in self.pods:
            pod_id = _rand(14)
        env = [[e["key"], e.get("value") or ""] for e in inp.get("env") or [] if e]
        pod = Pod(
            id=pod_id,
            name=inp.get("name") or (image or template or "pod"),
            image_name=image or f"runpod/{template}:latest",
            env=env,
            gpu_type_id=gpu_type_id,
            gpu_count=gpu_count,
            cloud=cloud,
            data_center_id=dc_id,
            container_disk_gb=inp.get("containerDiskInGb") or 10,
            volume_gb=inp.get("volumeInGb") or 0,
            volume_mount_path=inp.get("volumeMountPath") or "/workspace",
            ports=ports.replace(" ", ""),
            start_ssh=bool(inp.get("startSsh")),
            pod_type="INTERRUPTABLE" if kind == "SPOT" else "RESERVED",
            desired_status="RUNNING",
            last_status_change=_status_text("Rented by User", now),
            created_at=now,
            machine_id=_rand(12),
            pod_host_id=f"{pod_id}-{secrets.token_hex(4)}",
            vcpu_count=vcpu,
            memory_gb=memory,
            docker_args=inp.get("dockerArgs") or "",
            bid_per_gpu=bid,
            instance_id=inp.get("instanceId"),
            template_id=template,
            network_volume_id=volume_id,
            container_registry_auth_id=inp.get("containerRegistryAuthId"),
        )
        # RunPod validates these as RFC 3339 DateTime, stores them nowhere and never acts on
        # them (runpodctl PR #330): the pod keeps running and billing past the deadline.
        parse_datetime(inp.get("terminateAfter"))
        parse_datetime(inp.get("stopAfter"))
        layout.volume_dir(self.data_dir, pod_id).mkdir(parents=True, exist_ok=True)
        layout.container_dir(self.data_dir, pod_id).mkdir(parents=True, exist_ok=True)
        self._start(pod, now)
        self.pods[pod_id] = pod
        self.save()
        return pod

    # -- network volumes (runpod-rest-v2.md 7) -------------------------------------------------

    def create_volume(self, name: str, size: int, data_center: str, kind: str | None) -> Volume:
        if data_center not in catalog.DATA_CENTER_BY_ID:
            known = ", ".join(d.id for d in catalog.DATA_CENTERS)
            # 7: a data center without volume support is a 400 naming those that have it
            raise BusinessError(f"network volumes are offered in {known}, not {data_center}")
        volume_id = _rand(10)
        while volume_id in self.volumes:
            volume_id = _rand(10)
        volume = Volume(volume_id, name, size, data_center, kind or "STANDARD")
        self.volumes[volume_id] = volume
        self.save()
        return volume

    def _volume_placement(self, volume_id: str, dc_id: str | None, cloud: str) -> str:
        """The data center a pod with this network volume is placed in: the volume's.

        A pod's network volume must be in its data center, and volumes serve Secure Cloud pods
        only (runpod-rest-v2.md 7). [INF] Whether RunPod places a pod that names no data
        center next to its volume is not documented (runpod-python looks the data center up
        itself): the sandbox does not, and refuses any other data center.
        """
        volume = self.volumes.get(volume_id)
        if volume is None:
            raise BusinessError(NO_VOLUME.format(id=volume_id), "BAD_USER_INPUT")
        if cloud != "SECURE":
            raise BusinessError(
                f"network volume {volume_id} can be attached to Secure Cloud pods only",
                "BAD_USER_INPUT",
            )
        if dc_id != volume.data_center:
            raise BusinessError(
                VOLUME_ELSEWHERE.format(id=volume_id, dc=volume.data_center), "BAD_USER_INPUT"
            )
        return volume.data_center

    def _start(self, pod: Pod, now: float) -> None:
        pod.desired_status = "RUNNING"
        pod.holds_gpus = pod.gpu_count > 0
        pod.generation += 1
        pod.last_started_at = now
        pod.ready_at = now + self.start_delay
        used = {p for other in self.pods.values() for p in other.port_map.values()}
        pod.port_map = {}
        for private, kind in parse_ports(pod.ports):
            port = free_tcp_port(used) if kind == "tcp" else 60000 + secrets.randbelow(5000)
            used.add(port)
            pod.port_map[f"{private}/{kind}"] = port
        pod.http_ip = f"100.65.{secrets.randbelow(256)}.{1 + secrets.randbelow(254)}"

    def _wipe_container(self, pod: Pod) -> None:
        self.killer(pod.id)
        cdir = layout.container_dir(self.data_dir, pod.id)
        shutil.rmtree(cdir, ignore_errors=True)
        cdir.mkdir(parents=True, exist_ok=True)

    def _require(self, pod_id: str) -> Pod:
        pod = self.pods.get(pod_id)
        if pod is None:
            raise BusinessError(f"Pod {pod_id} not found.", "NOT_FOUND")
        return pod

    def stop(self, pod_id: str, *, why: str = "Stopped by User") -> Pod:
        pod = self._require(pod_id)
        if pod.desired_status == "RUNNING":
            now = time.time()
            pod.desired_status = "EXITED"
            pod.last_status_change = _status_text(why, now)
            pod.holds_gpus = False
            pod.ready_at = None
            pod.port_map = {}
            self._wipe_container(pod)
            self.save()
        return pod

    def resume(self, pod_id: str, gpu_count: int | None, bid: float | None = None) -> Pod:
        pod = self._require(pod_id)
        if pod.desired_status == "RUNNING":
            return pod
        count = pod.gpu_count if gpu_count is None else gpu_count
        if pod.gpu_type_id is not None:
            gpu = catalog.GPU_BY_ID[pod.gpu_type_id]
            if count < 0 or count > gpu.max_gpu_count:
                raise BusinessError(GPU_TAKEN, "GPU_UNAVAILABLE")
            if pod.id in self.faults.gpu_taken or (
                self.available(pod.gpu_type_id, pod.cloud, for_create=False) < count
            ):
                raise BusinessError(GPU_TAKEN, "GPU_UNAVAILABLE")
            if bid is not None:
                minimum = self._min_bid(pod)
                if bid < minimum:
                    raise BusinessError(
                        f"Your bid price of ${bid}/hr per GPU is below the minimum bid price "
                        f"of ${minimum}/hr for this GPU.",
                        "BID_TOO_LOW",
                    )
                pod.bid_per_gpu = bid
                pod.pod_type = "INTERRUPTABLE"
            pod.gpu_count = count
        now = time.time()
        pod.last_status_change = _status_text("Resumed by User", now)
        self._start(pod, now)
        self.save()
        return pod

    def terminate(self, pod_id: str) -> None:
        if pod_id not in self.pods:
            raise BusinessError(NOT_FOUND_TERMINATE, "NOT_FOUND")
        self._remove(pod_id)
        self.save()

    def _remove(self, pod_id: str) -> None:
        self.killer(pod_id)
        del self.pods[pod_id]
        shutil.rmtree(layout.pod_dir(self.data_dir, pod_id), ignore_errors=True)
        in_use = {p.volume_mount_path for p in self.pods.values()}
        for path in sorted(self.mount_points - in_use):
            with contextlib.suppress(OSError):  # not empty any more: leave it
                os.rmdir(path)
            self.mount_points.discard(path)

    def note_mount_point(self, path: str) -> None:
        self.mount_points.add(path)
        self.save()

    def edit(self, inp: dict[str, Any]) -> Pod:
        """`podEditJob`: change the config; a running pod is reset (container wiped, new ports)."""
        pod = self._require(inp["podId"])
        if inp.get("ports") is not None:
            parse_ports(inp["ports"])
            pod.ports = inp["ports"].replace(" ", "")
        if inp.get("imageName"):
            pod.image_name = inp["imageName"]
        if inp.get("dockerArgs") is not None:
            pod.docker_args = inp["dockerArgs"]
        if inp.get("env") is not None:  # null keeps the env, [] clears it
            pod.env = [[e["key"], e.get("value") or ""] for e in inp["env"] if e]
        for key, attr in (
            ("containerDiskInGb", "container_disk_gb"),
            ("volumeInGb", "volume_gb"),
            ("volumeMountPath", "volume_mount_path"),
            ("containerRegistryAuthId", "container_registry_auth_id"),
        ):
            if inp.get(key) is not None:
                setattr(pod, attr, inp[key])
        if pod.desired_status == "RUNNING":
            now = time.time()
            self._wipe_container(pod)
            pod.last_status_change = _status_text("Reset by User", now)
            self._start(pod, now)
        self.save()
        return pod

    def preempt(self, pod_id: str) -> Pod:
        """Spot preemption: the pod is stopped by RunPod (-> EXITED)."""
        return self.stop(pod_id, why="Interrupted by RunPod (spot instance preempted)")

    def set_pub_key(self, pub_key: str) -> None:
        self.account.pub_key = pub_key
        self.save()
