"""The pods' `nvidia-smi` stand-in: the sandbox has no GPU, so a fault sets the utilisation.

Each pod's `bin/nvidia-smi` (first on its PATH) reports, per GPU of the pod, the utilisation in
its pod folder's `gpu_util` (0 to 100, default 0: an idle GPU, as an unloaded one on RunPod),
set with `podctl sandbox fault gpu-util POD_ID PERCENT`. It answers the query podctl's watchdog
makes (`--query-gpu=utilization.gpu --format=csv[,noheader][,nounits]`) and prints a short
summary otherwise; anything else real nvidia-smi does is not emulated.
"""

from __future__ import annotations

from pathlib import Path

from reconciler.sandbox import layout

UTIL_FILE = "gpu_util"

_SCRIPT = """#!/bin/sh
# podctl sandbox: a stand-in for nvidia-smi (there is no GPU here)
util=$(head -c 8 {util} 2>/dev/null | tr -dc 0-9)
[ -n "$util" ] || util=0
n={count}
case " $* " in
  *--query-gpu=utilization.gpu*)
    case " $* " in *noheader*) ;; *) echo "utilization.gpu [%]" ;; esac
    i=0
    while [ "$i" -lt "$n" ]; do
      case " $* " in *nounits*) echo "$util" ;; *) echo "$util %" ;; esac
      i=$((i + 1))
    done ;;
  *) echo "NVIDIA-SMI (podctl sandbox stand-in): $n GPU(s), utilization $util %" ;;
esac
"""


def bin_dir(data_dir: Path, pod_id: str) -> Path:
    return layout.pod_dir(data_dir, pod_id) / "bin"


def install(data_dir: Path, pod_id: str, gpu_count: int) -> Path:
    """Write the pod's stand-in (0755) and return the folder to put first on its PATH."""
    folder = bin_dir(data_dir, pod_id)
    folder.mkdir(parents=True, exist_ok=True)
    util = layout.pod_dir(data_dir, pod_id) / UTIL_FILE
    quoted = "'" + str(util).replace("'", "'\\''") + "'"
    script = folder / "nvidia-smi"
    text = _SCRIPT.format(util=quoted, count=max(1, gpu_count))
    if not script.exists() or script.read_text() != text:
        layout.atomic_write(script, text.encode(), mode=0o755)
    return folder


def set_util(data_dir: Path, pod_id: str, percent: int) -> None:
    """What the pod's nvidia-smi reports from now on, for each of its GPUs."""
    if not 0 <= percent <= 100:
        raise ValueError(f"a GPU utilisation is 0 to 100, not {percent}")
    folder = layout.pod_dir(data_dir, pod_id)
    folder.mkdir(parents=True, exist_ok=True)
    layout.atomic_write(folder / UTIL_FILE, f"{percent}\n".encode(), mode=0o644)
