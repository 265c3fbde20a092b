"""Serverless endpoints: desired + actual + recorded -> create / update / replace / delete (pure).

Identity: an endpoint podctl creates is named `<stack>-<name>` and carries the env markers
PODCTL_STACK and PODCTL_ENDPOINT (REST v2 keeps an endpoint's env, and env is the only free
field it has). Matching: the recorded endpoint id first; else an endpoint whose markers name
this stack and endpoint (adopted: a lost lockfile still converges); further marked endpoints
under one name (a create whose answer was lost) are deleted as orphans. Endpoints without this
stack's markers are never touched unless `podctl import endpoint.NAME ID` recorded them.

RunPod lowers `workers.max` of an idle endpoint by itself (to 2 after 3 days without requests,
to 0 after 7; runpod-serverless.md §1.6): the plan names that drift as RunPod's, and the update
that follows restores the spec's value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from reconciler.jobs.fingerprint import env_salted, sha
from reconciler.model import (
    MARKER_ENDPOINT,
    MARKER_STACK,
    ActualEndpoint,
    ActualState,
    DesiredState,
    EndpointMarkers,
    EndpointRecord,
    EndpointSpec,
    EndpointState,
    Flashboot,
    Lockfile,
    SecretRef,
)
from reconciler.plans import SENSITIVE, Action, Change, FieldChange, Observed

PREFIX = "endpoint."
# RunPod's idle scale-down lowers workers.max to exactly these (§1.6), after these idle days
RUNPOD_IDLE_MAX = {2: 3, 0: 7}
DELETE_WARNING = (
    "RunPod terminates its workers and cancels its queued and running jobs; the endpoint id "
    "changes if it is created again"
)
REPLACE_WARNING = (
    "the compute family (gpu or cpu) of an endpoint cannot change: it is deleted and created "
    "again, with a new id; " + DELETE_WARNING.split(";")[0]
)
_WIRE_FLASHBOOT = {f.wire: f.value for f in Flashboot}


def is_endpoint(address: str) -> bool:
    """Whether a plan address names an endpoint (`endpoint.NAME` or `endpoint.NAME[ID]`)."""
    return address.startswith(PREFIX)


def endpoint_name(address: str) -> str:
    """`endpoint.NAME[ID]` -> NAME."""
    return address.removeprefix(PREFIX).split("[", 1)[0]


def endpoint_target(change: Change) -> str:
    """The `--target` that selects a change: `endpoint.NAME` (its orphans too)."""
    return PREFIX + endpoint_name(change.address)


@dataclass(frozen=True)
class EndpointPlan:
    """The endpoint part of a plan: its changes (no-ops included) and what the plan says."""

    changes: tuple[Change, ...] = ()
    errors: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)
    digest: str = ""  # hash of the desired endpoints (secrets salted), for saved plans


def runpod_name(stack: str, name: str) -> str:
    return f"{stack}-{name}"


def markers_env(stack: str, name: str) -> dict[str, str]:
    return EndpointMarkers(stack=stack, endpoint=name).as_env()


def _shape(spec: EndpointSpec) -> dict[str, object]:
    """What the endpoint RunPod runs looks like, from the spec (not state or protect)."""
    return {
        "image": spec.image,
        "template": spec.template,
        "gpu_pools": list(spec.gpu_pools),
        "gpu_count": spec.gpu_count,
        "gpu_exclude": list(spec.gpu_exclude),
        "cuda": list(spec.cuda),
        "cpu": [[c.flavor, c.vcpu] for c in spec.cpu],
        "workers": [spec.workers_min, spec.workers_max],
        "idle_timeout_s": spec.idle_timeout_s,
        "scaling": [spec.queue_delay_s, spec.request_count],
        "execution_timeout_s": spec.execution_timeout_s,
        "flashboot": spec.flashboot.value,
        "env": {
            k: {"from_env": v.from_env} if isinstance(v, SecretRef) else v
            for k, v in sorted(spec.env.items())
        },
        "network_volumes": list(spec.network_volumes),
        "data_centers": list(spec.data_centers),
        "disk_gb": spec.disk_gb,
        "docker_args": spec.docker_args,
        "registry": spec.registry,
    }


def endpoint_fingerprint(spec: EndpointSpec) -> str:
    """Stable hash of a desired endpoint; secrets by variable name only."""
    return "sha256:" + sha(_shape(spec))[:32]


def endpoints_digest(desired: DesiredState, secrets: Mapping[str, str]) -> str:
    """Hash of every endpoint the spec asks for, from_env values as salted hashes."""
    shapes = {}
    for name, spec in sorted(desired.endpoints.items()):
        shape = _shape(spec)
        shape["env"] = env_salted(spec.env, secrets)
        shape.update(state=spec.state.value, protect=spec.protect)
        shapes[name] = shape
    return sha(shapes)


# --- views: the fields the plan compares, in the spec's words ---------------------------------


def _seconds(value: float | None) -> str | None:
    from reconciler.planner.fields import format_duration

    if value is None:
        return None
    if value != int(value):
        return f"{value:g}s"
    return format_duration(int(value))


def _common(
    image: str | None,
    pools: tuple[str, ...],
    count: int | None,
    exclude: tuple[str, ...],
    cuda: tuple[str, ...],
    cpu: list[str],
) -> dict[str, object]:
    view: dict[str, object] = {}
    if image is not None:
        view["image"] = image
    if cpu:
        view["cpu"] = cpu
    else:
        view.update(
            {
                "gpu.pools": list(pools),
                "gpu.count": count,
                "gpu.exclude": sorted(exclude),
                "gpu.cuda": sorted(cuda),
            }
        )
    return view


def desired_view(
    stack: str, spec: EndpointSpec, secrets: Mapping[str, str]
) -> tuple[dict[str, object], dict[str, str | None]]:
    """(field -> shown value, env key -> the real value to compare, None for a secret unknown)."""
    view = _common(
        spec.image,
        spec.gpu_pools,
        spec.gpu_count,
        spec.gpu_exclude,
        spec.cuda,
        [f"{c.flavor} x{c.vcpu}" for c in spec.cpu],
    )
    scaling = (
        f"request_count {spec.request_count}"
        if spec.request_count is not None
        else f"queue_delay {_seconds(spec.queue_delay_s)}"
    )
    view.update(
        {
            "name": runpod_name(stack, spec.name),
            "workers.min": spec.workers_min,
            "workers.max": spec.workers_max,
            "idle_timeout": _seconds(spec.idle_timeout_s),
            "scaling": scaling,
            "execution_timeout": _seconds(spec.execution_timeout_s),
            "flashboot": spec.flashboot.value,
            "network_volumes": sorted(spec.network_volumes),
            "data_centers": sorted(spec.data_centers),
            "disk_gb": spec.disk_gb,
            "docker_args": spec.docker_args,
            "registry": spec.registry,
        }
    )
    env: dict[str, str | None] = {}
    for key, value in {**spec.env, **markers_env(stack, spec.name)}.items():
        env[key] = secrets.get(value.from_env) if isinstance(value, SecretRef) else value
    return view, env


def actual_view(endpoint: ActualEndpoint, spec: EndpointSpec) -> dict[str, object]:
    """The actual endpoint in the same words; the image only when the spec names one."""
    view = _common(
        endpoint.image if spec.image is not None else None,
        endpoint.gpu_pools,
        endpoint.gpu_count,
        endpoint.gpu_exclude,
        endpoint.cuda,
        [f"{c.flavor} x{c.vcpu}" for c in endpoint.cpu],
    )
    scaling = (
        f"request_count {endpoint.request_count}"
        if endpoint.request_count is not None
        else f"queue_delay {_seconds(endpoint.queue_delay_s)}"
    )
    view.update(
        {
            "name": endpoint.name,
            "workers.min": endpoint.workers_min,
            "workers.max": endpoint.workers_max,
            "idle_timeout": _seconds(endpoint.idle_timeout_s),
            "scaling": scaling,
            "execution_timeout": _seconds(endpoint.execution_timeout_s),
            "flashboot": _WIRE_FLASHBOOT.get(endpoint.flashboot, endpoint.flashboot),
            "network_volumes": sorted(endpoint.network_volumes),
            "data_centers": sorted(endpoint.data_centers),
            "disk_gb": endpoint.disk_gb,
            "docker_args": endpoint.docker_args,
            "registry": endpoint.registry,
        }
    )
    return view


def observed_of(endpoint: ActualEndpoint | None) -> Observed:
    """What a saved plan checks again: the endpoint's id and a digest of its fields."""
    if endpoint is None:
        return Observed(pod_id=None, status="", digest="")
    shape = {k: v for k, v in vars(endpoint).items() if k not in ("env", "markers")}
    shape["env"] = sha(sorted(endpoint.env.items()))  # hashed: it may hold secrets
    return Observed(pod_id=endpoint.endpoint_id, status="", digest=sha(shape)[:32])


