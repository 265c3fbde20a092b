"""The GPU fallback chain of a pod, its prices, and its checks: GPU type names, spot bids.

A CPU pod has a chain of one: its flavor on secure cloud, priced per vCPU.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from reconciler.model import ActualPod, CloudType, GpuOffer, PodSpec
from reconciler.planner.gpu_names import LONGEST, known_types, suggestion
from reconciler.plans import Placement
from reconciler.textsafe import shown, shown_cut

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
    units = (spec.vcpu or 0) if spec.is_cpu else spec.gpu_count  # a CPU flavor's price is per vCPU
    return round(offer.on_demand_price * units, 4)


def _below_bid(spec: PodSpec, offer: GpuOffer | None) -> bool:
    """A spot candidate whose minimum bid is above the spec's bid: RunPod refuses it."""
    bid = spec.spot_bid_per_gpu
    return (
        bid is not None
        and offer is not None
        and offer.minimum_bid_price is not None
        and bid < offer.minimum_bid_price
    )


def _too_many(spec: PodSpec, offer: GpuOffer | None) -> bool:
    """More GPUs than RunPod puts on one pod of this type in this cloud."""
    return (
        offer is not None
        and offer.max_gpu_count is not None
        and (spec.gpu_count > offer.max_gpu_count)
    )


def _candidates(spec: PodSpec) -> tuple[tuple[str, CloudType], ...]:
    """Each GPU type in order on the first cloud, then (cloud: all) each on COMMUNITY."""
    if spec.cpu_flavor is not None:
        return ((spec.cpu_flavor, CloudType.SECURE),)
    if spec.network_volume is not None and spec.cloud is CloudType.ALL:
        # network volumes serve Secure Cloud pods only (runpod-rest-v2.md 7)
        return tuple((t, CloudType.SECURE) for t in spec.gpu_types)
    return tuple((t, c) for c in _clouds(spec.cloud) for t in spec.gpu_types)


def placements(spec: PodSpec, offers: Offers) -> tuple[Placement, ...]:
    """The fallback chain, without the spot candidates whose minimum bid is above the bid.

    When every candidate is below its minimum the whole chain is kept: the plan has an error
    (`placement_findings`) and is never applied.
    """
    chain = [
        (Placement(gpu_type_id=t, cloud=c, price_per_hr=_price(spec, offer)), offer)
        for t, c in _candidates(spec)
        for offer in [_offer(offers, c, t)]
    ]
    kept = tuple(
        p for p, offer in chain if not _below_bid(spec, offer) and not _too_many(spec, offer)
    )
    return kept or tuple(p for p, _ in chain)


def running_price(spec: PodSpec, pod: ActualPod, offers: Offers) -> float | None:
    """$/h of this pod once resumed: its own GPU at the spec's count (spot: the bid)."""
    if spec.spot_bid_per_gpu is not None:
        return round(spec.spot_bid_per_gpu * spec.gpu_count, 4)
    if spec.cpu_flavor is not None:
        price = _price(spec, _offer(offers, CloudType.SECURE, pod.cpu_flavor or spec.cpu_flavor))
        if price is not None:
            return price
    elif pod.gpu_type_id is not None and pod.cloud is not None:
        price = _price(spec, _offer(offers, pod.cloud, pod.gpu_type_id))
        if price is not None:
            return price
    return pod.cost_per_hr


def _name(offer: GpuOffer | None, gpu_type_id: str) -> str:
    return offer.display_name if offer is not None and offer.display_name else gpu_type_id


@dataclass
class Findings:
    """What the plan says about a pod's placement: errors, warnings and notes."""

    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _usd(value: float) -> str:
    """$0.35, $0.165: two decimals, three when the third is not zero."""
    text = f"{value:.3f}"
    return "$" + (text[:-1] if text.endswith("0") else text)


def _unknown(spec: PodSpec, offers: Offers) -> list[str]:
    if spec.cpu_flavor is not None:
        return _unknown_flavor(spec, offers)
    known = {k: o for k, o in known_types(offers.values()).items() if o.vcpu_range is None}
    errors = []
    for gpu in dict.fromkeys(spec.gpu_types):
        if gpu in known:
            continue
        guess = suggestion(gpu, known)
        hint = f"; did you mean '{guess}'? " if guess else " "
        errors.append(
            f"{spec.address}: unknown GPU type '{shown_cut(gpu, LONGEST)}' "
            f"in pods.{spec.name}.gpu.type"
            f"{hint}(`podctl gpus` lists RunPod's GPU types)"
        )
    return errors


