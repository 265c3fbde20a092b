"""A pod's network volume: looked up, its data center used for placement, on both APIs."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Podctl

VOLUME_SPEC = """\
version: 1
stack: e2e
pods:
  box:
    image: img:1
    gpu: {{type: NVIDIA RTX A4000}}
    cloud: all
    network_volume: {volume}
    disk: {{mount: /data}}
{extra}"""


def _rest(podctl: Podctl, method: str, path: str, body: Any = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {podctl.sb.key}"}
    return httpx.request(method, podctl.sb.url + path, json=body, headers=headers, timeout=10)


def _volume(podctl: Podctl, data_center: str) -> str:
    body = {"name": "data", "size": 50, "dataCenter": data_center}
    answer = _rest(podctl, "POST", "/v2/network-volumes", body)
    assert answer.status_code == 201, answer.text
    volume_id: str = answer.json()["id"]
    return volume_id


@pytest.mark.both_apis
def test_a_pod_lands_in_its_network_volumes_data_center(podctl: Podctl) -> None:
    volume = _volume(podctl, "CA-MTL-1")  # not the sandbox's default data center
    podctl.write(text=VOLUME_SPEC.format(volume=volume, extra=""))
    plan = podctl("plan", "-f", str(podctl.spec))
    assert plan.code == 0, plan.out + plan.err
    assert f"placed in CA-MTL-1, the data center of its network volume {volume}" in plan.out
    assert "(community" not in plan.out  # volumes serve Secure Cloud pods only
    r = podctl("apply", "-y", "-f", str(podctl.spec))
    assert r.code == 0, r.out + r.err
    (pod,) = _rest(podctl, "GET", "/v2/pods").json()["pods"]
    assert pod["dataCenterId"] == "CA-MTL-1" and pod["cloud"] == "SECURE"
    assert pod["mounts"] == {"network": [{"volumeId": volume, "path": "/data"}]}
    again = podctl("plan", "--detailed-exitcode", "-f", str(podctl.spec))
    assert again.code == 0, again.out + again.err
    # the other API sees the same pod the same way
    other = "graphql" if podctl.api == "rest" else "rest"
    switched = podctl("--api", other, "plan", "--detailed-exitcode", "-f", str(podctl.spec))
    assert switched.code == 0, switched.out + switched.err
    assert podctl("destroy", "-y", "-f", str(podctl.spec)).code == 0


@pytest.mark.both_apis
def test_a_data_center_against_the_volumes_or_an_unknown_volume_is_a_plan_error(
    podctl: Podctl,
) -> None:
    volume = _volume(podctl, "CA-MTL-1")
    podctl.write(text=VOLUME_SPEC.format(volume=volume, extra="    data_center: EU-RO-1\n"))
    r = podctl("plan", "-f", str(podctl.spec))
    assert r.code == 1, r.out + r.err
    assert (
        f"pod.box: pods.box.data_center is EU-RO-1, but its network volume {volume} is in "
        "CA-MTL-1: a pod runs in the data center of its network volume; set "
        "pods.box.data_center to CA-MTL-1 or remove it"
    ) in r.out + r.err
    podctl.write(text=VOLUME_SPEC.format(volume="nosuchvol", extra=""))
    r = podctl("apply", "-y", "-f", str(podctl.spec))
    assert r.code == 1, r.out + r.err
    assert "RunPod knows no network volume 'nosuchvol' on this account" in r.out + r.err
    assert volume in r.out + r.err  # what the account has
    assert "Traceback" not in r.out + r.err
    assert _rest(podctl, "GET", "/v2/pods").json() == {"pods": []}


def test_the_sandbox_serves_network_volumes_as_runpod_does(podctl: Podctl) -> None:
    volume = _volume(podctl, "US-TX-3")
    assert _rest(podctl, "GET", f"/v2/network-volumes/{volume}").json() == {
        "id": volume,
        "name": "data",
        "size": 50,
        "dataCenter": "US-TX-3",
        "type": "STANDARD",
    }
    listed = podctl.sb.gql("{ myself { networkVolumes { id size dataCenterId } } }")
    assert listed["myself"]["networkVolumes"] == [
        {"id": volume, "size": 50, "dataCenterId": "US-TX-3"}
    ]
    # 7: dataCenterId is v1's name (422); sizes 10..4096, grow only; unknown data center 400
    for body, status in (
        ({"name": "v", "size": 50, "dataCenterId": "US-TX-3"}, 422),
        ({"name": "v", "size": 5, "dataCenter": "US-TX-3"}, 422),
        ({"name": "v", "size": 50, "dataCenter": "XX-NO-1"}, 400),
    ):
        assert _rest(podctl, "POST", "/v2/network-volumes", body).status_code == status, body
    shrink = _rest(podctl, "PATCH", f"/v2/network-volumes/{volume}", {"size": 20})
    assert shrink.status_code == 400
    assert _rest(podctl, "PATCH", f"/v2/network-volumes/{volume}", {}).status_code == 422
    grow = _rest(podctl, "PATCH", f"/v2/network-volumes/{volume}", {"size": 80})
    assert grow.json()["size"] == 80
    # a pod with the volume is placed in its data center, else refused
    mount = {"network": [{"volumeId": volume, "path": "/data"}]}
    pod: dict[str, Any] = {
        "name": "p",
        "image": "img:1",
        "gpu": {"id": "NVIDIA RTX A4000"},
        "mounts": mount,
    }
    for extra, words in (
        ({}, "must be placed there"),
        ({"dataCenterIds": ["EU-RO-1"]}, "is in data center US-TX-3"),
        ({"cloud": "COMMUNITY", "dataCenterIds": ["US-TX-3"]}, "Secure Cloud pods only"),
    ):
        refused = _rest(podctl, "POST", "/v2/pods", {**pod, **extra})
        assert refused.status_code == 400, (extra, refused.text)
        assert words in refused.json()["detail"], refused.text
    both = {**pod, "mounts": {**mount, "persistent": {"size": 20, "path": "/w"}}}
    assert _rest(podctl, "POST", "/v2/pods", both).status_code == 400
    placed = _rest(podctl, "POST", "/v2/pods", {**pod, "dataCenterIds": ["EU-RO-1", "US-TX-3"]})
    assert placed.status_code == 201, placed.text
    assert placed.json()["dataCenterId"] == "US-TX-3"
    # [INF] a volume in use is not deleted
    assert _rest(podctl, "DELETE", f"/v2/network-volumes/{volume}").status_code == 400
    assert _rest(podctl, "DELETE", f"/v2/pods/{placed.json()['id']}").status_code == 204
    assert _rest(podctl, "DELETE", f"/v2/network-volumes/{volume}").status_code == 204
    assert _rest(podctl, "GET", f"/v2/network-volumes/{volume}").status_code == 404
