"""The Plan: the changes the planner proposes, which the renderer shows and the executor runs.

Frozen dataclasses and string enums only; no I/O and no third-party imports. A Plan is built
from desired + actual + recorded state by `reconciler.planner` (pure) and can be saved as JSON
(`podctl plan -out plan.json`) and checked for staleness before `podctl apply plan.json`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from reconciler.errors import PlanFileError
from reconciler.model import CloudType

PLAN_FORMAT_VERSION = 1
SENSITIVE = "(sensitive)"  # what a plan shows instead of a from_env value


class Action(enum.Enum):
    """What a change does; the values are the words the plan prints."""

    CREATE = "create"
    UPDATE = "update"  # in place via podEditJob: the container is reset
    REPLACE = "replace"  # terminate, then create (a field RunPod cannot change)
    RESUME = "resume"  # with `fields`: resume, then update in place (podEditJob) to the spec
    STOP = "stop"
    TERMINATE = "terminate"
    RUN_JOB = "run-job"
    NOOP = "no-op"
    DELETE = "delete"  # a serverless endpoint (RunPod's DELETE /v2/serverless/{id})


@dataclass(frozen=True)
class FieldChange:
    """One field that differs: `before` is the actual value, `after` the desired one.

    Values are JSON-able (str, int, float, bool, None, lists); a secret is `SENSITIVE`.
    `drift` is true when the spec did not change since the last apply but the pod did
    ("changed outside podctl"). `forces_replace` marks the fields that make a change a replace.
    """

    path: str  # e.g. "image", "env.WANDB_PROJECT", "gpu.count", "ports"
    before: object
    after: object
    drift: bool = False
    forces_replace: bool = False


@dataclass(frozen=True)
class Placement:
    """One step of the GPU fallback chain: a GPU type on a cloud, tried in order on no capacity."""

    gpu_type_id: str
    cloud: CloudType  # SECURE or COMMUNITY, never ALL
    price_per_hr: float | None = None  # for the whole pod (per-GPU price x count), when known


@dataclass(frozen=True)
class Observed:
    """What the plan saw of one pod it touches; a saved plan is stale when this has moved.

    For a create, `pod_id` is None and `status` is "" (no pod of that name was seen).
    """

    pod_id: str | None
    status: str  # PodStatus value, or "" when absent
    digest: str  # hash of the actual fields the planner compared ("" when absent)


@dataclass(frozen=True)
class Change:
    """One thing the plan does to one pod (or job), with why and what it costs."""

    address: str  # str(Address): "pod.NAME", "pod.NAME[POD_ID]" or "job.NAME"
    action: Action
    reason: str  # e.g. "new", "image changed", "deleted outside podctl", "orphan (lost create)"
    pod: str  # the pod name the change is about (for a job: the job's pod)
    pod_id: str | None = None  # the actual pod it touches (None for a create)
    fields: tuple[FieldChange, ...] = ()
    warnings: tuple[str, ...] = ()  # e.g. "the container is reset: anything outside the volume…"
    placements: tuple[Placement, ...] = ()  # create/replace: the fallback chain, first preferred
    cost_before: float | None = None  # $/h of the pod as it runs now (0 when stopped/absent)
    cost_after: float | None = None  # $/h once applied (first placement's price for a create)
    depends_on: tuple[str, ...] = ()  # addresses that must succeed first
    observed: Observed | None = None  # pods only
    then_stop: bool = False  # create/replace of a pod that should end stopped
    job: str | None = None  # run-job only: the job name
    fingerprint: str | None = None  # run-job only: the job's fingerprint (names its run folder)

    @property
    def is_noop(self) -> bool:
        return self.action is Action.NOOP

    @property
    def running_cost_after(self) -> float | None:
        """$/h of the pod running once applied: a stop's `cost_after` is its storage instead
        (what the stopped pod bills), which the plan's running totals leave out."""
        return 0.0 if self.action is Action.STOP else self.cost_after


@dataclass(frozen=True)
class Plan:
    """Everything `podctl plan` proposes for one stack, plus what it was computed against."""

    stack: str
    changes: tuple[Change, ...]  # in execution order (dependencies first); no-ops included
    warnings: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()  # e.g. protect violated, bid below minimum: apply refuses
    lineage: str = ""  # the lockfile's lineage and serial the plan was made against
    serial: int = 0
    spec_digest: str = ""  # hash of the desired state (secrets salted), to refuse a moved spec
    spec_files: tuple[str, ...] = ()
    targets: tuple[str, ...] = ()  # --target addresses, empty for all
    total_cost_before: float = 0.0  # $/h of the stack's running pods now
    total_cost_after: float = 0.0  # $/h once applied
    stopped_storage_cost_after: float = 0.0  # $/h for volumes of stopped pods once applied
    format_version: int = PLAN_FORMAT_VERSION
    created_at: str = ""  # ISO 8601, set by the workflow (the planner is pure)
    notes: tuple[str, ...] = field(default_factory=tuple)  # e.g. "pod.x: not created"

    @property
    def actionable(self) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if not c.is_noop)

    @property
    def has_changes(self) -> bool:
        return bool(self.actionable)

    @property
    def waiting(self) -> tuple[Change, ...]:
        """No-ops that still differ from the spec: changes that wait for a stopped pod to run."""
        return tuple(c for c in self.changes if c.is_noop and c.fields)


