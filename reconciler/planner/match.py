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


def marked_pods(stack: str, actual: ActualState) -> dict[str, tuple[ActualPod, ...]]:
    """Alive pods of the stack by the pod name their markers give, each ordered by pod id.

    Built once per plan: looking pods up per name would be quadratic in the account's pods.
    """
    index: dict[str, list[ActualPod]] = {}
    for pod in actual.of_stack(stack):
        if _alive(pod) and pod.markers is not None:
            index.setdefault(pod.markers.pod, []).append(pod)
    return {name: tuple(pods) for name, pods in index.items()}


def match_pod(
    name: str,
    actual: ActualState,
    recorded: Lockfile,
    marked_by_name: dict[str, tuple[ActualPod, ...]],
) -> Match:
    """Find the actual pod for one pod name of the stack."""
    marked = marked_by_name.get(name, ())
    record = recorded.pods.get(name)
    by_id = _alive(actual.get(record.pod_id)) if record is not None else None
    if by_id is not None and by_id.markers is not None and by_id.markers.pod != name:
        by_id = None  # its markers say it is another pod: the markers win over a stale record
    if by_id is not None:
        orphans = tuple(p for p in marked if p.pod_id != by_id.pod_id)
        return Match(name=name, pod=by_id, orphans=orphans)
    if marked:
        chosen = _preferred(marked, recorded, name)
        orphans = tuple(p for p in marked if p.pod_id != chosen.pod_id)
        return Match(name=name, pod=chosen, adopted=True, orphans=orphans)
    return Match(name=name, pod=None, deleted_outside=record is not None)


def stack_pod_names(
    recorded: Lockfile, marked_by_name: dict[str, tuple[ActualPod, ...]]
) -> frozenset[str]:
    """Every pod name the stack has: recorded, or named by alive pods' markers."""
    return frozenset(recorded.pods) | frozenset(marked_by_name)
