"""Each third-party library of the spec loader has one home module."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "reconciler"
HOMES = {"yaml": "spec/yamlread.py", "jsonschema": "spec/schema.py"}


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize(("library", "home"), sorted(HOMES.items()))
def test_library_is_imported_only_in_its_home(library, home):
    importers = sorted(
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if library in imported_roots(path)
    )
    assert importers == [home]


def test_the_schema_ships_inside_the_package_and_the_top_level_link_points_to_it():
    schema = PACKAGE / "schemas" / "podctl.schema.json"
    assert schema.is_file()
    assert (PACKAGE.parent / "schemas" / "podctl.schema.json").resolve() == schema.resolve()
