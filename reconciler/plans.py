"""The Plan: the changes the planner proposes, which the renderer shows and the executor runs.

Frozen dataclasses and string enums only; no I/O and no third-party imports. A Plan is built
from desired + actual + recorded state by `reconciler.planner` (pure) and can be saved as JSON
(`podctl plan -out plan.json`) and checked for staleness before `podctl apply plan.json`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from reconciler.model import CloudType

PLAN_FORMAT_VERSION = 1
SENSITIVE = "(sensitive)"  # what a plan shows instead of a from_env value


class Action(enum.Enum):
    """What a change does; the values are the words the plan prints."""

    CREATE = "create"
    UPDATE = "update"  # in place via podEditJob: the container is reset
    REPLACE = "replace"  # terminate, then create (a field RunPod cannot change)
    RESUME = "resume"
    STOP = "stop"
    TERMINATE = "terminate"
    RUN_JOB = "run-job"
    NOOP = "no-op"


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

    address: str  # "pod.NAME" or "job.NAME"
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

    @property
    def is_noop(self) -> bool:
        return self.action is Action.NOOP


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


@dataclass(frozen=True)
class ApplyResult:
    """Every change's result, in plan order; exit 1 when any failed."""

    stack: str
    results: tuple[ChangeResult, ...] = ()

    def count(self, outcome: Outcome) -> int:
        return sum(1 for r in self.results if r.outcome is outcome)

    @property
    def ok(self) -> bool:
        return self.count(Outcome.FAILED) == 0 and self.count(Outcome.SKIPPED) == 0
