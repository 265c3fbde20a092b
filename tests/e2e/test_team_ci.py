"""examples/ci/podctl-team.yml, run for real: its steps' scripts, as two CI runners (two
fresh checkouts) sharing the stack's state in PostgreSQL, against the sandbox."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from reconciler.ssh import ensure_stack_key
from tests.e2e.conftest import Sandbox
from tests.postgres import PASSWORD, pg_server, pg_url

__all__ = ["pg_server", "pg_url"]

WORKFLOW = Path(__file__).resolve().parents[2] / "examples" / "ci" / "podctl-team.yml"
SPEC = """\
version: 1
stack: ci
pods:
  box:
    image: img:1
    gpu: {type: NVIDIA RTX A4000}
    ports: [22/tcp]
jobs:
  once:
    pod: box
    run: echo ran >> LEDGER
"""


def _step(job: str, name: str) -> dict[str, Any]:
    steps: list[dict[str, Any]] = yaml.safe_load(WORKFLOW.read_text())["jobs"][job]["steps"]
    (found,) = [s for s in steps if s.get("name") == name]
    return found


def _runner(sb: Sandbox, pg_url: str, tmp_path: Path, name: str, key_text: str) -> dict[str, Any]:
    """A fresh checkout, and the environment GitHub gives the steps (secrets filled in)."""
    checkout = tmp_path / name
    (checkout / "specs").mkdir(parents=True)
    (checkout / "specs" / "ci.yaml").write_text(SPEC.replace("LEDGER", str(tmp_path / "ledger")))
    temp = tmp_path / f"{name}-temp"
    temp.mkdir()
    base = {k: v for k, v in os.environ.items() if not k.startswith(("PODCTL_", "RUNPOD_"))}
    env = {
        **base,
        "PATH": f"{Path(sys.executable).parent}:{base.get('PATH', '/usr/bin:/bin')}",
        "HOME": str(tmp_path / f"{name}-home"),
        "SPECS": "specs/",
        "RUNNER_TEMP": str(temp),
        "GITHUB_ENV": str(temp / "github_env"),
        "GITHUB_STEP_SUMMARY": str(temp / "summary.md"),
        "PODCTL_POLL_INTERVAL": "0.02",
        # the secrets
        "RUNPOD_API_KEY": sb.key,
        "RUNPOD_API_BASE_URL": sb.url,
        "PODCTL_STATE": pg_url,
        "KEY_TEXT": key_text,
        "HF_TOKEN": "unused",
    }
    return {"cwd": checkout, "env": env}


def _run(runner: dict[str, Any], job: str, name: str) -> subprocess.CompletedProcess[str]:
    step = _step(job, name)
    env = dict(runner["env"])
    github_env = Path(env["GITHUB_ENV"])
    if github_env.exists():  # what earlier steps exported
        for line in github_env.read_text().splitlines():
            name, _, value = line.partition("=")
            env[name] = value
    return subprocess.run(
        ["bash", "-e", "-c", step["run"]],
        cwd=runner["cwd"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_two_ci_runners_share_the_stack_through_postgresql(
    sb: Sandbox, pg_url: str, tmp_path: Path
) -> None:
    key = tmp_path / "team_key"
    ensure_stack_key(key)
    key_text = key.read_text().strip()
    first = _runner(sb, pg_url, tmp_path, "run1", key_text)
    assert (
        _run(
            first, "apply", "Restore the team's SSH key for jobs (stacks with jobs only)"
        ).returncode
        == 0
    )
    restored = Path(first["env"]["RUNNER_TEMP"]) / "podctl_ssh_key"
    assert restored.stat().st_mode & 0o777 == 0o600
    applied = _run(first, "apply", "podctl apply")
    assert applied.returncode == 0, applied.stderr
    assert (tmp_path / "ledger").read_text() == "ran\n"
    assert not list(first["cwd"].rglob("*.podctl.lock"))  # the state is in the database

    second = _runner(sb, pg_url, tmp_path, "run2", key_text)  # a fresh machine
    plan = _run(second, "plan", "podctl plan")
    assert plan.returncode == 0, plan.stderr
    summary = Path(second["env"]["GITHUB_STEP_SUMMARY"]).read_text()
    assert "No changes" in summary
    _run(second, "apply", "Restore the team's SSH key for jobs (stacks with jobs only)")
    again = _run(second, "apply", "podctl apply")
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "ledger").read_text() == "ran\n"  # nothing ran again
    for text in (applied.stdout, applied.stderr, plan.stdout, plan.stderr, summary):
        assert PASSWORD not in text
