"""The pods' nvidia-smi stand-in, and the gpu-util fault that sets what it reports."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from reconciler.sandbox import gpus
from reconciler.sandbox.control import SandboxError
from tests.sandbox.conftest import Sandbox


def _smi(folder: Path, *args: str) -> str:
    out = subprocess.run(
        [str(folder / "nvidia-smi"), *args], capture_output=True, text=True, check=True
    )
    return out.stdout


def test_the_stand_in_reports_each_gpu_at_the_set_utilisation(tmp_path: Path) -> None:
    folder = gpus.install(tmp_path, "pod1", 2)
    query = "--query-gpu=utilization.gpu"
    assert _smi(folder, query, "--format=csv,noheader,nounits") == "0\n0\n"  # idle by default
    gpus.set_util(tmp_path, "pod1", 73)
    assert _smi(folder, query, "--format=csv,noheader,nounits") == "73\n73\n"
    assert _smi(folder, query, "--format=csv") == "utilization.gpu [%]\n73 %\n73 %\n"
    with pytest.raises(ValueError):
        gpus.set_util(tmp_path, "pod1", 101)


def test_the_fault_sets_a_pods_utilisation_and_refuses_bad_values(sb: Sandbox) -> None:
    pod = sb.create(ports="22/tcp")
    sb.faults({"gpu_util": {pod["id"]: 40}})
    util = sb.data_dir / "pods" / pod["id"] / gpus.UTIL_FILE
    assert util.read_text() == "40\n"
    for bad in ({"nope": 5}, {pod["id"]: 101}, {pod["id"]: True}, [pod["id"]]):
        with pytest.raises(SandboxError, match="gpu_util must be"):
            sb.faults({"gpu_util": bad})
    assert util.read_text() == "40\n"  # a bad request changes nothing
