"""Every command that offers `--format json` prints JSON with it (not text beside the option)."""

from __future__ import annotations

import json

from tests.e2e.conftest import Podctl


def _json(podctl: Podctl, *args: str) -> object:
    r = podctl(*args, "--format", "json", "-f", str(podctl.spec))
    assert r.code == 0, r.out + r.err
    return json.loads(r.out)


def test_state_show_rm_and_import_print_json(podctl: Podctl) -> None:
    assert podctl("apply", "-y", "-f", str(podctl.spec)).code == 0
    pod_id = podctl.recorded()["pods"]["box"]["pod_id"]
    shown = _json(podctl, "state", "show", "pod.box")
    assert isinstance(shown, dict)
    assert shown["address"] == "pod.box" and shown["pod_id"] == pod_id
    assert shown["uid"] and shown["created_at"], shown
    removed = _json(podctl, "state", "rm", "pod.box")
    assert removed == {"removed": {**shown}}, removed
    assert "box" not in podctl.recorded()["pods"]
    imported = _json(podctl, "import", "pod.box", pod_id)
    assert isinstance(imported, dict) and imported["imported"]["pod_id"] == pod_id, imported
    listed = _json(podctl, "state", "list")
    assert isinstance(listed, dict)
    assert listed["pods"] == [{"pod": "box", "pod_id": pod_id}], listed
