"""REST v2 renderings of the sandbox state: `Pod`, `GpuType`, log events (runpod-rest-v2.md 5-6)."""

from __future__ import annotations

import json
import os
import stat
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from reconciler.sandbox import catalog, layout
from reconciler.sandbox.state import Pod, Store, parse_ports

# CUDA versions the sandbox's hosts report per GPU type (the catalogue has none of its own);
# the H100 hosts run newer drivers only. A pod's host keeps its version while stopped
# (runpod-rest-v2.md 5.1 `cudaVersion`).
CUDA_VERSIONS: dict[str, tuple[str, ...]] = {
    g.id: ("12.1", "12.4", "12.6", "12.8") if "H100" in g.id else ("11.8", "12.1", "12.4", "12.8")
    for g in catalog.GPU_TYPES
}
DC_COUNTRY = {"EU-RO-1": "RO", "US-TX-3": "US", "CA-MTL-1": "CA"}
CPU_FLAVOURS = catalog.CPU_FLAVOURS
CPU_VCPUS = catalog.CPU_VCPUS
_CPU_NAMES = {"c": "Compute-Optimized", "g": "General Purpose", "m": "Memory-Optimized"}
# runpod-rest-v2.md 5.2: the transitions valid in each status
ACTIONS = {
    "PROVISIONING": ["stop", "terminate"],
    "STARTING": ["stop", "terminate"],
    "RUNNING": ["stop", "restart", "terminate"],
    "EXITED": ["start", "terminate"],
    "ERROR": ["start", "terminate"],
    "TERMINATED": [],
}
SIDECAR = "rest.json"  # what a REST create asked for that the GraphQL pod record has no field for
LOG = "rest-log.jsonl"  # the log lines the sandbox wrote for a pod, numbered once
LOG_MAX_LINES = 5000  # runpod-rest-v2.md 5.9: `tail` goes up to 5000


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_ms(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def cuda_key(version: str) -> tuple[int, ...]:
    """`12.11` above `12.2`: compared numerically (runpod-rest-v2.md 5.5 `minCudaVersion`)."""
    return tuple(int(p) for p in version.split("."))


def sidecar_path(data_dir: Path, pod_id: str) -> Path:
    return layout.pod_dir(data_dir, pod_id) / SIDECAR


def _read_capped(path: Path, limit: int = 1 << 20) -> str:
    """A file the sandbox wrote in a pod's folder: never through a symlink, at most `limit`
    bytes (the pod's root can reach that folder)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{path} is not a regular file")
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, limit + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        data = b"".join(chunks)
    finally:
        os.close(fd)
    if len(data) > limit:
        raise OSError(f"{path} is over {limit} bytes")
    return data.decode("utf-8", "replace")


def read_sidecar(data_dir: Path, pod_id: str) -> dict[str, Any]:
    try:
        data = json.loads(_read_capped(sidecar_path(data_dir, pod_id)))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def status(pod: Pod, now: float) -> str:
    """v2's observed status from the sandbox's intent + readiness (runpod-rest-v2.md 5.2).

    ERROR is never produced (sandbox containers do not crash); TERMINATED pods are gone (404).
    """
    if pod.desired_status != "RUNNING":
        return "EXITED"
    if pod.is_ready(now):
        return "RUNNING"
    return "PROVISIONING" if pod.generation <= 1 else "STARTING"


def pod_view(
    store: Store, pod: Pod, now: float | None = None, *, fresh: bool = False
) -> dict[str, Any]:
    """The `Pod` object (runpod-rest-v2.md 5.1); `fresh`: the create reply, PROVISIONING."""
    now = time.time() if now is None else now
    state = "PROVISIONING" if fresh else status(pod, now)
    extra = read_sidecar(store.data_dir, pod.id)
    ports = parse_ports(pod.ports)
    running = state == "RUNNING"
    view: dict[str, Any] = {
        "id": pod.id,
        "name": pod.name,
        "status": state,
        "actions": list(ACTIONS[state]),
        "image": pod.image_name,
        "args": pod.docker_args,
        "disk": pod.container_disk_gb,
        "mounts": _mounts(pod),
        "ports": [f"{p}/{kind}" for p, kind in ports],
        "env": pod.env_dict(),
        "registry": pod.container_registry_auth_id,
        "cloud": pod.cloud,
        "dataCenterId": pod.data_center_id,
        "cudaVersion": None,
        "ssh": {"proxy": _proxy(pod), "direct": _direct(pod) if running else None},
        "template": None,  # runpod-rest-v2.md 5.1: no template link is kept
        "cost": store.cost_per_hr(pod) if state != "EXITED" else 0.0,  # 5.1 `cost`
        "locked": False,
        "runtime": _runtime(pod, now) if running else None,  # 5.1: null unless RUNNING
        "createdAt": iso(pod.created_at),
        # RFC 3339 with milliseconds (5.1 `startedAt`: date-time): a restart within the same
        # second is another start, as on RunPod
        "startedAt": iso_ms(pod.last_started_at),
        "globalNetworking": {"enabled": False},
    }
    if pod.gpu_type_id is not None:
        view["gpu"] = {"id": pod.gpu_type_id, "count": pod.gpu_count}
        offered = CUDA_VERSIONS.get(pod.gpu_type_id, ())
        view["cudaVersion"] = extra.get("cuda") or (offered[-1] if offered else None)
    else:
        flavour = extra.get("cpu") or (pod.instance_id or "cpu3c").split("-")[0]
        view["cpu"] = {"id": flavour, "vcpuCount": pod.vcpu_count, "memory": pod.memory_gb}
    return view


def _mounts(pod: Pod) -> dict[str, Any]:
    """5.1 `mounts`: a network volume, or a persistent volume disk, or none."""
    if pod.network_volume_id:
        return {"network": [{"volumeId": pod.network_volume_id, "path": pod.volume_mount_path}]}
    if pod.volume_gb:
        return {"persistent": {"size": pod.volume_gb, "path": pod.volume_mount_path}}
    return {}


def _proxy(pod: Pod) -> dict[str, Any]:
    # runpod-rest-v2.md 5.1.2: the routing username is the old podHostId
    user = pod.pod_host_id
    return {
        "host": "ssh.runpod.io",
        "port": 22,
        "username": user,
        "command": f"ssh {user}@ssh.runpod.io",
    }


def _direct(pod: Pod) -> dict[str, Any] | None:
    # runpod-rest-v2.md 5.1.2: only with 22/tcp mapped on a running pod
    port = pod.ssh_port()
    if port is None:
        return None
    return {
        "host": "127.0.0.1",
        "port": port,
        "username": "root",
        "command": f"ssh root@127.0.0.1 -p {port}",
    }


def _runtime(pod: Pod, now: float) -> dict[str, Any]:
    # runpod-rest-v2.md 5.1.1: ports {private, public, type, ip}; no isIpPublic
    ports = []
    for private, kind in parse_ports(pod.ports):
        public = pod.port_map.get(f"{private}/{kind}")
        ip = "127.0.0.1" if kind == "tcp" else pod.http_ip
        ports.append({"private": private, "public": public, "type": kind, "ip": ip})
    return {
        "uptime": int(now - (pod.ready_at or now)),
        "gpus": [{"util": 0, "memoryUtil": 0} for _ in range(pod.gpu_count)],
        "cpu": {"util": 0},
        "memory": {"util": 0},
        "ports": ports,
    }


def cpu_view(flavor: str, *, availability: bool) -> dict[str, Any]:
    """The `CpuType` object (runpod-rest-v2.md 6.2); the sandbox never runs out of CPUs."""
    view: dict[str, Any] = {
        "id": flavor,
        "name": _CPU_NAMES.get(flavor[-1], "CPU"),
        "group": f"Gen {flavor[3]}" if flavor[3:4].isdigit() else "CPU",
        "vcpu": {"min": CPU_VCPUS[0], "max": CPU_VCPUS[1]},
        "ramGbPerVcpu": CPU_FLAVOURS[flavor],
        "price": {
            "securePerVcpu": catalog.CPU_PRICE_PER_VCPU,
            "serverlessPerVcpu": catalog.CPU_PRICE_PER_VCPU,
        },
    }
    if availability:
        view["availability"] = "HIGH"
        view["dataCenters"] = [
            {"id": d.id, "name": d.name, "availability": "HIGH"} for d in catalog.DATA_CENTERS
        ]
    return view


def level(available: int, count: int) -> str:
    """AvailabilityLevel for `count` GPUs when `available` are free (runpod-rest-v2.md 6.1)."""
    words = {"High": "HIGH", "Medium": "MEDIUM", "Low": "LOW"}
    word = catalog.stock_status(available // max(1, count))
    return words.get(word or "", "NONE")


def gpu_view(
    store: Store,
    gpu: catalog.GpuType,
    *,
    availability: bool,
    count: int = 1,
    cloud: str = "SECURE",
    countries: list[str] | None = None,
) -> dict[str, Any]:
    """The `GpuType` object (runpod-rest-v2.md 6.1); stock is the sandbox's (faults included)."""
    view: dict[str, Any] = {
        "id": gpu.id,
        "name": gpu.display_name,
        "pool": None,
        "manufacturer": gpu.manufacturer.upper(),
        "memory": gpu.memory_gb,
        "secure": True,
        "community": True,
        "price": {"secure": gpu.secure_price, "community": gpu.community_price},
        "maxCount": {"secure": gpu.max_gpu_count, "community": gpu.max_gpu_count},
    }
    if not availability:
        return view
    dcs = [d for d in catalog.DATA_CENTERS if countries is None or DC_COUNTRY[d.id] in countries]
    free = store.available(gpu.id, cloud) if count <= gpu.max_gpu_count else 0
    overall = level(free, count) if dcs else "NONE"
    view["availability"] = overall
    if overall != "NONE":  # 6.1: omitted entirely when unavailable everywhere
        view["dataCenters"] = [{"id": d.id, "name": d.name, "availability": overall} for d in dcs]
    view["cudaVersions"] = [
        {"version": v, "available": overall != "NONE"} for v in CUDA_VERSIONS[gpu.id]
    ]
    return view


def _stamp(text: str) -> float | None:
    """The time in a `lastStatusChange` text (`Stopped by User: Tue Dec 01 2026 21:00:00 ...`)."""
    try:
        stamp = text.split(": ", 1)[1].split(" GMT")[0]
        return datetime.strptime(stamp, "%a %b %d %Y %H:%M:%S").replace(tzinfo=UTC).timestamp()
    except (IndexError, ValueError):
        return None


def log_events(pod: Pod, now: float) -> list[tuple[float, str, str]]:
    """(ts, source, line) the sandbox writes for a pod's state changes, oldest first.

    The sandbox runs no container image, so its log is its own: `system` lines for create,
    (re)start and stop, `container` lines when the container is up (runpod-rest-v2.md 5.9).
    """
    events = [
        (pod.created_at, "system", f"sandbox: pulling image {pod.image_name} (nothing pulled)"),
        (pod.created_at, "system", "sandbox: create container"),
    ]
    if pod.last_started_at is not None:
        events.append((pod.last_started_at, "system", f"sandbox: start container {pod.generation}"))
    if pod.is_ready(now) and pod.ready_at is not None:
        if pod.ssh_port() is not None:
            events.append((pod.ready_at, "container", "sandbox: sshd listening on port 22"))
        events.append((pod.ready_at, "container", "sandbox: container running"))
    if pod.desired_status != "RUNNING":
        stopped = _stamp(pod.last_status_change) or now
        events.append(
            (max(stopped, pod.last_started_at or 0.0), "system", "sandbox: stop container")
        )
    return sorted(events, key=lambda e: e[0])


LogLine = tuple[int, float, str, str]  # (seq, ts, source, line)


def observe_log(data_dir: Path, pod: Pod, now: float) -> list[LogLine]:
    """The pod's log so far: lines for state changes not yet written are appended, numbered
    after the last, so an event id never changes (`Last-Event-ID` resumes after it)."""
    path = layout.pod_dir(data_dir, pod.id) / LOG
    lines: list[LogLine] = []
    try:
        for raw in _read_capped(path, 4 << 20).splitlines():
            seq, ts, source, line = json.loads(raw)
            lines.append((int(seq), float(ts), str(source), str(line)))
    except (OSError, ValueError, TypeError):
        lines = []
    known = {(ts, source, line) for _, ts, source, line in lines}
    new = [e for e in log_events(pod, now) if e not in known]
    if new:
        seq = lines[-1][0] if lines else 0
        for ts, source, line in new:
            seq += 1
            lines.append((seq, ts, source, line))
        lines = lines[-LOG_MAX_LINES:]
        if path.parent.is_dir():  # a terminated pod's folder is gone: write nothing
            text = "".join(json.dumps(list(e)) + "\n" for e in lines)
            layout.atomic_write(path, text.encode())
    return lines
