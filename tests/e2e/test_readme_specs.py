"""Every spec the README shows and every spec in specs/ plans on the sandbox, without errors."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.conftest import Podctl

ROOT = Path(__file__).resolve().parents[2]
FENCE = re.compile(r"^```yaml\n(.*?)^```", re.DOTALL | re.MULTILINE)


def readme_blocks() -> list[str]:
    return FENCE.findall((ROOT / "README.md").read_text(encoding="utf-8"))


SPECS = sorted(p.name for p in (ROOT / "specs").glob("*.yaml"))
CASES = [f"README.md#{i + 1}" for i in range(len(readme_blocks()))] + [
    f"specs/{name}" for name in SPECS
]


def test_there_is_something_to_check() -> None:
    assert len(readme_blocks()) >= 1
    assert {"quickstart.yaml", "batch.yaml", "dev-pod.yaml", "spot.yaml"} <= set(SPECS)


def _walk(node: Any) -> list[Any]:
    out = [node]
    if isinstance(node, dict):
        for value in node.values():
            out += _walk(value)
    elif isinstance(node, list):
        for value in node:
            out += _walk(value)
    return out


def _needs(spec: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Create what the spec needs that is not there: upload sources, from_env variables."""
    doc = yaml.safe_load(spec.read_text(encoding="utf-8"))
    for node in _walk(doc):
        if isinstance(node, dict) and isinstance(node.get("from_env"), str):
            monkeypatch.setenv(node["from_env"], "a-value")
    for job in (doc.get("jobs") or {}).values():
        for upload in job.get("upload") or []:
            source = spec.parent / upload["from"]
            if source.exists():
                continue
            if source.suffix:
                source.parent.mkdir(parents=True, exist_ok=True)
                source.write_text("print('hello')\n")
            else:
                source.mkdir(parents=True)
                (source / "prep.py").write_text("print('hello')\n")


@pytest.mark.parametrize("case", CASES)
def test_the_spec_plans_on_the_sandbox(
    case: str, podctl: Podctl, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "case"
    if case.startswith("README.md#"):
        folder.mkdir()
        spec = folder / "podctl.yaml"
        spec.write_text(readme_blocks()[int(case.split("#")[1]) - 1], encoding="utf-8")
    else:
        shutil.copytree(ROOT / "specs", folder, ignore=shutil.ignore_patterns("results", "*.lock*"))
        spec = folder / Path(case).name
    _needs(spec, monkeypatch)
    result = podctl(
        "plan", "--detailed-exitcode", "-f", str(spec), "--lockfile", str(tmp_path / "x.lock")
    )
    assert result.code in (0, 2), result.out + result.err
    assert not [line for line in result.out.splitlines() if line.startswith("Error:")]
    assert podctl.mutations() == {}