# --- what an apply did --------------------------------------------------------------------------


class Outcome(enum.Enum):
    """How one change of an apply ended."""

    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"  # a change it depends on failed (or the apply was interrupted)


@dataclass(frozen=True)
class ChangeResult:
    """The end of one change: what happened, to which pod, and why when it did not work."""

    address: str
    action: Action
    outcome: Outcome
    message: str = ""  # why it failed or was skipped; what landed when done
    pod_id: str | None = None  # the pod it ended on (the new one for a create or replace)
    gpu_type_id: str | None = None  # the fallback that landed (create/replace)
    cloud: CloudType | None = None
    duration_s: float = 0.0
    exit_code: int | None = None  # run-job: the exit code of its last run, when it had one


@dataclass(frozen=True)
class Billing:
    """A pod of the stack left running (so billing) when an apply ended, and its $/h."""

    address: str
    pod_id: str
    cost_per_hr: float | None = None


@dataclass(frozen=True)
class ApplyResult:
    """Every change's result, in plan order; exit 1 when any failed."""

    stack: str
    results: tuple[ChangeResult, ...] = ()
    left_running: tuple[Billing, ...] = ()  # the stack's pods running at the end

    def count(self, outcome: Outcome) -> int:
        return sum(1 for r in self.results if r.outcome is outcome)

    @property
    def ok(self) -> bool:
        return self.count(Outcome.FAILED) == 0 and self.count(Outcome.SKIPPED) == 0


# --- the JSON shape of a plan (`podctl plan -out plan.json`, `--format json`) -------------------


def _field_dict(f: FieldChange) -> dict[str, object]:
    return {
        "path": f.path,
        "before": f.before,
        "after": f.after,
        "drift": f.drift,
        "forces_replace": f.forces_replace,
    }


def _change_dict(c: Change) -> dict[str, object]:
    return {
        "address": c.address,
        "action": c.action.value,
        "reason": c.reason,
        "pod": c.pod,
        "pod_id": c.pod_id,
        "fields": [_field_dict(f) for f in c.fields],
        "warnings": list(c.warnings),
        "placements": [
            {"gpu_type_id": p.gpu_type_id, "cloud": p.cloud.value, "price_per_hr": p.price_per_hr}
            for p in c.placements
        ],
        "cost_before": c.cost_before,
        "cost_after": c.cost_after,
        "depends_on": list(c.depends_on),
        "observed": None
        if c.observed is None
        else {
            "pod_id": c.observed.pod_id,
            "status": c.observed.status,
            "digest": c.observed.digest,
        },
        "then_stop": c.then_stop,
        "job": c.job,
        "fingerprint": c.fingerprint,
    }


def plan_to_dict(plan: Plan) -> dict[str, object]:
    """The plan as JSON-able data; `plan_from_dict` reads it back to an equal Plan."""
    return {
        "format_version": plan.format_version,
        "stack": plan.stack,
        "lineage": plan.lineage,
        "serial": plan.serial,
        "spec_digest": plan.spec_digest,
        "spec_files": list(plan.spec_files),
        "targets": list(plan.targets),
        "created_at": plan.created_at,
        "has_changes": plan.has_changes,
        "summary": {a.value: sum(1 for c in plan.changes if c.action is a) for a in Action},
        "total_cost_before": plan.total_cost_before,
        "total_cost_after": plan.total_cost_after,
        "stopped_storage_cost_after": plan.stopped_storage_cost_after,
        "errors": list(plan.errors),
        "warnings": list(plan.warnings),
        "notes": list(plan.notes),
        "changes": [_change_dict(c) for c in plan.changes],
    }


_E = TypeVar("_E", bound=enum.Enum)


