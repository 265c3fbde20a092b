"""Field-level diff of a desired pod against its actual pod (the one home of deepdiff)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from reconciler.model import ActualPod, PodSpec, SecretRef
from reconciler.planner.fields import View, actual_view, desired_view, forces_replace
from reconciler.plans import SENSITIVE, FieldChange


def _changed_paths(before: View, after: View) -> list[str]:
    # deepdiff walks only the keys that differ at all: a plan over 1,000 pods stays fast
    keys = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    if not keys:
        return []
    from deepdiff import DeepDiff  # lazily: ~90 ms of imports (pydantic) a no-change plan skips

    diff = DeepDiff(
        {k: before.get(k) for k in keys if k in before},
        {k: after.get(k) for k in keys if k in after},
        verbose_level=0,
    )
    keys = {str(k) for k in diff.affected_root_keys}
    return sorted(keys)


def is_secret(spec: PodSpec, path: str) -> bool:
    """Whether the field is an env value the spec reads from_env."""
    return path.startswith("env.") and isinstance(spec.env.get(path[4:]), SecretRef)


def _mask(
    path: str,
    value: object,
    spec: PodSpec,
    secret_values: frozenset[str],
    filled: frozenset[str] = frozenset(),
) -> object:
    """The value as a plan may show it; `filled`: env keys podctl once filled from from_env."""
    if value is None or not path.startswith("env."):
        return value
    key = path.removeprefix("env.")
    if isinstance(spec.env.get(key), SecretRef) or key in filled:
        return SENSITIVE
    # a key the spec no longer sets may have held a secret the plan cannot know: never shown
    if key not in spec.env or value in secret_values:
        return SENSITIVE
    return value


def field_changes(
    spec: PodSpec,
    pod: ActualPod,
    secrets: Mapping[str, str],
    *,
    drift: bool,
    filled: Iterable[str] = (),
) -> tuple[FieldChange, ...]:
    """Every field where the actual pod differs from the spec, replace fields first.

    `filled`: the env keys the lockfile says podctl filled from from_env on this pod; their
    actual (before) values stay masked even once the spec gives the key a plain value.
    """
    before, after = actual_view(pod), desired_view(spec, secrets, pod)
    secret_values = frozenset(v for v in secrets.values() if v)
    once_secret = frozenset(filled)
    changes = [
        FieldChange(
            path=path,
            before=_mask(path, before.get(path), spec, secret_values, once_secret),
            after=_mask(path, after.get(path), spec, secret_values),
            drift=drift and not is_secret(spec, path),
            forces_replace=forces_replace(path),
        )
        for path in _changed_paths(before, after)
    ]
    return tuple(sorted(changes, key=lambda c: (not c.forces_replace, c.path)))
