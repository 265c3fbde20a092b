"""Which actual pod is each desired pod: recorded id, else markers (adopt); the rest are orphans."""

from __future__ import annotations

from dataclasses import dataclass

from reconciler.model import ActualPod, ActualState, Lockfile, PodStatus

GONE = frozenset({PodStatus.TERMINATED, PodStatus.DEAD})


@dataclass(frozen=True)
class Match:
    """One pod name of the stack: its actual pod (if any), how it was found, and the extras."""

    name: str
    pod: ActualPod | None  # None when gone (absent, TERMINATED or DEAD)
    adopted: bool = False  # found by markers, not by the recorded id
    deleted_outside: bool = False  # recorded, but RunPod no longer has it
    orphans: tuple[ActualPod, ...] = ()  # further pods with this stack's markers for this name


def _alive(pod: ActualPod | None) -> ActualPod | None:
    return pod if pod is not None and pod.desired_status not in GONE else None


def _preferred(candidates: tuple[ActualPod, ...], recorded: Lockfile, name: str) -> ActualPod:
    """The recorded uid first, then the newest create intent for this name, then the lowest id."""
    record = recorded.pods.get(name)
    if record is not None:
        for pod in candidates:
            if pod.markers is not None and pod.markers.uid == record.uid:
                return pod
    intents = sorted(
        (i for i in recorded.intents if i.pod == name), key=lambda i: i.since, reverse=True
    )
    for intent in intents:
        for pod in candidates:
            if pod.markers is not None and pod.markers.uid == intent.uid:
                return pod
    return candidates[0]


def match_pod(name: str, stack: str, actual: ActualState, recorded: Lockfile) -> Match:
    """Find the actual pod for one pod name of the stack."""
    marked = tuple(p for p in actual.find_by_markers(stack, name) if _alive(p))
    record = recorded.pods.get(name)
    by_id = _alive(actual.get(record.pod_id)) if record is not None else None
    if by_id is not None:
        orphans = tuple(p for p in marked if p.pod_id != by_id.pod_id)
        return Match(name=name, pod=by_id, orphans=orphans)
    if marked:
        chosen = _preferred(marked, recorded, name)
        orphans = tuple(p for p in marked if p.pod_id != chosen.pod_id)
        return Match(name=name, pod=chosen, adopted=True, orphans=orphans)
    return Match(name=name, pod=None, deleted_outside=record is not None)


def stack_pod_names(stack: str, actual: ActualState, recorded: Lockfile) -> frozenset[str]:
    """Every pod name the stack has: recorded, or named by alive pods' markers."""
    names = set(recorded.pods)
    for pod in actual.of_stack(stack):
        if _alive(pod) and pod.markers is not None:
            names.add(pod.markers.pod)
    return frozenset(names)
