"""`podctl ssh pod.NAME -- CMD`: OpenSSH with the stack's key and the pod's pinned host key."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.e2e.conftest import Podctl
from tests.e2e.test_cli_consistency import ABSENT


def _podctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reconciler", "--sandbox", *args],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
        env=os.environ.copy(),
        check=False,
    )


@pytest.fixture(autouse=True)
def _needs_openssh() -> None:
    if shutil.which("ssh") is None:
        pytest.skip("needs OpenSSH's ssh")


def test_ssh_runs_one_command_on_the_pod(podctl: Podctl) -> None:
    podctl.write(text=ABSENT.replace("STATE", "running"))
    assert podctl("apply", "-y", "-f", str(podctl.spec)).code == 0  # a job pinned its host key
    before = set(os.listdir(os.environ.get("TMPDIR", "/tmp")))
    r = _podctl("ssh", "pod.box", "-f", str(podctl.spec), "--", "echo", "hello-from", "$0")
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.startswith("hello-from ")
    after = set(os.listdir(os.environ.get("TMPDIR", "/tmp")))
    assert not [n for n in after - before if n.startswith("podctl-known-hosts-")]
    r = _podctl("ssh", "pod.box", "-f", str(podctl.spec), "--", "exit", "7")
    assert r.returncode == 7  # the command's own exit code


def test_ssh_refuses_a_changed_host_key(podctl: Podctl) -> None:
    podctl.write(text=ABSENT.replace("STATE", "running"))
    assert podctl("apply", "-y", "-f", str(podctl.spec)).code == 0
    data = json.loads(podctl.lockfile.read_text())
    data["host_keys"] = {
        pod_id: ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBlKxUvKX0Ab4sGnxLzQHm0lu3Bt9lRV1nWh7ySNFAKE"]
        for pod_id in data["host_keys"]
    }
    podctl.lockfile.write_text(json.dumps(data))
    r = _podctl("ssh", "pod.box", "-f", str(podctl.spec), "--", "echo", "reached")
    assert r.returncode != 0 and "reached" not in r.stdout
    assert "host key" in r.stderr.lower(), r.stderr


def test_ssh_names_a_pod_the_spec_lacks(podctl: Podctl) -> None:
    r = podctl("ssh", "pod.nope", "-f", str(podctl.spec))
    assert r.code == 2
    assert "No pod 'nope' in stack e2e; its pods: pod.box." in r.err
    r = podctl("ssh", "box", "-f", str(podctl.spec))
    assert r.code == 2 and "write pod.NAME" in r.err
