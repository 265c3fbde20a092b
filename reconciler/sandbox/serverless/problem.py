"""REST v2 errors: RFC 9457 problem details `{title, status, detail, errors?}` (rest-v2 §4.1)."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any


class Problem(Exception):
    """An error answer of the control plane; `errors` lists validation failures (422)."""

    def __init__(
        self, status: int, detail: str, errors: list[str] | None = None, allow: str = ""
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = errors
        self.allow = allow  # the Allow header of a 405

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "title": HTTPStatus(self.status).phrase,
            "status": self.status,
            "detail": self.detail,
        }
        if self.errors:
            body["errors"] = self.errors
        return body


def invalid(errors: list[str]) -> Problem:
    """422 with the validator's messages, sorted (rest-v2 §4.2: "Request validation failed.")."""
    return Problem(422, "Request validation failed.", sorted(set(errors)))