class _Reader:
    """Typed access to one JSON object of a plan file; every mistake is a PlanFileError."""

    def __init__(self, value: object, where: str) -> None:
        if not isinstance(value, dict):
            raise PlanFileError(f"plan file: {where} is not an object")
        self.data: dict[str, object] = value
        self.where = where

    def _bad(self, key: str, what: str) -> PlanFileError:
        return PlanFileError(
            f"plan file: {self.where}.{key} is not {what}; make the plan again with "
            "`podctl plan -out FILE`"
        )

    def get(
        self, key: str, kind: type | tuple[type, ...], what: str, *, optional: bool = False
    ) -> Any:
        if key not in self.data:
            if optional:
                return None
            raise PlanFileError(
                f"plan file: {self.where}.{key} is missing; make the plan again with "
                "`podctl plan -out FILE`"
            )
        value = self.data[key]
        if value is None and optional:
            return None
        if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
            raise self._bad(key, what)
        if not isinstance(value, kind):
            raise self._bad(key, what)
        return value

    def str_(self, key: str) -> str:
        return cast(str, self.get(key, str, "a string"))

    def opt_str(self, key: str) -> str | None:
        return cast("str | None", self.get(key, str, "a string or null", optional=True))

    def int_(self, key: str) -> int:
        return cast(int, self.get(key, int, "an integer"))

    def bool_(self, key: str) -> bool:
        return cast(bool, self.get(key, bool, "true or false"))

    def opt_float(self, key: str) -> float | None:
        value = self.get(key, (int, float), "a number or null", optional=True)
        return None if value is None else float(value)

    def float_(self, key: str) -> float:
        return float(self.get(key, (int, float), "a number"))

    def strs(self, key: str) -> tuple[str, ...]:
        items = cast(list[object], self.get(key, list, "a list of strings"))
        if not all(isinstance(i, str) for i in items):
            raise self._bad(key, "a list of strings")
        return tuple(cast(list[str], items))

    def objs(self, key: str) -> list[_Reader]:
        items = cast(list[object], self.get(key, list, "a list"))
        return [_Reader(item, f"{self.where}.{key}[{i}]") for i, item in enumerate(items)]

    def enum(self, key: str, kind: type[_E]) -> _E:
        value = self.str_(key)
        try:
            return kind(value)
        except ValueError:
            words = ", ".join(str(m.value) for m in kind)
            raise self._bad(key, f"one of {words}") from None


def _json_value(reader: _Reader, key: str) -> object:
    if key not in reader.data:
        raise PlanFileError(f"plan file: {reader.where}.{key} is missing")
    return reader.data[key]


def _change_from(r: _Reader) -> Change:
    obs = r.data.get("observed")
    observed = None
    if obs is not None:
        o = _Reader(obs, f"{r.where}.observed")
        observed = Observed(
            pod_id=o.opt_str("pod_id"), status=o.str_("status"), digest=o.str_("digest")
        )
    return Change(
        address=r.str_("address"),
        action=r.enum("action", Action),
        reason=r.str_("reason"),
        pod=r.str_("pod"),
        pod_id=r.opt_str("pod_id"),
        fields=tuple(
            FieldChange(
                path=f.str_("path"),
                before=_json_value(f, "before"),
                after=_json_value(f, "after"),
                drift=f.bool_("drift"),
                forces_replace=f.bool_("forces_replace"),
            )
            for f in r.objs("fields")
        ),
        warnings=r.strs("warnings"),
        placements=tuple(
            Placement(
                gpu_type_id=p.str_("gpu_type_id"),
                cloud=p.enum("cloud", CloudType),
                price_per_hr=p.opt_float("price_per_hr"),
            )
            for p in r.objs("placements")
        ),
        cost_before=r.opt_float("cost_before"),
        cost_after=r.opt_float("cost_after"),
        depends_on=r.strs("depends_on"),
        observed=observed,
        then_stop=r.bool_("then_stop"),
        job=r.opt_str("job"),
        fingerprint=r.opt_str("fingerprint"),
    )


def plan_from_dict(data: object) -> Plan:
    """A Plan from `plan_to_dict`'s shape; PlanFileError on anything malformed or unknown."""
    r = _Reader(data, "plan")
    version = r.data.get("format_version")
    if isinstance(version, bool) or version != PLAN_FORMAT_VERSION:
        raise PlanFileError(
            f"plan file: format_version {version!r} is not one this podctl reads "
            f"({PLAN_FORMAT_VERSION}); make the plan again with this podctl"
        )
    return Plan(
        stack=r.str_("stack"),
        changes=tuple(_change_from(c) for c in r.objs("changes")),
        warnings=r.strs("warnings"),
        errors=r.strs("errors"),
        lineage=r.str_("lineage"),
        serial=r.int_("serial"),
        spec_digest=r.str_("spec_digest"),
        spec_files=r.strs("spec_files"),
        targets=r.strs("targets"),
        total_cost_before=r.float_("total_cost_before"),
        total_cost_after=r.float_("total_cost_after"),
        stopped_storage_cost_after=r.float_("stopped_storage_cost_after"),
        format_version=PLAN_FORMAT_VERSION,
        created_at=r.str_("created_at"),
        notes=r.strs("notes"),
    )
