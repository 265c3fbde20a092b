"""The exception hierarchy of podctl; the CLI maps each to an exit code in one place.

Imports nothing from the package, and nothing third-party.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Problem:
    """One finding about a spec, precise enough for a person to act on.

    `file`, `line` and `col` locate it (1-based; 0 when unknown), `path` is the dotted path in the
    document (`pods.trainer.gpu.count`), `hint` says how to fix it.
    """

    file: str
    line: int
    col: int
    path: str
    message: str
    hint: str = ""
    severity: Severity = "error"

    @property
    def location(self) -> str:
        if self.line:
            return f"{self.file}:{self.line}:{self.col}"
        return self.file

    def __str__(self) -> str:
        where = f"{self.location}: {self.path}: " if self.path else f"{self.location}: "
        text = f"{where}{self.severity}: {self.message}"
        if self.hint:
            text += f" (hint: {self.hint})"
        return text


class PodctlError(Exception):
    """Base of every error podctl reports to a user; the CLI prints it and exits 1."""

    exit_code = 1


class UsageError(PodctlError):
    """The command line itself is wrong (exit 2, as click's usage errors)."""

    exit_code = 2


class NotBuiltYetError(PodctlError):
    """A command that is declared but not implemented yet."""


class SpecError(PodctlError):
    """A spec has problems; all of them are reported at once."""

    def __init__(self, problems: tuple[Problem, ...] | list[Problem]) -> None:
        self.problems = tuple(problems)
        errors = [p for p in self.problems if p.severity == "error"]
        super().__init__(f"{len(errors)} problem(s) in the spec")


class LockfileError(PodctlError):
    """The lockfile is unreadable, corrupt or of an unknown format; it is never overwritten."""


class LockHeldError(LockfileError):
    """Another podctl process holds the lockfile's lock; `holder` says who, what and since when."""

    def __init__(self, message: str, holder: dict[str, object] | None = None) -> None:
        super().__init__(message)
        self.holder: dict[str, object] = dict(holder or {})


class ApiError(PodctlError):
    """RunPod answered with an error; `errors` is the GraphQL `errors` list (may be empty).

    The message is `errors[0].message` when there is one. Never carries the API key.
    """

    def __init__(
        self,
        message: str,
        *,
        errors: tuple[dict[str, object], ...] = (),
        status_code: int | None = None,
        operation: str = "",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors
        self.status_code = status_code
        self.operation = operation

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.message!r}, status_code={self.status_code!r}, "
            f"operation={self.operation!r})"
        )


class AuthError(ApiError):
    """The API key is missing, wrong or lacks permission (HTTP 401/403, `Unauthorized`)."""


class CapacityError(ApiError):
    """No instance of the requested GPU type/cloud is available now; try the next fallback."""


class ResumeCapacityError(ApiError):
    """A stopped pod cannot resume: its host machine has no free GPU (follow on_resume_failure)."""


class PodNotFoundError(ApiError):
    """The pod does not exist (any more)."""


class TransientApiError(ApiError):
    """A failure worth retrying: 429, 5xx, a connection error, a timeout, `Something went wrong`."""

    def __init__(
        self,
        message: str,
        *,
        errors: tuple[dict[str, object], ...] = (),
        status_code: int | None = None,
        operation: str = "",
        retry_after: float | None = None,
        maybe_processed: bool = True,
    ) -> None:
        super().__init__(message, errors=errors, status_code=status_code, operation=operation)
        self.retry_after = retry_after
        # False only when the server surely did not act on the request (so even a create may retry)
        self.maybe_processed = maybe_processed


class ApiResponseError(ApiError):
    """RunPod's answer made no sense (not JSON, no `data`, wrong types): a bug there or here."""


class PlanFileError(PodctlError):
    """A saved plan file is malformed, of an unknown format version, or not a podctl plan."""


class SshError(PodctlError):
    """SSH to a pod failed: connecting, a command, or the connection dropped."""


class SshNotReadyError(SshError):
    """A pod's SSH did not answer in time; the message says which step failed and the fix."""


class HostKeyChangedError(SshError):
    """A pod's SSH host key is not the one pinned for it: replaced pod or man-in-the-middle."""


class JobError(PodctlError):
    """A remote job cannot be started or its on-pod state cannot be read."""


class TransferError(SshError):
    """An upload to or download from a pod failed."""


# --- the serverless job API (reconciler.backends.serverless raises them) ---------------------


class JobApiError(PodctlError):
    """The job API refused or failed; `status` is the HTTP status when there was one."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class SubmitLost(JobApiError):
    """A /run (or /runsync) was sent and its answer lost: the job may exist, or not."""


class JobGone(JobApiError):
    """404 on a job route: unknown, or gone at its TTL or after its result retention (§2.5)."""
