"""Pure job logic: fingerprints, order, and the on-pod layout of job runs (no I/O)."""

from reconciler.jobs.fingerprint import (
    INPUT_NAMES,
    changed_inputs,
    env_salted,
    job_fingerprint,
    job_inputs,
    secret_hash,
)
from reconciler.jobs.order import job_order

__all__ = [
    "INPUT_NAMES",
    "changed_inputs",
    "env_salted",
    "job_fingerprint",
    "job_inputs",
    "job_order",
    "secret_hash",
]
