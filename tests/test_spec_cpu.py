"""`cpu: {flavor, vcpu}` in the spec: a CPU pod, and what RunPod's CPU pods cannot have."""

from __future__ import annotations

from pathlib import Path

from reconciler.model import CloudType
from tests.spec_helpers import load, problems_of, write


def test_a_cpu_pod_gets_no_gpu_no_volume_disk_and_secure_cloud(tmp_path: Path) -> None:
    spec = write(
        tmp_path,
        """
        version: 1
        stack: s
        defaults:
          gpu: {type: NVIDIA RTX A4000}
          cloud: all
        pods:
          web:
            image: img:1
            cpu: {flavor: cpu5c, vcpu: 8}
          train:
            image: img:1
        """,
    )
    desired = load([spec])
    web, train = desired.pods["web"], desired.pods["train"]
    assert (web.is_cpu, web.cpu_flavor, web.vcpu) == (True, "cpu5c", 8)
    assert (web.gpu_types, web.gpu_count, web.volume_gb, web.cloud) == ((), 0, 0, CloudType.SECURE)
    # the pod's own `cpu:` wins over the defaults' gpu; the other pod keeps it
    assert (train.is_cpu, train.gpu_types, train.volume_gb) == (False, ("NVIDIA RTX A4000",), 20)


def test_what_a_cpu_pod_cannot_have_is_named_where_it_is_written(tmp_path: Path) -> None:
    spec = write(
        tmp_path,
        """
        version: 1
        stack: s
        pods:
          web:
            image: img:1
            cpu: {flavor: cpu5c, vcpu: 4}
            disk: {volume_gb: 30}
            spot: {bid_per_gpu: 0.2}
            cloud: community
            cuda: ["12.4"]
            idle_timeout: 30m
          both:
            image: img:1
            cpu: {flavor: cpu5c, vcpu: 4}
            gpu: {type: NVIDIA RTX A4000}
          odd:
            image: img:1
            cpu: {flavor: cpu5c, vcpu: 6}
        """,
    )
    found = {(p.path, p.message) for p in problems_of([spec])}
    assert ("pods.web.disk", "pod 'web' is a CPU pod: RunPod gives CPU pods no volume disk "
            "(only the container disk and a network volume)") in found  # fmt: skip
    assert ("pods.web.spot", "pod 'web' is a CPU pod: RunPod has no spot CPU pods") in found
    assert ("pods.web.cloud", "pod 'web' is a CPU pod: RunPod runs CPU pods on secure cloud only"
            ) in found  # fmt: skip
    assert ("pods.web.cuda", "pod 'web' is a CPU pod: cuda applies to GPU pods only") in found
    assert ("pods.web.idle_timeout", "pod 'web' is a CPU pod: idle_timeout watches GPU "
            "utilisation, and a CPU pod has no GPU") in found  # fmt: skip
    assert ("pods.both", "pod 'both' sets both gpu and cpu") in found
    assert any(path == "pods.odd.cpu.vcpu" for path, _ in found)
    assert not any("has no GPU type" in message for _, message in found)
