"""examples/ci: the GitHub Actions workflow parses, and has the steps its README promises."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

CI = Path(__file__).resolve().parent.parent / "examples" / "ci"


def workflow() -> dict[Any, Any]:
    loaded = yaml.safe_load((CI / "podctl-plan-apply.yml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def steps(job: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = workflow()["jobs"][job]["steps"]
    return found


def step(job: str, text: str) -> dict[str, Any]:
    """The one step of `job` whose `run` (or `uses`) holds `text`."""
    hits = [s for s in steps(job) if text in str(s.get("run", "")) + str(s.get("uses", ""))]
    assert len(hits) == 1, (job, text, hits)
    return hits[0]


def test_triggers_and_permissions():
    doc = workflow()
    triggers: dict[str, Any] = doc[True] if True in doc else doc["on"]  # YAML 1.1: `on` is True
    assert set(triggers) == {"pull_request", "push", "workflow_dispatch"}
    assert triggers["push"]["branches"] == ["main"]
    assert doc["permissions"] == {"contents": "read"}
    assert doc["jobs"]["plan"]["permissions"]["pull-requests"] == "write"
    assert "pull-requests" not in doc["jobs"]["apply"]["permissions"]


def test_applies_never_overlap_and_are_never_cancelled():
    group = workflow()["concurrency"]
    expression = group["group"]
    assert "'podctl-apply'" in expression and "podctl-plan-" in expression
    # cancel only on pull requests: an apply is never stopped half-way
    assert group["cancel-in-progress"] == "${{ github.event_name == 'pull_request' }}"


def test_plan_posts_markdown_and_treats_exit_2_as_success():
    plan = step("plan", "podctl plan")
    assert plan["id"] == "plan"
    run = plan["run"]
    assert '-f "$SPECS"' in run and "--format markdown" in run and "--detailed-exitcode" in run
    assert "set +e" in run and 'echo "exitcode=$code" >> "$GITHUB_OUTPUT"' in run
    assert plan["env"]["RUNPOD_API_KEY"] == "${{ secrets.RUNPOD_API_KEY }}"
    comment = step("plan", "actions/github-script")
    assert comment["if"] == "always() && steps.plan.outputs.exitcode != ''"
    assert "plan.md" in comment["with"]["script"]
    fail = steps("plan")[-1]
    assert fail["if"] == "steps.plan.outputs.exitcode != '0' && steps.plan.outputs.exitcode != '2'"
    assert fail["run"] == "exit 1"
    assert workflow()["env"]["SPECS"] == "specs/"


def test_apply_uses_the_lock_timeout_secrets_and_keeps_the_lockfile():
    doc = workflow()
    assert doc["jobs"]["apply"]["if"] == (
        "github.event_name == 'push' || github.event_name == 'workflow_dispatch'"
    )
    apply = step("apply", "podctl apply")
    assert apply["run"] == (
        'podctl apply -y -f "$SPECS" --lockfile "$LOCKFILE" --lock-timeout 10m ${SSH_KEY_ARGS:-}'
    )
    assert apply["env"]["RUNPOD_API_KEY"] == "${{ secrets.RUNPOD_API_KEY }}"
    assert apply["env"]["HF_TOKEN"] == "${{ secrets.HF_TOKEN }}"  # a from_env secret
    names = [s.get("name", s.get("uses")) for s in steps("apply")]
    fetch = names.index("Fetch the lockfile of the last apply on main")
    assert fetch < names.index("podctl apply")
    upload = step("apply", "actions/upload-artifact")
    assert names.index("podctl apply") < steps("apply").index(upload)
    assert upload["if"].startswith("always()")
    assert upload["with"]["name"] == "${{ env.LOCK_ARTIFACT }}"
    assert upload["with"]["path"] == "${{ env.LOCKFILE }}"
    assert "gh run download" in steps("apply")[fetch]["run"]
    assert names.index("Restore the SSH key for jobs (stacks with jobs only)") < names.index(
        "podctl apply"
    )


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
@pytest.mark.parametrize("secret", ["", "-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END"])
def test_the_ssh_key_step_writes_a_0600_key_only_when_the_secret_is_set(
    tmp_path: Path, secret: str
) -> None:
    restore = step("apply", "PODCTL_SSH_KEY")
    env_file = tmp_path / "github_env"
    env_file.write_text("")
    env = {"PATH": "/usr/bin:/bin", "RUNNER_TEMP": str(tmp_path), "GITHUB_ENV": str(env_file)}
    env["PODCTL_SSH_KEY"] = secret
    subprocess.run(["bash", "-e", "-c", restore["run"]], env=env, check=True)
    key = tmp_path / "podctl_ssh_key"
    if not secret:
        assert not key.exists() and env_file.read_text() == ""
        return
    assert key.read_text() == secret + "\n"
    assert key.stat().st_mode & 0o777 == 0o600
    assert env_file.read_text() == f"SSH_KEY_ARGS=--ssh-key {key}\n"


@pytest.mark.parametrize("job", ["plan", "apply"])
def test_every_shell_step_parses(job: str, tmp_path: Path):
    for index, item in enumerate(steps(job)):
        if "run" not in item:
            continue
        script = tmp_path / f"{job}-{index}.sh"
        script.write_text(item["run"])
        result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
        assert result.returncode == 0, (item.get("name"), result.stderr)


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_the_comment_script_parses(tmp_path: Path):
    script = step("plan", "actions/github-script")["with"]["script"]
    wrapped = tmp_path / "comment.js"
    wrapped.write_text(f"async function run(github, context) {{\n{script}\n}}\n")
    result = subprocess.run(["node", "--check", str(wrapped)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_readme_covers_state_and_secrets():
    text = (CI / "README.md").read_text()
    for needed in ("adopts them", "artifact", "commit it", "flock", "concurrency", "from_env"):
        assert needed in text, needed


def test_the_team_workflow_keeps_state_in_postgresql_and_its_shells_parse(tmp_path: Path):
    doc = yaml.safe_load((CI / "podctl-team.yml").read_text())
    for job in ("plan", "apply"):
        found = doc["jobs"][job]["steps"]
        assert not [s for s in found if "upload-artifact" in str(s.get("uses", ""))]
        runs = [
            s
            for s in found
            if "podctl plan" in str(s.get("run")) or "podctl apply" in str(s.get("run"))
        ]
        assert len(runs) == 1
        assert runs[0]["env"]["PODCTL_STATE"] == "${{ secrets.PODCTL_DATABASE_URL }}"
        assert "--lock-timeout" in runs[0]["run"] and "--lockfile" not in runs[0]["run"]
        for index, item in enumerate(found):
            if "run" in item:
                script = tmp_path / f"team-{job}-{index}.sh"
                script.write_text(item["run"])
                result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
                assert result.returncode == 0, (item.get("name"), result.stderr)
