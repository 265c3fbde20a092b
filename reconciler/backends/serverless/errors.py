"""The job API's errors (defined in reconciler.errors, which the executor reads)."""

from reconciler.errors import JobApiError, JobGone, SubmitLost

__all__ = ["JobApiError", "JobGone", "SubmitLost"]
