"""The recorded state: the lockfile on disk (LockfileStore), its JSON format and record helpers.

Stdlib only. A corrupt or unknown-format lockfile is refused and never overwritten.
"""

from __future__ import annotations

from reconciler.lockfile.codec import dumps, loads
from reconciler.lockfile.records import (
    clear_intent,
    forget_pod,
    record_host_keys,
    record_intent,
    record_job,
    record_pod,
    redact,
    with_secret_env,
)
from reconciler.lockfile.store import LockfileStore, next_version, secret_fields

__all__ = [
    "LockfileStore",
    "clear_intent",
    "dumps",
    "forget_pod",
    "loads",
    "next_version",
    "record_host_keys",
    "record_intent",
    "record_job",
    "record_pod",
    "redact",
    "secret_fields",
    "with_secret_env",
]
