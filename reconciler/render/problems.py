"""Spec problems as text (one line each) or JSON (a stable list of objects)."""

from __future__ import annotations

import json
from collections.abc import Iterable

from reconciler.errors import Problem
from reconciler.textsafe import shown


def problem_dict(problem: Problem) -> dict[str, object]:
    """The JSON shape of one problem (stable: tools parse it)."""
    return {
        "severity": problem.severity,
        "file": problem.file,
        "line": problem.line,
        "col": problem.col,
        "path": problem.path,
        "message": problem.message,
        "hint": problem.hint,
    }


def problems_json(problems: Iterable[Problem]) -> str:
    return json.dumps([problem_dict(p) for p in problems], indent=2)


def problems_text(problems: Iterable[Problem]) -> str:
    """One line per problem: `file:line:col: path: severity: message (hint: ...)`."""
    return shown("\n".join(str(p) for p in problems))