def field_changes(
    stack: str,
    spec: EndpointSpec,
    endpoint: ActualEndpoint,
    secrets: Mapping[str, str],
    record: EndpointRecord | None,
) -> tuple[FieldChange, ...]:
    """The fields that differ; a secret is shown as (sensitive), never its value."""
    drift = record is not None and record.fingerprint == endpoint_fingerprint(spec)
    want, want_env = desired_view(stack, spec, secrets)
    have = actual_view(endpoint, spec)
    out = [
        FieldChange(path=path, before=have.get(path), after=value, drift=drift)
        for path, value in want.items()
        if have.get(path) != value
    ]
    secret_keys = {k for k, v in spec.env.items() if isinstance(v, SecretRef)}
    secret_keys |= set(record.secret_env) if record is not None else set()
    for key in sorted(set(want_env) | set(endpoint.env)):
        after, before = want_env.get(key), endpoint.env.get(key)
        if key in want_env and after is None:  # a secret whose value is not known: unchanged
            continue
        if after == before:
            continue
        hidden = key in secret_keys
        out.append(
            FieldChange(
                path=f"env.{key}",
                before=SENSITIVE if hidden and before is not None else before,
                after=SENSITIVE if hidden and after is not None else after,
                drift=drift and key not in (MARKER_STACK, MARKER_ENDPOINT),
            )
        )
    return tuple(out)


