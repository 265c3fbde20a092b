"""Field-level diff of a desired pod against its actual pod (the one home of deepdiff)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from reconciler.model import (
    MARKER_CREATED,
    MARKER_POD,
    MARKER_STACK,
    MARKER_UID,
    ActualPod,
    CloudType,
    PodSpec,
    SecretRef,
)
from reconciler.plans import SENSITIVE, FieldChange

# env keys podctl sets itself: never part of the diff
IGNORED_ENV = frozenset({MARKER_STACK, MARKER_POD, MARKER_UID, MARKER_CREATED, "PUBLIC_KEY"})
# fields podEditJob can change in place (the container is reset)
UPDATE_FIELDS = ("image", "env", "ports", "disk.container_gb", "docker_args")
# fields RunPod cannot change on a pod: terminate, then create
REPLACE_FIELDS = (
    "gpu.type",
    "gpu.count",
    "cloud",
    "spot",
    "data_center",
    "disk.volume_gb",
    "disk.mount",
    "network_volume",
    "cpu.flavor",
    "cpu.vcpu",
)
View = dict[str, object]


def forces_replace(path: str) -> bool:
    return path in REPLACE_FIELDS


def actual_view(pod: ActualPod) -> View:
    """The compared fields of an actual pod, keyed by field path."""
    view: View = {
        "image": pod.image,
        "ports": sorted(pod.ports),
        "disk.container_gb": pod.container_disk_gb,
        "docker_args": pod.docker_args,
        "gpu.type": pod.gpu_type_id,
        "gpu.count": pod.gpu_count,
        "cloud": pod.cloud.value if pod.cloud is not None else None,
        "spot": pod.interruptible,
        "data_center": pod.data_center_id,
        "disk.volume_gb": pod.volume_gb,
        "disk.mount": pod.volume_mount,
        "network_volume": pod.network_volume_id,
    }
    if pod.cpu_flavor is not None:  # a CPU pod only: a GPU pod's view (and digest) stays as is
        view["cpu.flavor"] = pod.cpu_flavor
        view["cpu.vcpu"] = int(pod.vcpu_count) if pod.vcpu_count else None
    for key, value in sorted(pod.env.items()):
        if key not in IGNORED_ENV:
            view[f"env.{key}"] = value
    return view


def _machine_unknown(pod: ActualPod) -> bool:
    """The API names neither a GPU type nor a CPU flavor (a CPU pod seen over GraphQL)."""
    return pod.cpu_flavor is None and pod.gpu_type_id is None


def desired_view(spec: PodSpec, secrets: Mapping[str, str], pod: ActualPod) -> View:
    """The desired fields in the same shape; what the spec accepts takes the actual value.

    A GPU type in the fallback list, `cloud: all`, no `data_center`, and fields RunPod did not
    report (None) all accept what runs.
    """
    actual = actual_view(pod)

    def accept(path: str, wanted: object) -> object:
        return actual[path] if actual.get(path) is None else wanted

    cloud: object = spec.cloud.value
    if spec.cloud is CloudType.ALL or pod.cloud is None:
        cloud = actual["cloud"]
    view: View = {
        "image": spec.image,
        "ports": sorted(spec.ports),
        "disk.container_gb": accept("disk.container_gb", spec.container_disk_gb),
        "docker_args": spec.docker_args,
        "gpu.type": pod.gpu_type_id
        if pod.gpu_type_id in spec.gpu_types or pod.gpu_type_id is None
        else list(spec.gpu_types),
        # 0 is what a pod without its GPUs may report: not a different count
        "gpu.count": spec.gpu_count if pod.gpu_count else 0,
        "cloud": cloud,
        "spot": spec.spot_bid_per_gpu is not None,
        "data_center": actual["data_center"] if spec.data_center is None else spec.data_center,
        "disk.volume_gb": accept("disk.volume_gb", spec.volume_gb),
        "disk.mount": accept("disk.mount", spec.volume_mount),
        "network_volume": spec.network_volume,
    }
    if spec.is_cpu and not _machine_unknown(pod):
        view["cpu.flavor"] = spec.cpu_flavor
        view["cpu.vcpu"] = spec.vcpu
    for key, value in sorted(spec.env.items()):
        if key in IGNORED_ENV:
            continue
        view[f"env.{key}"] = (
            secrets.get(value.from_env, "") if isinstance(value, SecretRef) else value
        )
    return view


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


def create_fields(spec: PodSpec) -> tuple[FieldChange, ...]:
    """What a create sends, shown as fields going from nothing to the desired value."""
    values: list[tuple[str, object]] = [("image", spec.image)]
    if spec.is_cpu:
        values += [
            ("cpu.flavor", spec.cpu_flavor),
            ("cpu.vcpu", spec.vcpu),
            ("cloud", spec.cloud.value),
        ]
    else:
        values += [
            ("gpu.type", list(spec.gpu_types)),
            ("gpu.count", spec.gpu_count),
            ("cloud", spec.cloud.value),
            ("spot", spec.spot_bid_per_gpu is not None),
        ]
    if spec.spot_bid_per_gpu is not None:
        values.append(("spot.bid_per_gpu", spec.spot_bid_per_gpu))
    values.append(("disk.container_gb", spec.container_disk_gb))
    if not spec.is_cpu or spec.volume_gb or spec.network_volume:
        values += [("disk.volume_gb", spec.volume_gb), ("disk.mount", spec.volume_mount)]
    values.append(("ports", list(spec.ports)))
    for key, value in sorted(spec.env.items()):
        values.append((f"env.{key}", SENSITIVE if isinstance(value, SecretRef) else value))
    optional: list[tuple[str, object]] = [
        ("docker_args", spec.docker_args or None),
        ("registry", spec.registry),
        ("template", spec.template),
        ("data_center", spec.data_center),
        ("network_volume", spec.network_volume),
        ("max_lifetime", format_duration(spec.max_lifetime_s)),
    ]
    values += [(p, v) for p, v in optional if v is not None]
    return tuple(FieldChange(path=p, before=None, after=v) for p, v in values)


def format_duration(seconds: int | None) -> str | None:
    """`43200` as `12h`, `90` as `1m30s`."""
    if seconds is None:
        return None
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts) or "0s"
