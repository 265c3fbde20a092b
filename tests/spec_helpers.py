"""Helpers shared by the spec tests: write a spec file, load it, collect its problems."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from reconciler.errors import Problem, SpecError
from reconciler.model import DesiredState
from reconciler.spec import load_spec


def write(folder: Path, text: str, name: str = "spec.yaml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def problems_of(paths: list[Path], *, strict_env: bool = True) -> tuple[Problem, ...]:
    with pytest.raises(SpecError) as caught:
        load_spec(paths, strict_env=strict_env)
    return caught.value.problems


def load(paths: list[Path], *, strict_env: bool = True) -> DesiredState:
    return load_spec(paths, strict_env=strict_env)