def runpod_lowered(
    spec: EndpointSpec, endpoint: ActualEndpoint, record: EndpointRecord | None
) -> int | None:
    """The idle days after which RunPod lowers workers.max to what the endpoint shows, when
    that is what happened: its max is 2 or 0, below what podctl set and the spec asks."""
    days = RUNPOD_IDLE_MAX.get(endpoint.workers_max)
    set_by_podctl = record.workers_max if record is not None else None
    if days is None or endpoint.workers_max >= spec.workers_max:
        return None
    if set_by_podctl is not None and set_by_podctl <= endpoint.workers_max:
        return None  # podctl itself set it this low: the spec was raised since
    return days


# --- matching and decisions -------------------------------------------------------------------


@dataclass(frozen=True)
class _Match:
    endpoint: ActualEndpoint | None
    orphans: tuple[ActualEndpoint, ...] = ()
    lost: bool = False  # recorded, but RunPod no longer has it


def _match(
    name: str,
    stack: str,
    actual: Mapping[str, ActualEndpoint],
    recorded: Mapping[str, EndpointRecord],
) -> _Match:
    record = recorded.get(name)
    marked = tuple(e for _, e in sorted(actual.items()) if e.belongs_to(stack, name))
    if record is not None and record.endpoint_id in actual:
        found = actual[record.endpoint_id]
        return _Match(found, tuple(e for e in marked if e.endpoint_id != found.endpoint_id))
    if marked:
        return _Match(marked[0], marked[1:], lost=False)
    return _Match(None, lost=record is not None)


def names_of(
    stack: str, desired: DesiredState, actual: ActualState, recorded: Lockfile
) -> list[str]:
    """Every endpoint name the plan looks at: in the spec, recorded, or marked for this stack."""
    marked = {
        e.markers.endpoint
        for e in actual.endpoints.values()
        if e.markers is not None and e.markers.stack == stack
    }
    return sorted(set(desired.endpoints) | set(recorded.endpoints) | marked)


def endpoint_id(
    name: str, stack: str, actual: ActualState | None, recorded: Lockfile
) -> str | None:
    """The RunPod id of the stack's endpoint NAME: recorded (and, when listed, still there),
    else found by its markers; None when it does not exist (yet)."""
    record = recorded.endpoints.get(name)
    if actual is None:
        return record.endpoint_id if record is not None else None
    return (
        found.endpoint_id
        if (found := _match(name, stack, actual.endpoints, recorded.endpoints).endpoint)
        else None
    )


def _change(
    name: str,
    action: Action,
    reason: str,
    endpoint: ActualEndpoint | None,
    *,
    address: str | None = None,
    fields: tuple[FieldChange, ...] = (),
    warnings: tuple[str, ...] = (),
) -> Change:
    return Change(
        address=address or f"{PREFIX}{name}",
        action=action,
        reason=reason,
        pod="",  # not a pod: the executors of pods and jobs leave it alone
        pod_id=endpoint.endpoint_id if endpoint is not None else None,
        fields=fields,
        warnings=warnings,
        observed=observed_of(endpoint),
    )


def _update_reason(
    fields: tuple[FieldChange, ...], lowered: int | None, endpoint: ActualEndpoint
) -> str:
    names = [f.path for f in fields]
    parts = []
    if lowered is not None:
        parts.append(
            f"RunPod lowered workers.max to {endpoint.workers_max} (its automatic scale-down "
            f"of an endpoint idle for {lowered} days); apply restores it"
        )
        names = [n for n in names if n != "workers.max"]
    if names:
        drift = all(f.drift for f in fields if f.path in names)
        shown = ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
        parts.append(f"{'changed outside podctl' if drift else 'changed'}: {shown}")
    return "; ".join(parts)


