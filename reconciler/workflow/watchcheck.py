"""`podctl status`: whether each running pod's watchdog is armed, asked over SSH (read-only)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path

from reconciler.errors import PodctlError
from reconciler.model import ActualPod, Lockfile

CHECK_TIMEOUT_S = 10.0


async def _check(pod: ActualPod, key_file: Path, pinned: tuple[str, ...]) -> str:
    from reconciler.jobs.watchdog import CHECK_SCRIPT, parse_check
    from reconciler.ssh import ensure_stack_key, wait_ready

    try:
        key = ensure_stack_key(key_file)
        conn = await wait_ready(pod, key, pinned=pinned, timeout_s=CHECK_TIMEOUT_S)
        try:
            _, out, _ = await conn.run("sh -s", stdin=CHECK_SCRIPT, timeout_s=CHECK_TIMEOUT_S)
        finally:
            await conn.close()
    except PodctlError as exc:
        return f"unknown (SSH: {str(exc)[:120]})"
    armed, _config = parse_check(out)
    return "armed" if armed else "NOT armed (the next apply or reconcile round arms it)"


async def watchdog_states(
    pods: Mapping[str, ActualPod], key_file: Path, recorded: Lockfile
) -> dict[str, str]:
    """Pod name -> `armed`, `NOT armed ...` or `unknown (...)`, one SSH session per pod.

    The key is only read (never made here): without one, no pod can be asked. Host keys are
    checked against those pinned in the lockfile, and none is pinned by this read-only look.
    """
    if not pods:
        return {}
    if not key_file.exists():
        return {name: "unknown (no SSH key yet)" for name in pods}
    names = list(pods)
    found = await asyncio.gather(
        *(
            _check(pods[n], key_file, tuple(recorded.host_keys.get(pods[n].pod_id, ())))
            for n in names
        )
    )
    return dict(zip(names, found, strict=True))
