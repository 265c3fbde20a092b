"""The GPU fallback chain of a pod, its prices, and the spot bid checks."""

from __future__ import annotations

from collections.abc import Mapping

from reconciler.model import ActualPod, CloudType, GpuOffer, PodSpec
from reconciler.plans import Placement

Offers = Mapping[CloudType, Mapping[str, GpuOffer]]

# [ASSUMPTION] RunPod bills a stopped pod's volume disk at $0.20 per GB per month (its public
# pricing page; the API reference has no figure); a month is taken as 730 hours.
STOPPED_VOLUME_PER_GB_HR = 0.20 / 730


def _clouds(cloud: CloudType) -> tuple[CloudType, ...]:
    if cloud is CloudType.ALL:
        return (CloudType.SECURE, CloudType.COMMUNITY)
    return (cloud,)


def _offer(offers: Offers, cloud: CloudType, gpu_type_id: str) -> GpuOffer | None:
    return offers.get(cloud, {}).get(gpu_type_id)


def _price(spec: PodSpec, offer: GpuOffer | None) -> float | None:
    if spec.spot_bid_per_gpu is not None:
        return round(spec.spot_bid_per_gpu * spec.gpu_count, 4)
    if offer is None or offer.on_demand_price is None:
        return None
    return round(offer.on_demand_price * spec.gpu_count, 4)


def placements(spec: PodSpec, offers: Offers) -> tuple[Placement, ...]:
    """Each GPU type in order on the first cloud, then (cloud: all) each on COMMUNITY."""
    return tuple(
        Placement(gpu_type_id=t, cloud=c, price_per_hr=_price(spec, _offer(offers, c, t)))
        for c in _clouds(spec.cloud)
        for t in spec.gpu_types
    )


def running_price(spec: PodSpec, pod: ActualPod, offers: Offers) -> float | None:
    """$/h of this pod once resumed: its own GPU at the spec's count (spot: the bid)."""
    if spec.spot_bid_per_gpu is not None:
        return round(spec.spot_bid_per_gpu * spec.gpu_count, 4)
    if pod.gpu_type_id is not None and pod.cloud is not None:
        price = _price(spec, _offer(offers, pod.cloud, pod.gpu_type_id))
        if price is not None:
            return price
    return pod.cost_per_hr


def _name(offer: GpuOffer | None, gpu_type_id: str) -> str:
    return offer.display_name if offer is not None and offer.display_name else gpu_type_id


def spot_findings(
    spec: PodSpec, offers: Offers, on: tuple[str, CloudType] | None = None
) -> tuple[list[str], list[str]]:
    """(errors, warnings) about a spot bid against each placement's minimum and on-demand price.

    `on` limits the check to one GPU type and cloud (a resume stays on its machine).
    """
    errors: list[str] = []
    warnings: list[str] = []
    bid = spec.spot_bid_per_gpu
    if bid is None:
        return errors, warnings
    pairs = (
        [on] if on is not None else [(g, c) for c in _clouds(spec.cloud) for g in spec.gpu_types]
    )
    for gpu, cloud in pairs:
        offer = _offer(offers, cloud, gpu)
        if offer is None:
            continue
        where = f"{_name(offer, gpu)} ({cloud.value})"
        if offer.minimum_bid_price is not None and bid < offer.minimum_bid_price:
            errors.append(
                f"{spec.address}: spot bid ${bid:.2f}/GPU/h is below the minimum bid "
                f"${offer.minimum_bid_price:.2f}/GPU/h for {where}; raise "
                f"pods.{spec.name}.spot.bid_per_gpu or remove that GPU type"
            )
        elif offer.on_demand_price is not None and bid > offer.on_demand_price:
            warnings.append(
                f"spot bid ${bid:.2f}/GPU/h is above the on-demand price "
                f"${offer.on_demand_price:.2f}/GPU/h for {where}"
            )
    return errors, warnings


def stopped_storage_cost(volume_gb: int | None) -> float:
    return round((volume_gb or 0) * STOPPED_VOLUME_PER_GB_HR, 6)
