"""Request-body validation against the kept schema (`schema.json`): jsonschema's one home in
the sandbox; messages in RunPod's validator forms (runpod-rest-v2.md 4.2)."""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator, ValidationError


@lru_cache(maxsize=1)
def kept_schema() -> dict[str, Any]:
    text = resources.files("reconciler.sandbox.rest").joinpath("schema.json").read_text()
    data: dict[str, Any] = json.loads(text)
    return data


@lru_cache(maxsize=8)
def _validator(operation: str) -> Draft202012Validator:
    return Draft202012Validator(kept_schema()["operations"][operation])


def _where(error: ValidationError) -> str:
    out = "$"
    for part in error.absolute_path:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _quoted(values: Any) -> str:
    return ", ".join(f"'{v}'" for v in values)


def _message(error: ValidationError) -> str:
    """One line per violation, as RunPod's validator words it:
    `$: additional properties 'X' not allowed`, `$: missing property 'X'`,
    `$.action: value must be one of 'start', ...` (runpod-rest-v2.md 4.2)."""
    where, kind = _where(error), error.validator
    rule: Any = error.validator_value
    value: Any = error.instance
    schema: Any = error.schema
    if kind == "additionalProperties" and isinstance(value, dict):
        extra = [k for k in value if k not in (schema.get("properties") or {})]
        return f"{where}: additional properties {_quoted(extra)} not allowed"
    if kind == "required" and isinstance(value, dict):
        missing = [k for k in rule if k not in value]
        return f"{where}: missing property {_quoted(missing)}"
    if kind == "enum":
        return f"{where}: value must be one of {_quoted(rule)}"
    if kind == "type":
        wanted = " or ".join(rule) if isinstance(rule, list) else rule
        return f"{where}: got {_json_type(value)}, want {wanted}"
    if kind == "minimum":
        return f"{where}: must be >= {rule} but found {value}"
    if kind == "minLength":
        return f"{where}: length must be >= {rule}, but got {len(value)}"
    if kind == "pattern":
        return f"{where}: '{value}' does not match pattern '{rule}'"
    if kind == "maxItems":
        return f"{where}: maximum {rule} items required, but found {len(value)} items"
    return f"{where}: {error.message}"


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def violations(operation: str, body: Any) -> list[str]:
    """Every way `body` breaks the kept schema of `operation` (empty: valid)."""
    errors = sorted(_validator(operation).iter_errors(body), key=lambda e: list(e.absolute_path))
    return sorted({_message(e) for e in errors})
