"""The job API's errors, without httpx: the executor tells them apart."""

from __future__ import annotations

from reconciler.errors import PodctlError


class JobApiError(PodctlError):
    """The job API refused or failed; `status` is the HTTP status when there was one."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class SubmitLost(JobApiError):
    """A /run (or /runsync) was sent and its answer lost: the job may exist, or not."""


class JobGone(JobApiError):
    """404 on a job route: unknown, or gone at its TTL or after its result retention (§2.5)."""
