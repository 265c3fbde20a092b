"""The CLI tells the truth about itself: no stray files, JSON when asked, no silent overrides."""

from __future__ import annotations

import json

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
