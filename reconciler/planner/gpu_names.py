"""GPU type names against the list RunPod offers: which are unknown, and a did-you-mean."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping

from reconciler.model import GpuOffer

# Words that say nothing about which GPU it is: "NVIDIA RTX 4090" is meant as the 4090
_NOISE = re.compile(r"nvidia|geforce|amd|radeon|instinct|[^a-z0-9]")
LONGEST = 80  # a GPU type name longer than this is shown cut, and matched on its start


def _key(name: str) -> str:
    return _NOISE.sub("", name.lower())


def known_types(offers: Iterable[Mapping[str, GpuOffer]]) -> dict[str, GpuOffer]:
    """Every GPU type RunPod listed, on any cloud, by id."""
    known: dict[str, GpuOffer] = {}
    for by_id in offers:
        for gpu_id, offer in by_id.items():
            known.setdefault(gpu_id, offer)
    return known


def suggestion(name: str, known: Mapping[str, GpuOffer]) -> str | None:
    """The GPU type id `name` most likely means (by id or display name), or None."""
    keys: dict[str, str] = {}
    for gpu_id in sorted(known):
        for alias in (gpu_id, known[gpu_id].display_name):
            keys.setdefault(_key(alias), gpu_id)
    wanted = _key(name[:LONGEST])
    if wanted in keys:
        return keys[wanted]
    close = difflib.get_close_matches(wanted, list(keys), n=1, cutoff=0.75)
    return keys[close[0]] if close else None
