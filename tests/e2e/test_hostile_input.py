"""Bad values and hostile files through `podctl`: a clear message, exit 1 or 2, files untouched."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reconciler.lockfile.codec import RECOVERY_HINT
from tests.e2e.conftest import Podctl

DEEP = "[" * 200_000 + "]" * 200_000


def _files(folder: Path) -> dict[str, bytes]:
    """Every file's bytes but the lock's sidecar (it records who last took the lock)."""
    return {
        p.name: p.read_bytes()
        for p in sorted(folder.iterdir())
        if p.is_file() and not p.name.endswith(".lock.lock")
    }


def _clean(err: str) -> str:
    """stderr without the sandbox's "using the local sandbox" notice."""
    return "".join(line for line in err.splitlines(True) if not line.startswith("podctl: "))


def test_plan_out_empty_is_a_usage_error(podctl: Podctl) -> None:
    before = _files(podctl.folder)
    result = podctl("plan", "-out", "", "-f", str(podctl.spec))
    assert result.code == 2
    assert result.err.endswith(
        "Error: Invalid value for '-out' / '--out': an empty path names no file: "
        "give a file name.\n"
    )
    assert "Traceback" not in result.err and "Internal error" not in result.err
    assert _files(podctl.folder) == before
    assert podctl.operations == {}


@pytest.mark.parametrize("value", ["0s", "0", "0m"])
def test_apply_timeout_zero_is_a_usage_error(podctl: Podctl, value: str) -> None:
    result = podctl("apply", "-y", "--timeout", value, "-f", str(podctl.spec))
    assert result.code == 2
    assert result.err == (
        f"Error: --timeout {value!r} must be more than 0: write e.g. 10m, 30m or 1h.\n"
    )
    assert podctl.mutations() == {}
    assert not podctl.lockfile.exists()


def _corrupt_message(path: Path) -> str:
    return (
        f"Error: The lockfile {path} is corrupt: its JSON is nested too deeply to be a lockfile. "
        f"{RECOVERY_HINT}\n"
    )


@pytest.mark.parametrize(
    "command",
    [["status"], ["plan"], ["apply", "-y"], ["state", "list"], ["state", "show", "pod.box"]],
)
def test_a_deeply_nested_lockfile_is_corrupt_not_a_crash(
    podctl: Podctl, command: list[str]
) -> None:
    podctl.lockfile.write_text(DEEP)
    before = _files(podctl.folder)
    result = podctl(*command, "-f", str(podctl.spec))
    assert result.code == 1
    assert _clean(result.err) == _corrupt_message(podctl.lockfile)
    assert _files(podctl.folder) == before  # byte for byte
    assert podctl.mutations() == {}


def test_state_rebuild_recovers_from_a_deeply_nested_lockfile(podctl: Podctl) -> None:
    assert podctl("apply", "-y", "-f", str(podctl.spec)).code == 0
    (pod,) = podctl.pods()
    podctl.lockfile.write_text(DEEP)
    result = podctl("state", "rebuild", "-f", str(podctl.spec))
    assert result.code == 0, result.err
    (aside,) = [p for p in podctl.folder.iterdir() if ".corrupt-" in p.name]
    assert aside.read_text() == DEEP  # kept, not deleted
    assert podctl.recorded()["pods"]["box"]["pod_id"] == pod["id"]
    assert podctl("plan", "-f", str(podctl.spec)).code == 0


def test_a_deeply_nested_plan_file_is_not_a_plan(podctl: Podctl, tmp_path: Path) -> None:
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(DEEP)
    result = podctl("apply", str(plan_file))
    assert result.code == 1
    assert _clean(result.err) == (
        f"Error: The plan file {plan_file} is not a podctl plan (its JSON is nested too "
        "deeply). Make one with `podctl plan -out FILE`.\n"
    )
    assert plan_file.read_text() == DEEP
    assert podctl.mutations() == {}


JOB_SPEC = """\
version: 1
stack: e2e
pods:
  box:
    image: img:1
    gpu: {type: NVIDIA RTX A4000}
    ports: [22/tcp]
jobs:
  hello:
    pod: box
    run: echo hello
"""


def test_a_lockfile_mixing_times_with_and_without_a_zone_is_read(podctl: Podctl) -> None:
    podctl.write(text=JOB_SPEC)
    assert podctl("apply", "-y", "-f", str(podctl.spec)).code == 0
    recorded = podctl.recorded()
    job = recorded["jobs"]["hello"]
    job["started_at"] = "2026-01-01T10:00:00"  # hand-edited: no zone
    job["finished_at"] = "2026-01-01T10:00:30+00:00"
    recorded["pods"]["box"]["created_at"] = "2026-01-01T09:59:00"
    podctl.lockfile.write_text(json.dumps(recorded, indent=2))
    before = _files(podctl.folder)
    status = podctl("status", "-f", str(podctl.spec))
    assert status.code == 0, status.err
    (line,) = [row for row in status.out.splitlines() if row.startswith("hello")]
    assert line.split() == ["hello", "box", "succeeded", "0", "30s", "-"]
    shown = podctl("state", "show", "pod.box", "-f", str(podctl.spec))
    assert "  created_at:  2026-01-01T09:59:00+00:00" in shown.out.splitlines()
    assert podctl("plan", "--detailed-exitcode", "-f", str(podctl.spec)).code == 0
    assert _files(podctl.folder) == before


@pytest.mark.parametrize(
    "command",
    [["status"], ["state", "list"], ["state", "show", "pod.box"], ["state", "rm", "pod.box"]],
)
def test_another_stacks_lockfile_is_refused(podctl: Podctl, command: list[str]) -> None:
    assert podctl("apply", "-y", "-f", str(podctl.spec)).code == 0
    recorded = podctl.recorded()
    recorded["stack"] = "other"
    podctl.lockfile.write_text(json.dumps(recorded, indent=2))
    before = _files(podctl.folder)
    result = podctl(*command, "-f", str(podctl.spec))
    assert result.code == 1
    assert _clean(result.err) == (
        f"Error: The lockfile {podctl.lockfile} belongs to stack 'other', not 'e2e'. "
        "Pass --lockfile with another path for this stack.\n"
    )
    assert result.out == ""
    assert _files(podctl.folder) == before
