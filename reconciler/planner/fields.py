"""FIELDS: every pod field once (spec value, actual value, in place or replace, fingerprint).

The desired view, the actual view, a create plan's fields, the create and edit inputs and the
pod fingerprint are all read off this table: a new pod field is one row here (plus the schema,
the spec builder, the model and each backend's mapping).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

from reconciler.model import (
    MARKER_CREATED,
    MARKER_POD,
    MARKER_STACK,
    MARKER_UID,
    ActualPod,
    CloudType,
    EnvValue,
    PodSpec,
    SecretRef,
)
from reconciler.plans import SENSITIVE, FieldChange
from reconciler.podops import PodEdit

# env keys podctl sets itself: never part of the diff
IGNORED_ENV = frozenset({MARKER_STACK, MARKER_POD, MARKER_UID, MARKER_CREATED, "PUBLIC_KEY"})
View = dict[str, object]


def _same(value: Any) -> object:
    return value


def _never(_spec: PodSpec, _actual: object) -> bool:
    return False


def _every_spec(_spec: PodSpec) -> bool:
    return True


def _every_pod(_pod: ActualPod) -> bool:
    return True


def _gpu_pod(spec: PodSpec) -> bool:
    return not spec.is_cpu


def _cpu_pod(spec: PodSpec) -> bool:
    return spec.is_cpu


def _has_volume(spec: PodSpec) -> bool:
    # a CPU pod without a volume shows none (REST v2 CPU pods take no `mounts.persistent`)
    return not spec.is_cpu or bool(spec.volume_gb) or spec.network_volume is not None


def _reports_cpu(pod: ActualPod) -> bool:
    # a CPU pod only: a GPU pod's actual view (and its digest) stays as it was
    return pod.cpu_flavor is not None


def _vcpu_of(pod: ActualPod) -> object:
    return int(pod.vcpu_count) if pod.vcpu_count else None


def _unreported(_spec: PodSpec, actual: object) -> bool:
    """RunPod did not report the field (None): what runs is accepted."""
    return actual is None


def env_by_name(env: Mapping[str, EnvValue]) -> dict[str, object]:
    """Env with a secret shown by its variable NAME only (never its value)."""
    return {
        k: {"from_env": v.from_env} if isinstance(v, SecretRef) else v
        for k, v in sorted(env.items())
    }


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


@dataclass(frozen=True)
class PodField:
    """One pod field: how the spec and RunPod give it, and what changing it means.

    `shape` turns the spec's value into the value plans compare and show (and the fingerprint
    hashes); `accepts` says when the actual value satisfies the spec whatever it is (a GPU type
    in the fallback list, `cloud: all`, a field RunPod did not report).
    """

    path: str  # as plans show it: "disk.container_gb", "env" (expanded to env.KEY)
    attr: str  # its PodSpec attribute (the spec's value, as the pod inputs take it)
    actual: Callable[[ActualPod], object] | None = None  # None: RunPod does not report it
    shape: Callable[[Any], object] = _same
    accepts: Callable[[PodSpec, object], bool] = _never
    replace: bool = False  # RunPod cannot change it on a pod: terminate, then create
    sensitive: bool = False  # its values may be secrets (env): masked in plans
    fingerprint: str | None = None  # its key in the pod fingerprint; None: does not move it
    shown: Callable[[Any], object] | None = None  # its create-plan value (None there: left out)
    input: str | None = None  # the PodCreate field it fills (its PodEdit field, if `edit`)
    edit: bool = False  # an in-place edit sends it too (an edit sends all such fields)
    # the specs it is for: a create plan shows it and the fingerprint hashes it only for them
    # (GPU pods' fingerprints do not move for the CPU rows)
    applies: Callable[[PodSpec], bool] = _every_spec
    reported: Callable[[ActualPod], bool] = _every_pod  # when the actual view holds it

    @property
    def compared(self) -> bool:
        return self.actual is not None

    def spec(self, spec: PodSpec) -> Any:
        return getattr(spec, self.attr)


def _gpu_type_accepted(spec: PodSpec, actual: object) -> bool:
    return actual is None or actual in spec.gpu_types


def _cloud_accepted(spec: PodSpec, actual: object) -> bool:
    return spec.cloud is CloudType.ALL or actual is None


def _gpu_count_accepted(_spec: PodSpec, actual: object) -> bool:
    # 0 is what a pod without its GPUs may report: not a different count
    return not actual


def _data_center_accepted(spec: PodSpec, _actual: object) -> bool:
    return spec.data_center is None


def _cloud_of(pod: ActualPod) -> object:
    return pod.cloud.value if pod.cloud is not None else None


# In the order a create plan lists them; one row per field keeps the table readable.
# fmt: off
FIELDS: tuple[PodField, ...] = (
    PodField(
        "image", "image", attrgetter("image"),
        fingerprint="image", shown=_same, input="image", edit=True,
    ),
    # the GPU type and cloud a create asks for come from its placement (the fallback chain)
    PodField(
        "gpu.type", "gpu_types", attrgetter("gpu_type_id"), shape=list,
        accepts=_gpu_type_accepted, replace=True, fingerprint="gpu_types", shown=list,
        applies=_gpu_pod,
    ),
    PodField(
        "gpu.count", "gpu_count", attrgetter("gpu_count"),
        accepts=_gpu_count_accepted, replace=True, fingerprint="gpu_count", shown=_same,
        input="gpu_count", applies=_gpu_pod,
    ),
    PodField(
        "cpu.flavor", "cpu_flavor", attrgetter("cpu_flavor"), replace=True,
        fingerprint="cpu_flavor", shown=_same, input="cpu_flavor",
        applies=_cpu_pod, reported=_reports_cpu,
    ),
    PodField(
        "cpu.vcpu", "vcpu", _vcpu_of, replace=True,
        fingerprint="vcpu", shown=_same, input="vcpu_count",
        applies=_cpu_pod, reported=_reports_cpu,
    ),
    PodField(
        "cloud", "cloud", _cloud_of, shape=attrgetter("value"),
        accepts=_cloud_accepted, replace=True, fingerprint="cloud", shown=attrgetter("value"),
    ),
    PodField(
        "spot", "spot_bid_per_gpu", attrgetter("interruptible"),
        shape=lambda bid: bid is not None, replace=True, shown=lambda bid: bid is not None,
        applies=_gpu_pod,
    ),
    PodField(
        "spot.bid_per_gpu", "spot_bid_per_gpu",
        fingerprint="spot_bid_per_gpu", shown=_same, input="bid_per_gpu",
    ),
    PodField(
        "disk.container_gb", "container_disk_gb", attrgetter("container_disk_gb"),
        accepts=_unreported, fingerprint="container_disk_gb", shown=_same,
        input="container_disk_gb", edit=True,
    ),
    PodField(
        "disk.volume_gb", "volume_gb", attrgetter("volume_gb"),
        accepts=_unreported, replace=True, fingerprint="volume_gb", shown=_same,
        input="volume_gb", edit=True, applies=_has_volume,
    ),
    PodField(
        "disk.mount", "volume_mount", attrgetter("volume_mount"),
        accepts=_unreported, replace=True, fingerprint="volume_mount", shown=_same,
        input="volume_mount", edit=True, applies=_has_volume,
    ),
    PodField(
        "ports", "ports", lambda pod: sorted(pod.ports), shape=sorted,
        fingerprint="ports", shown=list, input="ports", edit=True,
    ),
    # expanded to one env.KEY path per key; podctl's own markers are left out of the diff, and
    # the inputs get the pod's whole env (markers, from_env values filled in) from `pod_env`
    PodField(
        "env", "env", attrgetter("env"), shape=env_by_name,
        sensitive=True, fingerprint="env",
    ),
    PodField(
        "docker_args", "docker_args", attrgetter("docker_args"),
        fingerprint="docker_args", shown=lambda args: args or None,
        input="docker_args", edit=True,
    ),
    PodField("registry", "registry", shown=_same, input="container_registry_auth_id"),
    PodField("template", "template", shown=_same, input="template_id"),
    PodField(
        "data_center", "data_center", attrgetter("data_center_id"),
        accepts=_data_center_accepted, replace=True, fingerprint="data_center", shown=_same,
        input="data_center_id",
    ),
    PodField(
        "network_volume", "network_volume", attrgetter("network_volume_id"),
        replace=True, fingerprint="network_volume", shown=_same, input="network_volume_id",
    ),
    # sent as terminate_after (the create's time + max_lifetime); podctl enforces it itself
    PodField("max_lifetime", "max_lifetime_s", shown=format_duration),
    PodField("min_vcpu", "min_vcpu", fingerprint="min_vcpu", input="min_vcpu"),
    PodField("min_memory_gb", "min_memory_gb", fingerprint="min_memory_gb", input="min_memory_gb"),
    PodField("cuda", "cuda", shape=list, fingerprint="cuda", input="allowed_cuda_versions"),
)
# fmt: on
_BY_PATH = {f.path: f for f in FIELDS}
_COMPARED = tuple(f for f in FIELDS if f.compared and not f.sensitive)


def forces_replace(path: str) -> bool:
    """Whether a change of this field path needs a new pod (env.KEY: never)."""
    row = _BY_PATH.get(path)
    return row is not None and row.replace


def actual_view(pod: ActualPod) -> View:
    """The compared fields of an actual pod, keyed by field path."""
    view: View = {}
    for row in _COMPARED:
        assert row.actual is not None
        if row.reported(pod):
            view[row.path] = row.actual(pod)
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
    view: View = {}
    for row in _COMPARED:
        if row.path not in actual and (not row.applies(spec) or _machine_unknown(pod)):
            continue  # neither reported nor wanted, or the API cannot tell (GraphQL's CPU pods)
        seen = actual.get(row.path)
        view[row.path] = seen if row.accepts(spec, seen) else row.shape(row.spec(spec))
    for key, value in sorted(spec.env.items()):
        if key in IGNORED_ENV:
            continue
        view[f"env.{key}"] = (
            secrets.get(value.from_env, "") if isinstance(value, SecretRef) else value
        )
    return view


def create_fields(spec: PodSpec) -> tuple[FieldChange, ...]:
    """What a create sends, shown as fields going from nothing to the desired value."""
    values: list[tuple[str, object]] = []
    for row in FIELDS:
        if row.sensitive:
            for key, value in sorted(spec.env.items()):
                shown = SENSITIVE if isinstance(value, SecretRef) else value
                values.append((f"{row.path}.{key}", shown))
        elif row.shown is not None and row.applies(spec):
            values.append((row.path, row.shown(row.spec(spec))))
    return tuple(FieldChange(path=p, before=None, after=v) for p, v in values if v is not None)


def fingerprint_shape(spec: PodSpec) -> dict[str, object]:
    """The fields that shape the pod RunPod runs (not state, protect, after_jobs...)."""
    return {
        row.fingerprint: row.shape(row.spec(spec))
        for row in FIELDS
        if row.fingerprint is not None and row.applies(spec)
    }


def create_input(spec: PodSpec) -> dict[str, Any]:
    """The PodCreate fields the spec alone gives (not name, placement, env or terminate_after)."""
    return {row.input: row.spec(spec) for row in FIELDS if row.input is not None}


def edit_input(spec: PodSpec, env: Mapping[str, str]) -> PodEdit:
    """The in-place edit of a pod to `spec`; `env` is the pod's whole env, markers included."""
    values = {row.input: row.spec(spec) for row in FIELDS if row.edit and row.input is not None}
    return PodEdit(env=env, **values)
