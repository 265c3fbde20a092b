"""Specs are read without positions first; a problem of any kind is still located exactly."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.errors import SpecError
from reconciler.spec import load_spec, load_stacks, yamlread
from reconciler.spec.document import Document

SPEC = """\
version: 1
stack: demo
pods:
  trainer:
    image: runpod/base:0.6.2-cpu
    gpu: {type: NVIDIA RTX A4000, count: 1}
    env:
      BIG: 1.50
      FLAG: 0x10
      TOKEN: {from_env: FAST_READ_UNSET_TOKEN}
"""


def _doc(text: str, marks: bool) -> tuple[Document, list[object]]:
    doc = Document(file="s.yaml", folder=Path())
    return doc, list(yamlread.parse_yaml(doc, text, marks=marks))


def test_reading_without_marks_gives_the_same_data_and_raw_numbers():
    fast, fast_problems = _doc(SPEC, marks=False)
    full, full_problems = _doc(SPEC, marks=True)
    assert fast_problems == full_problems == []
    assert fast.data == full.data
    assert fast.raw_scalars == full.raw_scalars
    assert fast.raw_scalars[("pods", "trainer", "env", "BIG")] == "1.50"
    assert fast.key_marks == {} and fast.value_marks == {}
    assert full.value_marks[("pods", "trainer", "env", "BIG")].line == 8


def test_a_duplicate_key_is_found_without_marks_too():
    _, problems = _doc("version: 1\nstack: a\nstack: b\n", marks=False)
    assert len(problems) == 1


def test_numbers_keep_their_written_text(tmp_path, monkeypatch):
    monkeypatch.setenv("FAST_READ_UNSET_TOKEN", "x")
    spec = tmp_path / "s.yaml"
    spec.write_text(SPEC)
    pod = load_spec([spec]).pods["trainer"]
    assert pod.env["BIG"] == "1.50"
    assert pod.env["FLAG"] == "0x10"


def test_a_warning_is_located_at_its_line_and_column(tmp_path, monkeypatch):
    monkeypatch.delenv("FAST_READ_UNSET_TOKEN", raising=False)
    spec = tmp_path / "s.yaml"
    spec.write_text(SPEC)
    (state,) = load_stacks([spec])
    assert [(w.line, w.col) for w in state.warnings] == [(10, 25)]


def test_an_error_found_late_is_located(tmp_path, monkeypatch):
    monkeypatch.delenv("FAST_READ_UNSET_TOKEN", raising=False)
    spec = tmp_path / "s.yaml"
    spec.write_text(SPEC)
    with pytest.raises(SpecError) as caught:
        load_spec([spec])
    assert [(p.line, p.col, p.path) for p in caught.value.problems] == [
        (10, 25, "pods.trainer.env.TOKEN.from_env")
    ]


def _shallow_by_every_character(text: str) -> bool:
    """The check as first written: every character walked in Python (slow on big specs)."""
    depth = deepest = 0
    for ch in text:
        if ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    if deepest > yamlread.MAX_DEPTH // 2:
        return False
    limit = 4 * yamlread.MAX_DEPTH
    return all(len(line) - len(line.lstrip(" ")) <= limit for line in text.splitlines())


_PIECES = st.sampled_from(
    ["[", "]", "{", "}", "a", ": ", " " * 50, " " * 201, "\n", "\r", "\r\n", "\x85", "\u2028"]
)


@settings(max_examples=800, deadline=None)
@given(st.lists(_PIECES, max_size=120).map("".join))
def test_the_fast_depth_check_agrees_with_walking_every_character(text):
    assert yamlread._shallow(text) == _shallow_by_every_character(text)


def test_the_depth_check_refuses_deep_brackets_and_deep_indentation():
    assert not yamlread._shallow("a: " + "[" * 26 + "]" * 26)
    assert yamlread._shallow("a: " + "[" * 25 + "]" * 25)
    assert not yamlread._shallow("a:\n" + " " * 201 + "b: 1\n")
    assert not yamlread._shallow("a:\r" + " " * 201 + "b: 1\n")