def _decide(
    name: str,
    stack: str,
    spec: EndpointSpec | None,
    m: _Match,
    record: EndpointRecord | None,
    secrets: Mapping[str, str],
    destroy: bool,
) -> list[Change]:
    out: list[Change] = []
    gone = "destroy" if destroy else "removed from the spec" if spec is None else "state: absent"
    wanted = spec is not None and spec.state is EndpointState.PRESENT and not destroy
    if not wanted:
        if m.endpoint is not None:
            out.append(_change(name, Action.DELETE, gone, m.endpoint, warnings=(DELETE_WARNING,)))
        elif spec is not None:
            out.append(_change(name, Action.NOOP, f"absent ({gone})", None))
    elif m.endpoint is None:
        reason = "deleted outside podctl" if m.lost else "new"
        out.append(_change(name, Action.CREATE, reason, None))
    else:
        assert spec is not None
        fields = field_changes(stack, spec, m.endpoint, secrets, record)
        if spec.is_cpu != m.endpoint.is_cpu:
            before, after = ("cpu", "gpu") if m.endpoint.is_cpu else ("gpu", "cpu")
            family = FieldChange("compute", before, after, forces_replace=True)
            out.append(
                _change(
                    name,
                    Action.REPLACE,
                    f"compute changes from {before} to {after}",
                    m.endpoint,
                    fields=(family, *fields),
                    warnings=(REPLACE_WARNING,),
                )
            )
        elif fields:
            lowered = (
                runpod_lowered(spec, m.endpoint, record)
                if any(f.path == "workers.max" for f in fields)
                else None
            )
            if lowered is not None:
                fields = tuple(
                    FieldChange(f.path, f.before, f.after, drift=True)
                    if f.path == "workers.max"
                    else f
                    for f in fields
                )
            reason = _update_reason(fields, lowered, m.endpoint)
            out.append(_change(name, Action.UPDATE, reason, m.endpoint, fields=fields))
        else:
            out.append(_change(name, Action.NOOP, "matches the spec", m.endpoint))
    orphan_reason = (
        gone
        if not wanted
        else f"orphan: another endpoint with this stack's markers for {PREFIX}{name} "
        "(a create whose answer was lost)"
    )
    out += [
        _change(
            name,
            Action.DELETE,
            orphan_reason,
            o,
            address=f"{PREFIX}{name}[{o.endpoint_id}]",
            warnings=(DELETE_WARNING,),
        )
        for o in m.orphans
    ]
    return out


def _protect_errors(changes: list[Change], desired: DesiredState, destroy: bool) -> list[str]:
    errors = []
    for c in changes:
        spec = desired.endpoints.get(endpoint_name(c.address))
        if spec is None or not spec.protect or c.action not in (Action.DELETE, Action.REPLACE):
            continue
        if c.address != spec.address:
            continue  # an orphan: cleaning it up is not what protect guards
        how = (
            "run `podctl destroy --force` to destroy it anyway"
            if destroy
            else f"set protect: false on endpoints.{spec.name} first if that is intended"
        )
        errors.append(
            f"{c.address} is protected (protect: true) and this plan would {c.action.value} it "
            f"({c.reason}); {how}"
        )
    return errors


def plan_endpoints(
    desired: DesiredState,
    actual: ActualState,
    recorded: Lockfile,
    *,
    secrets: Mapping[str, str],
    destroy: bool = False,
    force: bool = False,
) -> EndpointPlan:
    """The endpoint changes that converge the stack, no-ops included, in name order."""
    stack = desired.stack
    changes: list[Change] = []
    for name in names_of(stack, desired, actual, recorded):
        m = _match(name, stack, actual.endpoints, recorded.endpoints)
        record = recorded.endpoints.get(name)
        changes += _decide(name, stack, desired.endpoints.get(name), m, record, secrets, destroy)
    warnings = [
        f"{c.address}: {c.reason}"
        for c in changes
        if c.action is Action.UPDATE and "RunPod lowered workers.max" in c.reason
    ]
    errors = [] if force else _protect_errors(changes, desired, destroy)
    return EndpointPlan(
        changes=tuple(changes),
        errors=tuple(errors),
        warnings=tuple(warnings),
        digest=endpoints_digest(desired, secrets) if desired.endpoints else "",
    )
