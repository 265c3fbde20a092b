"""A job sees RunPod's own env on its pod: its id and its pod-scoped API key."""

from __future__ import annotations

import shutil
import sys

import pytest

from tests.e2e.conftest import Podctl

SPEC = """\
version: 1
stack: e2e
pods:
  box:
    image: img:1
    gpu: {{type: NVIDIA RTX A4000}}
    ports: [22/tcp]
jobs:
  whoami:
    pod: box
    run: echo "$RUNPOD_POD_ID ${{#RUNPOD_API_KEY}}" > {out}
"""


@pytest.fixture(autouse=True)
def _needs_ssh() -> None:
    if shutil.which("ssh") is None and sys.platform != "linux":
        pytest.skip("needs a POSIX host")


def test_a_job_reads_its_pod_id_and_has_a_pod_key(podctl: Podctl) -> None:
    out = podctl.folder / "whoami.txt"
    podctl.write(text=SPEC.format(out=out))
    r = podctl("apply", "-y", "-f", str(podctl.spec))
    assert r.code == 0, r.out + r.err
    pod_id = podctl.recorded()["pods"]["box"]["pod_id"]
    seen_id, key_length = out.read_text().split()
    assert seen_id == pod_id
    assert int(key_length) > 20
