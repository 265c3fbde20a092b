"""Records to forget: pods the spec no longer wants whose pod vanished outside podctl."""

from __future__ import annotations

from reconciler.model import ActualState, Address, DesiredState, Lockfile
from reconciler.planner.match import marked_pods, match_pod

FORGOTTEN = "{address}: forgotten (gone outside podctl)"


def forgotten(
    desired: DesiredState,
    actual: ActualState,
    recorded: Lockfile,
    *,
    destroy: bool = False,
    targets: frozenset[str] = frozenset(),
) -> tuple[str, ...]:
    """Names of recorded pods nothing will act on any more: apply drops their records.

    A record qualifies when the spec does not want its pod (removed, or `destroy`) and RunPod
    has no alive pod for it, neither by the recorded id nor by markers. Sorted by name.
    """
    marked = marked_pods(desired.stack, actual)
    names = []
    for name in sorted(recorded.pods):
        if name in desired.pods and not destroy:
            continue
        if targets and str(Address.pod(name)) not in targets:
            continue
        m = match_pod(name, actual, recorded, marked)
        if m.pod is None and not m.orphans:
            names.append(name)
    return tuple(names)
