"""`registry:` (a private image's registry credential) and `template:` reach RunPod on both APIs."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import Podctl

SPEC = """\
version: 1
stack: e2e
pods:
  box:
    image: ghcr.io/acme/private:1
    registry: cred-acme-1
    gpu: {type: NVIDIA RTX A4000}
    ports: [8888/http]
"""


@pytest.mark.both_apis
def test_the_registry_credential_is_sent_and_shown_in_the_plan(podctl: Podctl) -> None:
    podctl.write(text=SPEC)
    plan = podctl("plan", "-f", str(podctl.spec))
    assert plan.code == 0, plan.out + plan.err
    assert '    + registry: "cred-acme-1"\n' in plan.out, plan.out
    applied = podctl("apply", "-y", "-f", str(podctl.spec))
    assert applied.code == 0, applied.out + applied.err
    (pod,) = podctl.pods()
    seen = podctl.sb.gql(
        "query($id: String!) { pod(input: {podId: $id}) { imageName containerRegistryAuthId } }",
        {"id": pod["id"]},
    )["pod"]
    assert seen == {"imageName": "ghcr.io/acme/private:1", "containerRegistryAuthId": "cred-acme-1"}
    again = podctl("plan", "--detailed-exitcode", "-f", str(podctl.spec))
    assert again.code == 0 and "No changes" in again.out, again.out + again.err


def test_an_empty_registry_is_refused_by_validate(podctl: Podctl) -> None:
    podctl.write(text=SPEC.replace("cred-acme-1", '""'))
    r = podctl("validate", "-f", str(podctl.spec), sandbox=False)
    assert r.code == 1, r.out + r.err
    assert "podctl.yaml:6:15: pods.box.registry: error: must not be empty" in r.out + r.err


@pytest.mark.both_apis
def test_a_template_id_is_sent_and_shown_in_the_plan(podctl: Podctl) -> None:
    podctl.write(text=SPEC.replace("    registry: cred-acme-1\n", "    template: tpl-abc123\n"))
    plan = podctl("plan", "-f", str(podctl.spec))
    assert plan.code == 0, plan.out + plan.err
    assert '    + template: "tpl-abc123"\n' in plan.out, plan.out
    applied = podctl("apply", "-y", "-f", str(podctl.spec))
    assert applied.code == 0, applied.out + applied.err
    (pod,) = podctl.pods()
    seen = podctl.sb.gql(
        "query($id: String!) { pod(input: {podId: $id}) { imageName templateId } }",
        {"id": pod["id"]},
    )["pod"]
    assert seen == {"imageName": "ghcr.io/acme/private:1", "templateId": "tpl-abc123"}
