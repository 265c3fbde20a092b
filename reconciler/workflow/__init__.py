"""The use cases (plan, apply, destroy, status...): spec, client, lockfile, planner, executor."""

from __future__ import annotations

from reconciler.workflow.context import Connection, default_spec_paths, resolve_secrets
from reconciler.workflow.inspect import PodStatusRow, gpus, status
from reconciler.workflow.pods import (
    Applied,
    ApplyRequest,
    PlanRefusedError,
    PlanRequest,
    apply,
    load_plan,
    make_plan,
    save_plan,
)
from reconciler.workflow.state import import_pod, state_read, state_rm, state_show

__all__ = [
    "Applied",
    "ApplyRequest",
    "Connection",
    "PlanRefusedError",
    "PlanRequest",
    "PodStatusRow",
    "apply",
    "default_spec_paths",
    "gpus",
    "import_pod",
    "load_plan",
    "make_plan",
    "resolve_secrets",
    "save_plan",
    "state_read",
    "state_rm",
    "state_show",
    "status",
]
