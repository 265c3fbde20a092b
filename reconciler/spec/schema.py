"""Validate a document against schemas/podctl.schema.json and word each failure for a person.

jsonschema's only home. One problem per real mistake: for `oneOf` the branch matching the
value's type is explained, not every branch.
"""

from __future__ import annotations

import difflib
import functools
import importlib.resources
import json
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, cast

from reconciler.errors import Problem
from reconciler.spec.document import DocPath, Document, describe, shorten

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import ValidationError

_TYPE_WORDS = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "object": "a mapping",
    "array": "a list",
    "null": "null",
}


@functools.cache
def schema() -> dict[str, Any]:
    """The spec's JSON Schema, shipped inside the package."""
    resource = importlib.resources.files("reconciler").joinpath("schemas/podctl.schema.json")
    loaded: dict[str, Any] = json.loads(resource.read_text(encoding="utf-8"))
    return loaded


@functools.cache
def _validator() -> Draft202012Validator:
    from jsonschema import Draft202012Validator

    return Draft202012Validator(schema())


def is_valid(data: object) -> bool:
    """Whether `data` meets the schema, by the validator generated from it at build time.

    It agrees with jsonschema (a test checks both on many generated documents) and costs a
    fraction of it; jsonschema, imported only when this says no, words the problems.
    """
    from reconciler.spec import schema_compiled

    validate = cast("Callable[[object], object]", schema_compiled.validate)
    try:
        validate(data)
    except Exception:  # JsonSchemaValueException, or any doubt: jsonschema decides
        return False
    return True


def schema_problems(doc: Document) -> list[Problem]:
    """Every way `doc.data` breaks the schema, in words."""
    problems: list[Problem] = []
    if is_valid(doc.data):
        return problems
    for error in _validator().iter_errors(doc.data):
        problems.extend(_explain(error, doc))
    return problems


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`did you mean 'gpu'?` when a choice is close to `word`, else ''."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else ""


def _expected(types: str | Sequence[str]) -> str:
    names = [types] if isinstance(types, str) else list(types)
    return " or ".join(_TYPE_WORDS.get(name, name) for name in names)


def _quote_hint(doc: Document, path: DocPath, value: object) -> str:
    raw = doc.raw_scalars.get(path, str(value))
    if isinstance(value, bool):
        return f'quote it: "{shorten(raw)}" (YAML reads {shorten(raw)} as a boolean)'
    if isinstance(value, int | float):
        return f'quote it: "{shorten(raw)}"'
    return ""


def _explain(error: ValidationError, doc: Document) -> list[Problem]:
    path: DocPath = tuple(error.absolute_path)
    keyword = str(error.validator)
    value = error.instance
    bound: Any = error.validator_value
    subschema: dict[str, Any] = error.schema if isinstance(error.schema, dict) else {}
    parent_keyword = error.schema_path[-2] if len(error.schema_path) > 1 else None

    if keyword in ("oneOf", "anyOf"):
        return _explain_choice(error, doc)
    if keyword == "additionalProperties" and isinstance(value, dict):
        allowed = list(subschema.get("properties", {}))
        problems = []
        for key in value:
            if key in allowed:
                continue
            suggestion = did_you_mean(key, allowed)
            hint = suggestion or f"allowed here: {', '.join(allowed)}"
            problems.append(doc.problem((*path, key), f"unknown key {key!r}", hint, at_key=True))
        return problems
    if parent_keyword == "propertyNames":
        key_path = (*path, str(value))
        if keyword == "maxLength":
            message = f"the name {shorten(str(value))!r} is longer than {bound}"
            return [doc.problem(key_path, message, at_key=True)]
        rule = subschema.get("patternErrorMessage", f"names match {bound}")
        return [doc.problem(key_path, f"invalid name {shorten(str(value))!r}", rule, at_key=True)]
    if keyword == "required":
        missing = [k for k in bound if error.message.startswith(repr(k))]
        key = missing[0] if missing else "?"
        return [doc.problem(path, f"missing required key {key!r}", f"add `{key}:` here")]
    if keyword == "type":
        message = f"expected {_expected(bound)}, got {describe(value)}"
        hint = _quote_hint(doc, path, value) if "string" in bound else ""
        return [doc.problem(path, message, hint)]
    if keyword == "enum":
        choices = [str(choice) for choice in bound]
        message = f"expected one of {', '.join(choices)}; got {describe(value)}"
        hint = did_you_mean(value, choices) if isinstance(value, str) else ""
        return [doc.problem(path, message, hint)]
    if keyword == "const":
        expected = json.dumps(bound)
        return [doc.problem(path, f"expected {expected}, got {describe(value)}")]
    if keyword == "pattern":
        rule = subschema.get("patternErrorMessage", f"it must match {bound}")
        return [doc.problem(path, f"invalid value {shorten(str(value))!r}", rule)]
    return [doc.problem(path, _bound_message(keyword, bound, value))]


def _bound_message(keyword: str, bound: object, value: object) -> str:
    shown = describe(value)
    size = len(value) if isinstance(value, str | list | dict) else 0
    messages = {
        "minimum": f"must be at least {bound}, got {shown}",
        "maximum": f"must be at most {bound}, got {shown}",
        "exclusiveMinimum": f"must be more than {bound}, got {shown}",
        "exclusiveMaximum": f"must be less than {bound}, got {shown}",
        "minLength": "must not be empty" if bound == 1 else f"must be at least {bound} long",
        "maxLength": f"is {size} characters long; at most {bound} allowed",
        "minItems": "must not be empty" if bound == 1 else f"needs at least {bound} items",
        "maxItems": f"has {size} items; at most {bound} allowed",
        "uniqueItems": "lists the same item twice",
    }
    return messages.get(keyword, f"fails the schema rule {keyword!r}")


def _explain_choice(error: ValidationError, doc: Document) -> list[Problem]:
    """Explain the branch whose type fits the value; if none fits, say what types would."""
    branches: dict[int, list[ValidationError]] = {}
    for sub in error.context or ():
        index = sub.relative_schema_path[0]
        if isinstance(index, int):
            branches.setdefault(index, []).append(sub)
    fitting = [
        errors
        for _, errors in sorted(branches.items())
        if not any(_is_shape_mismatch(sub) for sub in errors)
    ]
    if fitting:
        return [problem for sub in fitting[0] for problem in _explain(sub, doc)]
    path: DocPath = tuple(error.absolute_path)
    choices: list[dict[str, Any]] = list(error.validator_value)  # type: ignore[arg-type]
    options = [_branch_words(branch) for branch in choices]
    message = f"expected {_join_or(options)}, got {describe(error.instance)}"
    wants_string = any(branch.get("type") == "string" for branch in choices)
    hint = _quote_hint(doc, path, error.instance) if wants_string else ""
    return [doc.problem(path, message, hint)]


def _is_shape_mismatch(error: ValidationError) -> bool:
    return error.validator in ("type", "const") and not error.relative_path


def _branch_words(branch: dict[str, Any]) -> str:
    if "const" in branch:
        return json.dumps(branch["const"])
    if "type" in branch:
        return _expected(branch["type"])
    return "another form"


def _join_or(words: list[str]) -> str:
    if len(words) <= 2:
        return " or ".join(words)
    return ", ".join(words[:-1]) + " or " + words[-1]
