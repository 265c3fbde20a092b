"""The pure planner: desired + actual + recorded state -> Plan. No I/O."""

from reconciler.planner.build import plan
from reconciler.planner.fingerprint import pod_fingerprint, spec_digest
from reconciler.planner.stale import stale_reasons

__all__ = ["plan", "pod_fingerprint", "spec_digest", "stale_reasons"]