def _unknown_flavor(spec: PodSpec, offers: Offers) -> list[str]:
    """A CPU flavor RunPod does not list, or a vCPU count outside its range (only when the
    CPU catalog was read: over GraphQL it is not)."""
    flavors = {k: o for k, o in offers.get(CloudType.SECURE, {}).items() if o.vcpu_range}
    flavor, vcpu, field_ = spec.cpu_flavor or "", spec.vcpu or 0, f"pods.{spec.name}.cpu"
    if not flavors:
        return []
    offer = flavors.get(flavor)
    if offer is None:
        listed = ", ".join(sorted(flavors))
        return [
            f"{spec.address}: unknown CPU flavor '{shown(flavor)}' in {field_}.flavor; "
            f"RunPod lists {listed}"
        ]
    low, high = offer.vcpu_range or (0, 0)
    if not low <= vcpu <= high:
        return [
            f"{spec.address}: {field_}.vcpu is {vcpu}; the flavor {flavor} comes with {low} to "
            f"{high} vCPUs"
        ]
    return []


def placement_findings(
    spec: PodSpec, offers: Offers, on: tuple[str, CloudType] | None = None
) -> Findings:
    """Check a pod that is placed now against RunPod's GPU list and minimum spot bids.

    `on` is where a resumed pod stays (its machine): only its bid is checked. Otherwise each
    GPU type must be one RunPod lists, and a spot candidate whose minimum bid is above the bid
    is skipped with a note (an error when that leaves none). Empty `offers` (the catalogue
    was not read) checks nothing.
    """
    found = Findings()
    if not any(offers.values()):
        return found
    bid = spec.spot_bid_per_gpu
    if on is None:
        found.errors += _unknown(spec, offers)
        if found.errors:
            return found
    pairs = [on] if on is not None else list(_candidates(spec))
    if on is None:
        _count_findings(spec, offers, pairs, found)
    below: list[tuple[str, float]] = []  # (where, its minimum bid)
    for gpu, cloud in pairs:
        offer = _offer(offers, cloud, gpu)
        if bid is None or offer is None:
            continue
        where = f"{_name(offer, gpu)} ({cloud.value})"
        minimum = offer.minimum_bid_price
        if minimum is not None and bid < minimum:
            below.append((where, minimum))
        elif offer.on_demand_price is not None and bid > offer.on_demand_price:
            found.warnings.append(
                f"spot bid {_usd(bid)}/GPU/h is above the on-demand price "
                f"{_usd(offer.on_demand_price)}/GPU/h for {where}"
            )
    if bid is None or not below:
        return found
    field_ = f"pods.{spec.name}.spot.bid_per_gpu"
    if on is not None:
        ((where, minimum),) = below
        found.errors.append(
            f"{spec.address}: spot bid {_usd(bid)}/GPU/h is below the minimum bid "
            f"{_usd(minimum)}/GPU/h for {where}, where the stopped pod resumes; raise {field_}"
        )
    elif len(below) < len(pairs):
        found.notes += [
            f"{spec.address}: {where} is skipped: its minimum spot bid "
            f"{_usd(minimum)}/GPU/h is above spot.bid_per_gpu {_usd(bid)}"
            for where, minimum in below
        ]
    else:
        lowest = min(minimum for _, minimum in below)
        each = ", ".join(f"{where} {_usd(minimum)}" for where, minimum in below)
        found.errors.append(
            f"{spec.address}: spot bid {_usd(bid)}/GPU/h is below the minimum bid of every "
            f"GPU type it may use: {each}; raise {field_} to at least {_usd(lowest)} or add "
            f"GPU types to pods.{spec.name}.gpu.type"
        )
    return found


def _count_findings(
    spec: PodSpec, offers: Offers, pairs: list[tuple[str, CloudType]], found: Findings
) -> None:
    """Candidates whose cloud takes fewer GPUs per pod than the spec asks: skipped, or an error
    when none is left."""
    over = [
        (f"{_name(offer, gpu)} ({cloud.value})", offer.max_gpu_count)
        for gpu, cloud in pairs
        for offer in [_offer(offers, cloud, gpu)]
        if offer is not None and offer.max_gpu_count is not None and _too_many(spec, offer)
    ]
    field_ = f"pods.{spec.name}.gpu.count"
    if over and len(over) < len(pairs):
        found.notes += [
            f"{spec.address}: {where} is skipped: RunPod puts at most {most} of them on one pod "
            f"there, and {field_} is {spec.gpu_count}"
            for where, most in over
        ]
    elif over:
        each = ", ".join(f"{where} at most {most}" for where, most in over)
        found.errors.append(
            f"{spec.address}: {field_} is {spec.gpu_count}, more than RunPod puts on one pod of "
            f"every GPU type and cloud it may use: {each}; lower {field_} or add GPU types"
        )


def stopped_storage_cost(volume_gb: int | None) -> float:
    return round((volume_gb or 0) * STOPPED_VOLUME_PER_GB_HR, 6)
