"""from_env values against the sandbox: never printed in a plan, never refused by chance."""

from __future__ import annotations

import json

import pytest

from tests.e2e.conftest import SECRET, Podctl

PLAIN_LATER = """\
version: 1
stack: e2e
pods:
  box:
    image: img:1
    gpu: {type: [NVIDIA RTX A4000], count: 1}
    env:
      MODE: "a"
      TOKEN: "set-me-later"
"""


def test_a_key_once_filled_from_env_keeps_its_old_value_masked_in_every_rendering(
    podctl: Podctl,
) -> None:
    first = podctl("apply", "-y", "-f", str(podctl.spec))
    assert first.code == 0, first.err

    podctl.write(text=PLAIN_LATER)  # the key stays, its value is plain now
    text = podctl("plan", "-f", str(podctl.spec))
    assert text.code == 0, text.err
    assert '~ env.TOKEN: (sensitive) -> "set-me-later"' in text.out
    as_json = podctl("plan", "--format", "json", "-f", str(podctl.spec))
    assert as_json.code == 0, as_json.err
    (box,) = [c for c in json.loads(as_json.out)["changes"] if c["address"] == "pod.box"]
    (token,) = [f for f in box["fields"] if f["path"] == "env.TOKEN"]
    assert (token["before"], token["after"]) == ("(sensitive)", "set-me-later")
    markdown = podctl("plan", "--format", "markdown", "-f", str(podctl.spec))
    assert markdown.code == 0, markdown.err
    assert '~ env.TOKEN: (sensitive) -> "set-me-later"' in markdown.out.splitlines()
    saved = podctl.folder / "plan.json"
    out = podctl("plan", "-out", str(saved), "-f", str(podctl.spec))
    assert out.code == 0, out.err

    applied = podctl("apply", "-y", "-f", str(podctl.spec))
    assert applied.code == 0, applied.err
    assert podctl.recorded()["pods"]["box"]["secret_env"] == ["TOKEN"]  # names only, for good
    on_disk = {f.name: f.read_text(errors="replace") for f in podctl.folder.iterdir()}
    assert {"plan.json", "e2e.podctl.lock"} <= on_disk.keys()
    for shown in [*podctl.outputs, *on_disk.values()]:
        assert SECRET not in shown


SECURE_SECRET = """\
version: 1
stack: e2e
pods:
  box:
    image: img:1
    gpu: {type: [NVIDIA RTX A4000], count: 1}
    cloud: secure
    env:
      NET_MODE: {from_env: NET_MODE}
"""


def test_a_secret_equal_to_a_recorded_field_is_no_reason_to_refuse(
    podctl: Podctl, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NET_MODE", "secure")  # the same word as the recorded `cloud`
    podctl.write(text=SECURE_SECRET)
    first = podctl("apply", "-y", "-f", str(podctl.spec))
    assert first.code == 0, first.err
    (pod,) = podctl.pods()
    record = podctl.recorded()["pods"]["box"]
    assert (record["pod_id"], record["cloud"], record["secret_env"]) == (
        pod["id"],
        "secure",
        ["NET_MODE"],
    )
    podctl.operations.clear()
    again = podctl("apply", "-y", "-f", str(podctl.spec))
    assert again.code == 0, again.err
    assert "No changes" in again.out and podctl.mutations() == {}


CLASH = """\
version: 1
stack: e2e
pods:
  box:
    image: img:1
    gpu: {type: [NVIDIA RTX A4000], count: 1}
    env:
      TOKEN: {from_env: E2E_TOKEN}
      COPY: "tok-e2e-Zq9xVv"
"""


def test_a_secret_also_written_as_a_plain_env_value_is_refused_before_any_mutation(
    podctl: Podctl,
) -> None:
    podctl.write(text=CLASH)
    for command in ("plan", "apply"):
        result = podctl(command, *(["-y"] if command == "apply" else []), "-f", str(podctl.spec))
        assert result.code == 1
        assert result.err == (
            "Error: A secret is also written in the spec as a plain value, which plans would "
            "print:\n"
            "  pods.box.env.COPY holds the value of from_env E2E_TOKEN\n"
            "Use {from_env: NAME} there too (or another value); nothing was changed.\n"
        )
        assert result.out == ""
    assert podctl.mutations() == {} and podctl.pods() == []
    assert not podctl.lockfile.exists()
