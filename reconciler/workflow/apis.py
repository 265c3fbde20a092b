"""What the chosen RunPod API cannot do for a spec: plan errors (spot on REST v2) and warnings."""

from __future__ import annotations

from collections.abc import Iterable

from reconciler.model import DesiredState
from reconciler.podops import REST_MIN_VOLUME_GB as MIN_VOLUME_GB


def api_findings(
    desired: DesiredState, api: str, *, destroy: bool = False, targets: Iterable[str] = ()
) -> tuple[list[str], list[str]]:
    """(errors, warnings) for the pods this plan may place over `api` ("graphql" or "rest").

    REST v2 has no spot pods: a spot pod there is an error (nothing is applied), as is a volume
    below its 10 GB floor. It sizes vCPU
    and RAM from the GPU type and its catalog lists neither, so min_vcpu / min_memory_gb cannot
    be asked for or filtered on: a warning. A destroy places nothing and checks nothing.
    """
    errors: list[str] = []
    warnings: list[str] = []
    if api != "rest" or destroy:
        return errors, warnings
    wanted = set(targets)
    for name, spec in sorted(desired.pods.items()):
        if wanted and spec.address not in wanted:
            continue
        if spec.spot_bid_per_gpu is not None:
            errors.append(
                f"{spec.address}: spot pods need --api graphql while RunPod offers them: RunPod's "
                f"REST API v2 has no spot (interruptible) pods; run with --api graphql, or "
                f"remove pods.{name}.spot"
            )
        if 0 < spec.volume_gb < MIN_VOLUME_GB and spec.network_volume is None:
            errors.append(
                f"{spec.address}: disk.volume_gb {spec.volume_gb} is below the {MIN_VOLUME_GB} GB "
                f"RunPod's REST API v2 makes; set pods.{name}.disk.volume_gb to 0 or at least "
                f"{MIN_VOLUME_GB}"
            )
        asked = [
            key
            for key, value in (("min_vcpu", spec.min_vcpu), ("min_memory_gb", spec.min_memory_gb))
            if value is not None
        ]
        if asked:
            warnings.append(
                f"{spec.address}: {' and '.join(asked)} cannot be asked for over --api rest "
                "(REST v2 sizes vCPU and RAM from the GPU type, and its catalog lists neither): "
                "the pod gets what its GPU type comes with"
            )
    return errors, warnings
