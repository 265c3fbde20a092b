"""`podctl state rebuild`: a corrupt lockfile is refused with the hint, kept aside and rebuilt."""

from __future__ import annotations

import json

from tests.e2e.conftest import Podctl


def test_truncated_lockfile_is_refused_then_rebuilt_from_markers(podctl: Podctl) -> None:
    assert podctl("apply", "-y", "-f", str(podctl.spec)).code == 0
    (pod,) = podctl.pods()
    text = podctl.lockfile.read_text()
    podctl.lockfile.write_text(text[: len(text) // 2])  # truncated mid-write

    refused = podctl("plan", "-f", str(podctl.spec))
    assert refused.code == 1
    assert "is corrupt" in refused.err and "podctl state rebuild" in refused.err
    assert podctl.lockfile.read_text() == text[: len(text) // 2]  # untouched

    podctl.operations.clear()
    rebuilt = podctl("state", "rebuild", "-f", str(podctl.spec))
    assert rebuilt.code == 0, rebuilt.err
    assert podctl.mutations() == {}
    (aside,) = podctl.folder.glob("e2e.podctl.lock.corrupt-*")
    assert aside.read_text() == text[: len(text) // 2]  # kept, never deleted
    assert f"pod.box = {pod['id']}" in rebuilt.out and str(aside) in rebuilt.out
    record = podctl.recorded()["pods"]["box"]
    assert record["pod_id"] == pod["id"] and record["fingerprint"] == ""
    assert podctl.lockfile.stat().st_mode & 0o777 == 0o600

    plan = podctl("plan", "--detailed-exitcode", "-f", str(podctl.spec))
    assert plan.code == 0, plan.out + plan.err
    assert podctl.mutations() == {}


def test_a_readable_lockfile_needs_force_and_keeps_its_jobs(podctl: Podctl) -> None:
    assert podctl("apply", "-y", "-f", str(podctl.spec)).code == 0
    data = podctl.recorded()
    data["host_keys"] = {data["pods"]["box"]["pod_id"]: ["ssh-ed25519 AAAAkept"]}
    data["pods"]["ghost"] = {"pod_id": "gone123", "uid": "u", "fingerprint": "f"}
    podctl.lockfile.write_text(json.dumps(data))
    before = podctl.lockfile.read_text()

    refused = podctl("state", "rebuild", "-f", str(podctl.spec))
    assert refused.code == 1
    assert "is readable (2 pod(s) recorded" in refused.err and "--force" in refused.err
    assert podctl.lockfile.read_text() == before

    forced = podctl("state", "rebuild", "--force", "-f", str(podctl.spec), "--format", "json")
    assert forced.code == 0, forced.err
    answer = json.loads(forced.out)
    assert answer["moved_to"] is None and answer["kept_jobs_and_host_keys"] is True
    after = podctl.recorded()
    assert sorted(after["pods"]) == ["box"]  # the ghost had no pod
    assert after["host_keys"] == data["host_keys"]
    assert after["lineage"] == data["lineage"] and after["serial"] == data["serial"] + 1
    assert not list(podctl.folder.glob("*.corrupt-*"))


def test_rebuild_with_no_lockfile_adopts_the_marked_pods(podctl: Podctl) -> None:
    assert podctl("apply", "-y", "-f", str(podctl.spec)).code == 0
    (pod,) = podctl.pods()
    podctl.lockfile.unlink()
    rebuilt = podctl("state", "rebuild", "-f", str(podctl.spec))
    assert rebuilt.code == 0, rebuilt.err
    assert podctl.recorded()["pods"]["box"]["pod_id"] == pod["id"]
    assert not list(podctl.folder.glob("*.corrupt-*"))
