"""The build-time validator (schema_compiled.py) matches the schema and agrees with jsonschema."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from reconciler.spec import schemagen
from reconciler.spec.schema import is_valid, schema

ROOT = Path(__file__).resolve().parent.parent

# Values near every edge the schema draws: bool vs int, 1.0 vs 1, a trailing newline against
# a `$` pattern, empty strings, enum members and near misses, duplicates for uniqueItems.
EDGE_VALUES: list[object] = [
    None,
    True,
    False,
    0,
    1,
    2,
    8,
    9,
    -1,
    1.0,
    0.5,
    100.0,
    100.5,
    10**20,
    "",
    "a",
    "abc\n",
    "trainer",
    "Trainer",
    "8888/http",
    "8888/http\n",
    "22/udp",
    "12.1",
    "12.1\n",
    "1h30m",
    "1h30m\n",
    "30",
    "/workspace",
    "/workspace\n",
    "workspace",
    "secure",
    "community",
    "all",
    "running",
    "stop",
    "on-change",
    "HF_TOKEN",
    "1BAD",
    [],
    [1, True],
    [1, 1.0],
    ["a", "a"],
    ["a", "b"],
    {},
    {"from_env": "HF_TOKEN"},
    {"from_env": "bad name"},
]


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if not isinstance(ref, str):
        return node
    resolved: Any = schema()
    for part in ref.split("#/", 1)[1].split("/"):
        resolved = resolved[part]
    return _resolve(resolved)


def _names(pattern_schema: dict[str, Any] | None, wild: bool) -> st.SearchStrategy[str]:
    good = st.sampled_from(["a", "trainer", "eval-1", "p0001"])
    if pattern_schema and "A-Z" in pattern_schema.get("pattern", ""):
        good = st.sampled_from(["HF_TOKEN", "a", "job_2"])
    bad = st.sampled_from(["", "1x", "Bad Name", "a\n", "x" * 61, "-a"])
    return st.one_of(good, bad) if pattern_schema and wild else good


def _edge() -> st.SearchStrategy[object]:
    return st.sampled_from(EDGE_VALUES)


def _fits(value: object, node: dict[str, Any]) -> bool:
    return not any(Draft202012Validator(node).iter_errors(value))


def _leaf(node: dict[str, Any]) -> st.SearchStrategy[object]:
    """Edge values that meet a scalar schema (there is at least one for each in podctl's)."""
    fitting = [value for value in EDGE_VALUES if _fits(value, node)]
    return st.sampled_from(fitting) if fitting else _edge()


def _value(node: Any, depth: int, wild: bool) -> st.SearchStrategy[object]:
    """Values shaped by `node`; when wild, edge values mixed in at every level."""
    if not isinstance(node, dict) or depth > 6:
        return _edge()
    node = _resolve(node)
    shaped: list[st.SearchStrategy[object]] = []
    for key in ("oneOf", "anyOf"):
        shaped += [_value(branch, depth + 1, wild) for branch in node.get(key, [])]
    kind = node.get("type")
    if kind == "object":
        shaped.append(_mapping(node, depth, wild))
    elif kind == "array":
        items = _value(node.get("items"), depth + 1, wild)
        shaped.append(st.lists(items, min_size=node.get("minItems", 0), max_size=3))
    elif not shaped:
        shaped.append(_leaf(node))
    if wild:
        shaped += [*shaped, *shaped, _edge()]
    return st.one_of(*shaped)


def _mapping(node: dict[str, Any], depth: int, wild: bool) -> st.SearchStrategy[object]:
    properties: dict[str, Any] = node.get("properties", {})
    required = set(node.get("required", ()))
    extra = node.get("additionalProperties")
    fields = {name: _value(sub, depth + 1, wild) for name, sub in properties.items()}
    known = st.fixed_dictionaries(
        {name: v for name, v in fields.items() if name in required},
        optional={name: v for name, v in fields.items() if name not in required},
    )
    if isinstance(extra, dict):
        names = _names(node.get("propertyNames"), wild)
        others = st.dictionaries(names, _value(extra, depth + 1, wild), max_size=3)
    elif wild:
        others = st.dictionaries(st.sampled_from(["imagee", "gpus", "x"]), _edge(), max_size=1)
    else:
        others = st.just({})
    return st.builds(lambda a, b: {**b, **a}, known, others)


documents = st.one_of(_value(schema(), 0, wild=False), _value(schema(), 0, wild=True))


def _jsonschema_valid(document: object) -> bool:
    return not any(Draft202012Validator(schema()).iter_errors(document))


def test_the_checked_in_validator_is_what_schemagen_writes_from_the_schema():
    generated = schemagen.generate(schemagen.SCHEMA_FILE.read_text(encoding="utf-8"))
    assert schemagen.OUTPUT_FILE.read_text(encoding="utf-8") == generated, (
        "run `python -m reconciler.spec.schemagen` after changing the schema"
    )


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents)
def test_the_compiled_validator_agrees_with_jsonschema(document):
    assert is_valid(document) == _jsonschema_valid(document)


def test_generated_documents_reach_both_verdicts():
    """The agreement test is only worth something if both answers occur often."""
    verdicts = []

    @settings(max_examples=300, deadline=None, database=None)
    @given(documents)
    def collect(document):
        verdicts.append(is_valid(document))

    collect()
    assert 0.05 < sum(verdicts) / len(verdicts) < 0.95


def test_the_example_specs_pass_both_validators():
    from reconciler.spec import yamlread
    from reconciler.spec.document import Document

    for path in sorted((ROOT / "specs").glob("*.yaml")):
        doc = Document(file=str(path), folder=path.parent)
        assert yamlread.parse_yaml(doc, path.read_text(encoding="utf-8")) == []
        assert is_valid(doc.data) and _jsonschema_valid(doc.data), path


def test_a_valid_spec_is_loaded_without_importing_jsonschema():
    code = (
        "import sys; from pathlib import Path; from reconciler.spec import load_stacks;"
        " load_stacks([Path('specs')]);"
        " print(sorted(m for m in ('jsonschema', 'fastjsonschema') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_a_broken_spec_is_worded_by_jsonschema_as_before(tmp_path):
    from reconciler.errors import SpecError
    from reconciler.spec import load_spec

    spec = tmp_path / "s.yaml"
    spec.write_text("version: 1\nstack: demo\npods:\n  a:\n    imagee: x\n    gpu: {count: 9}\n")
    try:
        load_spec([spec])
    except SpecError as exc:
        messages = sorted(p.message for p in exc.problems)
    else:
        raise AssertionError("the spec loaded")
    assert {"must be at most 8, got the number 9", "unknown key 'imagee'"} <= set(messages)


def test_schemagen_strips_annotations_not_properties_named_like_them():
    node = {
        "type": "object",
        "description": "drop me",
        "properties": {"description": {"type": "string", "title": "drop"}},
    }
    assert schemagen.strip_annotations(node) == {
        "type": "object",
        "properties": {"description": {"type": "string"}},
    }
    assert json.loads(json.dumps(schemagen.strip_annotations(schema())))  # still JSON
