"""check_volumes: a pod's network volume must exist; its data center places the pod."""

from __future__ import annotations

import asyncio
from typing import Any

from reconciler.model import CloudType, DesiredState, GpuOffer, NetworkVolume, PodSpec
from reconciler.plans import Action, Change, Placement, Plan
from reconciler.workflow.volumes import check_volumes

A4000, A5000 = "NVIDIA RTX A4000", "NVIDIA RTX A5000"


class Client:
    def __init__(self, *volumes: NetworkVolume) -> None:
        self.volumes = {v.volume_id: v for v in volumes}
        self.calls = 0

    async def network_volumes(self) -> dict[str, NetworkVolume]:
        self.calls += 1
        return self.volumes


def _plan(action: Action = Action.CREATE) -> Plan:
    chain = (Placement(A4000, CloudType.SECURE, 0.32), Placement(A5000, CloudType.SECURE, 0.36))
    change = Change(address="pod.box", action=action, reason="new", pod="box", placements=chain)
    return Plan(stack="s", changes=(change,))


def _desired(**kw: Any) -> DesiredState:
    spec = PodSpec(name="box", image="i", gpu_types=(A4000, A5000), network_volume="vol1", **kw)
    return DesiredState(stack="s", pods={"box": spec}, jobs={})


def check(client: Client, desired: DesiredState, plan: Plan, offers: Any = None) -> Plan:
    return asyncio.run(check_volumes(client, desired, plan, offers))  # type: ignore[arg-type]


def test_the_volume_places_the_pod_and_a_type_out_of_stock_there_is_skipped() -> None:
    client = Client(NetworkVolume("vol1", data_center="CA-MTL-1"))
    offers = {
        CloudType.SECURE: {
            A4000: GpuOffer(A4000, "RTX A4000", data_centers=("EU-RO-1",)),
            A5000: GpuOffer(A5000, "RTX A5000", data_centers=("CA-MTL-1", "EU-RO-1")),
        }
    }
    checked = check(client, _desired(), _plan(), offers)
    assert checked.errors == ()
    (change,) = checked.changes
    assert [p.gpu_type_id for p in change.placements] == [A5000]
    assert change.cost_after == 0.36
    assert checked.notes == (
        "pod.box: placed in CA-MTL-1, the data center of its network volume vol1",
        "pod.box: RTX A4000 (secure) is skipped: not in stock in CA-MTL-1, the data center of "
        "its network volume vol1",
    )
    assert client.calls == 1


def test_no_type_in_stock_there_an_unknown_volume_or_another_data_center_is_an_error() -> None:
    offers = {CloudType.SECURE: {A4000: GpuOffer(A4000, "RTX A4000", data_centers=("EU-RO-1",))}}
    offers[CloudType.SECURE][A5000] = GpuOffer(A5000, "RTX A5000", data_centers=("EU-RO-1",))
    volume = NetworkVolume("vol1", data_center="CA-MTL-1")
    (none_left,) = check(Client(volume), _desired(), _plan(), offers).errors
    assert "no GPU type it may use is in stock in CA-MTL-1" in none_left
    (unknown,) = check(Client(), _desired(), _plan()).errors
    assert unknown.startswith("pod.box: RunPod knows no network volume 'vol1' on this account")
    (elsewhere,) = check(Client(volume), _desired(data_center="EU-RO-1"), _plan()).errors
    assert (
        "pods.box.data_center is EU-RO-1, but its network volume vol1 is in CA-MTL-1" in elsewhere
    )


def test_a_plan_that_places_nothing_reads_no_volumes() -> None:
    client = Client()
    plan = _plan(Action.NOOP)
    assert check(client, _desired(), plan) == plan and client.calls == 0
