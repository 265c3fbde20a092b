"""The sandbox's fixed catalogue: GPU types with prices, data centers, CPU flavours."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GpuType:
    """One GPU type as `gpuTypes` reports it; prices are per GPU per hour."""

    id: str
    display_name: str
    memory_gb: int
    cuda_cores: int
    secure_price: float
    community_price: float
    secure_spot_price: float
    community_spot_price: float
    max_gpu_count: int = 8
    manufacturer: str = "Nvidia"


GPU_TYPES: tuple[GpuType, ...] = (
    GpuType("NVIDIA GeForce RTX 4090", "RTX 4090", 24, 16384, 0.69, 0.34, 0.35, 0.20),
    GpuType("NVIDIA GeForce RTX 3090", "RTX 3090", 24, 10496, 0.43, 0.22, 0.22, 0.11),
    GpuType("NVIDIA RTX A4000", "RTX A4000", 16, 6144, 0.32, 0.17, 0.16, 0.10),
    GpuType("NVIDIA RTX A5000", "RTX A5000", 24, 8192, 0.36, 0.22, 0.18, 0.11),
    GpuType("NVIDIA RTX A6000", "RTX A6000", 48, 10752, 0.76, 0.49, 0.38, 0.25),
    GpuType("NVIDIA L4", "L4", 24, 7424, 0.43, 0.30, 0.22, 0.15),
    GpuType("NVIDIA A40", "A40", 48, 10752, 0.44, 0.35, 0.22, 0.18),
    GpuType("NVIDIA A100 80GB PCIe", "A100 PCIe", 80, 6912, 1.64, 1.19, 0.82, 0.60),
    GpuType("NVIDIA H100 80GB HBM3", "H100 SXM", 80, 16896, 2.99, 2.69, 1.75, 1.50),
)
GPU_BY_ID = {g.id: g for g in GPU_TYPES}


@dataclass(frozen=True)
class DataCenter:
    id: str
    name: str
    location: str


DATA_CENTERS: tuple[DataCenter, ...] = (
    DataCenter("EU-RO-1", "EU-RO-1", "Romania"),
    DataCenter("US-TX-3", "US-TX-3", "United States"),
    DataCenter("CA-MTL-1", "CA-MTL-1", "Canada"),
)
DATA_CENTER_BY_ID = {d.id: d for d in DATA_CENTERS}

CLOUDS = ("SECURE", "COMMUNITY")
DEFAULT_STOCK = 64  # GPUs per type and cloud: generous, so only faults run out
CPU_PRICE_PER_VCPU = 0.03
# vCPU RAM multiplier (GB per vCPU) per CPU flavour: "memory derived from the flavor's RAM
# multiplier" (runpod-rest-v2.md 5.5 `cpu`); every flavour takes 2 to 32 vCPUs (6.2's example)
CPU_FLAVOURS = {"cpu3c": 2, "cpu5c": 2, "cpu3g": 4, "cpu5g": 4, "cpu3m": 8, "cpu5m": 8}
CPU_VCPUS = (2, 32)


def stock_status(available: int) -> str | None:
    """RunPod's words for stock: High, Medium, Low; null when none is left."""
    if available >= 16:
        return "High"
    if available >= 4:
        return "Medium"
    if available >= 1:
        return "Low"
    return None
