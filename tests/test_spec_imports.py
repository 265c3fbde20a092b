"""Each third-party library of the spec loader has one home module."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "reconciler"
# the sandbox is a separate program (an emulator of RunPod): it keeps its own one home
HOMES = {
    "yaml": ["spec/yamlread.py"],
    "jsonschema": ["sandbox/rest/validate.py", "spec/schema.py"],
    "fastjsonschema": ["spec/schemagen.py"],  # build time only: it writes schema_compiled.py
}


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
    assert importers == home


def test_the_schema_ships_inside_the_package_and_the_top_level_link_points_to_it():
    schema = PACKAGE / "schemas" / "podctl.schema.json"
    assert schema.is_file()
    assert (PACKAGE.parent / "schemas" / "podctl.schema.json").resolve() == schema.resolve()


def test_every_schema_property_has_a_description():
    import json

    schema = json.loads((PACKAGE / "schemas" / "podctl.schema.json").read_text())
    undocumented = []

    def walk(node: object, where: str) -> None:
        if isinstance(node, dict):
            for name, sub in node.get("properties", {}).items():
                if "description" not in sub:
                    undocumented.append(f"{where}.{name}")
            for key, sub in node.items():
                walk(sub, f"{where}.{key}")
        elif isinstance(node, list):
            for index, sub in enumerate(node):
                walk(sub, f"{where}[{index}]")

    walk(schema, "$")
    assert undocumented == []
    assert schema["additionalProperties"] is False
    assert schema["$defs"]["podFields"]["additionalProperties"] is False
