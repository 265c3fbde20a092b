"""One parsed spec file: its data, where every value and key sits, and how to report a problem."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from reconciler.errors import Problem, Severity

PathKey = str | int
DocPath = tuple[PathKey, ...]


@dataclass(frozen=True)
class Mark:
    """A 1-based line and column in a file."""

    line: int
    col: int


def format_path(path: DocPath) -> str:
    """`('pods', 'trainer', 'ports', 0)` -> `pods.trainer.ports[0]`."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


@dataclass
class Document:
    """The data of one spec file, with the position of every key and value in it."""

    file: str  # as shown to the user
    folder: Path  # absolute: relative local paths in the spec resolve against it
    data: object = None
    key_marks: dict[DocPath, Mark] = field(default_factory=dict)
    value_marks: dict[DocPath, Mark] = field(default_factory=dict)
    raw_scalars: dict[DocPath, str] = field(default_factory=dict)  # the text as written

    def mark(self, path: DocPath, *, at_key: bool = False) -> Mark:
        """Where `path` is written (its key when `at_key`), or its nearest written ancestor."""
        if at_key and path in self.key_marks:
            return self.key_marks[path]
        while path:
            if path in self.value_marks:
                return self.value_marks[path]
            path = path[:-1]
        return self.value_marks.get((), Mark(0, 0))

    def location(self, path: DocPath, *, at_key: bool = False) -> str:
        mark = self.mark(path, at_key=at_key)
        return f"{self.file}:{mark.line}:{mark.col}" if mark.line else self.file

    def problem(
        self,
        path: DocPath,
        message: str,
        hint: str = "",
        *,
        at_key: bool = False,
        severity: Severity = "error",
    ) -> Problem:
        mark = self.mark(path, at_key=at_key)
        return Problem(
            file=self.file,
            line=mark.line,
            col=mark.col,
            path=format_path(path),
            message=message,
            hint=hint,
            severity=severity,
        )

    def get(self, path: DocPath) -> object:
        """The value at `path`, or None when any step is missing or of the wrong kind."""
        value = self.data
        for part in path:
            if isinstance(value, list) and isinstance(part, int) and 0 <= part < len(value):
                value = value[part]
                continue
            if not (isinstance(value, dict) and isinstance(part, str) and part in value):
                return None
            value = value[part]
        return value


def file_problem(file: str, message: str, hint: str = "", line: int = 0, col: int = 0) -> Problem:
    """A problem with a whole file (unreadable, not YAML, ...), not with a path in it."""
    return Problem(file=file, line=line, col=col, path="", message=message, hint=hint)


def describe(value: object) -> str:
    """A short, human description of a value for messages: `the string 'two'`."""
    if value is None:
        return "null (an empty value)"
    if isinstance(value, bool):
        return f"the boolean {'true' if value else 'false'}"
    if isinstance(value, int | float):
        return f"the number {shorten(repr_number(value))}"
    if isinstance(value, str):
        return f"the string {shorten(value)!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, bytes):
        return "binary data"
    return f"the {type(value).__name__} {shorten(str(value))}"


def repr_number(value: int | float) -> str:
    try:
        return repr(value)
    except ValueError:  # an int too long to print
        return "(a number with thousands of digits)"


def shorten(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
