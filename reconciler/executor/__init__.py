"""Runs a Plan against the PodBackend and Journal protocols, in parallel, write-ahead."""

from __future__ import annotations

from reconciler.executor.context import ChangeFailed
from reconciler.executor.ports import Journal, PodBackend
from reconciler.executor.readiness import NotReadyError, PollPolicy, Readiness
from reconciler.executor.request import create_request, default_placements, pod_env
from reconciler.executor.run import execute

__all__ = [
    "ChangeFailed",
    "Journal",
    "NotReadyError",
    "PodBackend",
    "PollPolicy",
    "Readiness",
    "create_request",
    "default_placements",
    "execute",
    "pod_env",
]
