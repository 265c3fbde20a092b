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
