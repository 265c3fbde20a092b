"""Random documents and bytes: the loader returns a DesiredState or raises SpecError, only."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.errors import SpecError
from reconciler.model import DesiredState
from reconciler.spec import load_spec, load_stacks

SPEC_WORDS = [
    "version", "stack", "defaults", "pods", "jobs", "image", "cloud", "gpu", "type", "count",
    "spot", "bid_per_gpu", "disk", "container_gb", "volume_gb", "mount", "ports", "env",
    "from_env", "min_vcpu", "cuda", "state", "max_lifetime", "after_jobs", "protect", "pod",
    "run", "needs", "timeout", "retries", "rerun", "upload", "download", "from", "to", "box",
    "hello", "22/tcp", "running", "absent", "1h", "0s", "PODCTL_X", "HOME",
]  # fmt: skip

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(SPEC_WORDS),
    st.text(max_size=20),
)
keys = st.one_of(st.sampled_from(SPEC_WORDS), st.text(max_size=10))
documents = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=5)),
    max_leaves=30,
)
BASE: dict[str, Any] = {
    "version": 1,
    "stack": "demo",
    "defaults": {"image": "img", "gpu": {"type": ["A", "B"]}},
    "pods": {"box": {"ports": ["22/tcp"], "env": {"A": "1"}}},
    "jobs": {"hello": {"pod": "box", "run": "x"}, "bye": {"pod": "box", "run": "y"}},
}
paths_in_base = st.sampled_from(
    [
        ("version",), ("stack",), ("defaults", "gpu"), ("defaults", "image"), ("pods", "box"),
        ("pods", "box", "ports"), ("pods", "box", "env"), ("pods", "box", "env", "A"),
        ("pods", "box", "spot"), ("pods", "box", "disk"), ("pods", "box", "max_lifetime"),
        ("jobs", "hello"), ("jobs", "hello", "needs"), ("jobs", "bye", "needs"),
        ("jobs", "hello", "upload"), ("jobs", "hello", "env"), ("jobs", "bye", "timeout"),
    ]
)  # fmt: skip
FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def check_loader_on(folder: Path, content: bytes) -> None:
    spec = folder / "spec.yaml"
    spec.write_bytes(content)
    for strict in (True, False):
        try:
            assert isinstance(load_spec([spec], strict_env=strict), DesiredState)
            load_stacks([spec], strict_env=strict)
        except SpecError as exc:
            assert exc.problems
            for problem in exc.problems:
                assert problem.file == str(spec)
                assert problem.line >= 0 and problem.col >= 0
                str(problem)


def mutate(path: tuple[str, ...], value: object) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(json.dumps(BASE))
    target = document
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    return document


@FUZZ
@given(document=documents)
def test_random_yaml_documents(tmp_path_factory, document):
    text = yaml.safe_dump(document, allow_unicode=True)
    check_loader_on(tmp_path_factory.mktemp("yaml"), text.encode())


@FUZZ
@given(document=documents)
def test_random_json_documents(tmp_path_factory, document):
    check_loader_on(tmp_path_factory.mktemp("json"), json.dumps(document).encode())


@FUZZ
@given(path=paths_in_base, value=documents)
def test_valid_spec_with_one_random_value(tmp_path_factory, path, value):
    text = yaml.safe_dump(mutate(path, value), allow_unicode=True)
    check_loader_on(tmp_path_factory.mktemp("mutated"), text.encode())


@FUZZ
@given(content=st.binary(max_size=300))
def test_random_bytes(tmp_path_factory, content):
    check_loader_on(tmp_path_factory.mktemp("bytes"), content)


@FUZZ
@given(content=st.text(alphabet=st.sampled_from(list("ab:- \n[]{},&*!|>'\"#%@`?")), max_size=80))
def test_random_yaml_punctuation(tmp_path_factory, content):
    check_loader_on(tmp_path_factory.mktemp("text"), content.encode())


def test_the_base_document_is_valid(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(BASE))
    assert set(load_spec([spec]).jobs) == {"hello", "bye"}
