"""The CLI tells the truth about itself: no stray files, JSON when asked, no silent overrides."""

from __future__ import annotations

import json

import pytest

from tests.e2e.conftest import Podctl


def test_a_first_plan_leaves_no_file_behind(podctl: Podctl) -> None:
    r = podctl("plan", "-f", str(podctl.spec))
    assert r.code == 0, r.out + r.err
    assert sorted(p.name for p in podctl.folder.iterdir()) == ["podctl.yaml"]


def test_state_list_format_json_prints_json(podctl: Podctl) -> None:
    assert podctl("apply", "-y", "-f", str(podctl.spec)).code == 0
    r = podctl("state", "list", "--format", "json", "-f", str(podctl.spec))
    assert r.code == 0, r.out + r.err
    data = json.loads(r.out)
    (pod,) = data["pods"]
    assert pod["pod"] == "box" and pod["pod_id"] == podctl.pods()[0]["id"]
    assert data["intents"] == [] and data["lockfile"] == str(podctl.lockfile)


def test_sandbox_with_an_explicit_api_url_is_a_usage_error(podctl: Podctl) -> None:
    r = podctl("plan", "--api-url", "http://127.0.0.1:9", "-f", str(podctl.spec))
    assert r.code == 2
    assert "--sandbox and --api-url both name the API" in r.err
    assert r.out == ""


ABSENT = """\
version: 1
stack: e2e
pods:
  box:
    image: img:1
    gpu: {type: NVIDIA RTX A4000}
    ports: [22/tcp]
    state: STATE
jobs:
  train:
    pod: box
    run: echo trained
  report:
    pod: box
    needs: [train]
    run: echo reported
"""


def test_state_absent_on_a_pod_with_jobs_tears_it_down_and_runs_none(podctl: Podctl) -> None:
    podctl.write(text=ABSENT.replace("STATE", "running"))
    assert podctl("apply", "-y", "-f", str(podctl.spec)).code == 0
    assert len(podctl.pods()) == 1
    podctl.write(text=ABSENT.replace("STATE", "absent").replace("echo trained", "echo v2"))
    assert podctl("validate", "-f", str(podctl.spec)).code == 0
    r = podctl("plan", "-f", str(podctl.spec))
    assert r.code == 0, r.out + r.err
    assert "- terminate pod.box" in r.out and "run-job" not in r.out
    assert "Note: job.train: not run: pod.box is `state: absent`" in r.out
    assert "Note: job.report: not run: pod.box is `state: absent`" in r.out
    r = podctl("apply", "-y", "-f", str(podctl.spec))
    assert r.code == 0, r.out + r.err
    assert podctl.pods() == []
    assert podctl("plan", "--detailed-exitcode", "-f", str(podctl.spec)).code == 0


def test_destroy_of_a_stopped_pod_warns_that_its_volume_goes(podctl: Podctl) -> None:
    assert podctl("apply", "-y", "-f", str(podctl.spec)).code == 0
    podctl.write(state="stopped")
    assert podctl("apply", "-y", "-f", str(podctl.spec)).code == 0
    r = podctl("destroy", "-y", "-f", str(podctl.spec))
    assert r.code == 0, r.out + r.err
    block = r.out[r.out.index("- terminate pod.box") :]
    assert "! the pod is stopped, not gone: terminating it deletes its volume" in block


def test_validate_finds_the_spec_like_the_other_commands(
    podctl: Podctl, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(podctl.folder)  # ./podctl.yaml
    r = podctl("validate", sandbox=False)
    assert r.code == 0, r.out + r.err
    assert r.out == "Valid: stack 'e2e', 1 pod(s), 0 job(s) in 1 file(s).\n"


def test_f_is_the_spec_file_for_logs_too(podctl: Podctl) -> None:
    podctl.write(text=ABSENT.replace("STATE", "running"))
    assert podctl("apply", "-y", "-f", str(podctl.spec)).code == 0
    r = podctl("logs", "train", "-f", str(podctl.spec))
    assert r.code == 0, r.out + r.err
    assert r.out == "trained\n"
    r = podctl("logs", "train", "--follow", "-f", str(podctl.spec))  # it ended: returns
    assert r.code == 0 and r.out == "trained\n", r.out + r.err
