"""A pod's network volume on RunPod: it must exist, and the pod runs in its data center."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING

from reconciler.model import CloudType, DesiredState, GpuOffer
from reconciler.plans import Action, Placement, Plan
from reconciler.textsafe import shown_inline

if TYPE_CHECKING:
    from reconciler.workflow.context import ApiClient

PLACING = (Action.CREATE, Action.REPLACE)
Offers = Mapping[CloudType, Mapping[str, GpuOffer]]


async def check_volumes(
    client: ApiClient, desired: DesiredState, plan: Plan, offers: Offers | None = None
) -> Plan:
    """The plan with what the account's network volumes say about the pods it places.

    One list request, only when the plan creates or replaces a pod that names a network
    volume. The volume must be on the account; the pod is placed in its data center (the
    backend sends it with the create), so a `data_center` naming another is an error, as is
    community cloud (network volumes serve Secure Cloud pods only; runpod-rest-v2.md 7).

    Where the catalog says which data centers have a GPU type in stock (REST v2's
    `dataCenters`), the fallback chain keeps only the types stocked in the volume's data
    center: the others could only fail there.
    """
    names = {c.pod for c in plan.actionable if c.action in PLACING}
    specs = [s for n, s in sorted(desired.pods.items()) if n in names and s.network_volume]
    if not specs:
        return plan
    volumes = await client.network_volumes()
    errors: list[str] = []
    notes: list[str] = []
    chains: dict[str, tuple[Placement, ...]] = {}
    for spec in specs:
        wanted = spec.network_volume or ""
        field = f"pods.{spec.name}"
        volume = volumes.get(wanted)
        if volume is None:
            known = ", ".join(sorted(volumes)) or "none"
            errors.append(
                f"{spec.address}: RunPod knows no network volume '{shown_inline(wanted)[:60]}' "
                f"on this account ({field}.network_volume; the account has: {known})"
            )
        elif spec.cloud is CloudType.COMMUNITY:
            errors.append(
                f"{spec.address}: network volume {wanted} serves Secure Cloud pods only; set "
                f"{field}.cloud to secure (or all)"
            )
        elif volume.data_center and spec.data_center and spec.data_center != volume.data_center:
            errors.append(
                f"{spec.address}: {field}.data_center is {spec.data_center}, but its network "
                f"volume {wanted} is in {volume.data_center}: a pod runs in the data center of "
                f"its network volume; set {field}.data_center to {volume.data_center} or remove it"
            )
        elif volume.data_center and not spec.data_center:
            notes.append(
                f"{spec.address}: placed in {volume.data_center}, the data center of its network "
                f"volume {wanted}"
            )
        if volume is not None and volume.data_center and offers:
            change = next(
                c for c in plan.actionable if c.address == spec.address and c.action in PLACING
            )
            kept, dropped = _stocked(change.placements, offers, volume.data_center)
            if not kept and dropped:
                errors.append(
                    f"{spec.address}: no GPU type it may use is in stock in {volume.data_center}, "
                    f"the data center of its network volume {wanted} ({', '.join(dropped)})"
                )
            elif dropped:
                chains[spec.name] = kept
                notes += [
                    f"{spec.address}: {gpu} is skipped: not in stock in {volume.data_center}, "
                    f"the data center of its network volume {wanted}"
                    for gpu in dropped
                ]
    changes = tuple(
        replace(c, placements=chains[c.pod], cost_after=chains[c.pod][0].price_per_hr)
        if c.pod in chains and c.action in PLACING and c.address == f"pod.{c.pod}"
        else c
        for c in plan.changes
    )
    return replace(
        plan, changes=changes, errors=(*plan.errors, *errors), notes=(*plan.notes, *notes)
    )


def _stocked(
    chain: tuple[Placement, ...], offers: Offers, data_center: str
) -> tuple[tuple[Placement, ...], list[str]]:
    """(the placements whose GPU type is in stock there or not known, the others' names)."""
    kept: list[Placement] = []
    dropped: list[str] = []
    for placement in chain:
        offer = offers.get(placement.cloud, {}).get(placement.gpu_type_id)
        if offer is not None and offer.data_centers and data_center not in offer.data_centers:
            dropped.append(
                f"{offer.display_name or placement.gpu_type_id} ({placement.cloud.value})"
            )
        else:
            kept.append(placement)
    return tuple(kept), dropped
