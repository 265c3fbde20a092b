"""A pod's network volume on RunPod: it must exist, and the pod runs in its data center."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from reconciler.model import CloudType, DesiredState
from reconciler.plans import Action, Plan
from reconciler.render.escape import shown_inline

if TYPE_CHECKING:
    from reconciler.workflow.context import ApiClient

PLACING = (Action.CREATE, Action.REPLACE)


async def check_volumes(client: ApiClient, desired: DesiredState, plan: Plan) -> Plan:
    """The plan with what the account's network volumes say about the pods it places.

    One list request, only when the plan creates or replaces a pod that names a network
    volume. The volume must be on the account; the pod is placed in its data center (the
    backend sends it with the create), so a `data_center` naming another is an error, as is
    community cloud (network volumes serve Secure Cloud pods only; runpod-rest-v2.md 7).
    """
    names = {c.pod for c in plan.actionable if c.action in PLACING}
    specs = [s for n, s in sorted(desired.pods.items()) if n in names and s.network_volume]
    if not specs:
        return plan
    volumes = await client.network_volumes()
    errors: list[str] = []
    notes: list[str] = []
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
    return replace(plan, errors=(*plan.errors, *errors), notes=(*plan.notes, *notes))
