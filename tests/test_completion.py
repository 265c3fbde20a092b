"""Shell completion (bash, zsh, fish) of commands and of the spec's pod and job names."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _complete(words: str, cwd: Path, shell: str = "bash") -> list[str]:
    env = {
        **os.environ,
        "_PODCTL_COMPLETE": f"{shell}_complete",
        "COMP_WORDS": words,
        "COMP_CWORD": str(len(words.split(" ")) - 1),
    }
    code = "import sys; from reconciler.cli import podctl; podctl.main(prog_name='podctl')"
    r = subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert "Traceback" not in r.stderr, r.stderr
    return [line.split(",", 1)[-1] for line in r.stdout.splitlines() if line]


def test_pod_and_job_names_complete_from_the_default_spec(tmp_path: Path) -> None:
    (tmp_path / "podctl.yaml").write_text((REPO / "specs" / "quickstart.yaml").read_text())
    assert _complete("podctl ssh ", tmp_path) == ["pod.box"]
    assert _complete("podctl logs ", tmp_path) == ["hello", "count", "pod.box"]
    assert _complete("podctl logs c", tmp_path) == ["count"]
    assert _complete("podctl plan --target ", tmp_path) == ["pod.box"]
    assert _complete("podctl state show ", tmp_path) == ["pod.box"]
    assert "apply" in _complete("podctl ap", tmp_path)


def test_names_come_from_the_spec_named_by_f(tmp_path: Path) -> None:
    spec = REPO / "specs" / "batch.yaml"
    assert _complete(f"podctl ssh -f {spec} ", tmp_path)[0].startswith("pod.")


def test_a_missing_or_broken_spec_completes_nothing_quietly(tmp_path: Path) -> None:
    assert _complete("podctl ssh ", tmp_path) == []
    (tmp_path / "podctl.yaml").write_text("version: [\n")
    assert _complete("podctl logs ", tmp_path) == []


def test_zsh_and_fish_scripts_are_served() -> None:
    for shell in ("bash", "zsh", "fish"):
        r = subprocess.run(
            [
                sys.executable,
                "-c",
                "from reconciler.cli import podctl; podctl.main(prog_name='podctl')",
            ],
            env={**os.environ, "_PODCTL_COMPLETE": f"{shell}_source"},
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        assert "_podctl_completion" in r.stdout, (shell, r.stdout, r.stderr)


def _help(*command: str) -> str:
    from click.testing import CliRunner

    from reconciler.cli import podctl

    result = CliRunner().invoke(podctl, [*command, "--help"])
    assert result.exit_code == 0, result.output
    return result.output


def test_each_commands_help_shows_only_the_options_it_takes() -> None:
    validate = _help("validate")
    assert "--format" in validate and "-f, --file" in validate
    for other in ("--lockfile", "--sandbox", "--api-url", "--ssh-key", "--lock-timeout"):
        assert other not in validate
    gpus = _help("gpus")
    assert "--sandbox" in gpus and "--lockfile" not in gpus and "--ssh-key" not in gpus
    status = _help("status")
    assert "--ssh-key" not in status and "--lock-timeout" not in status
    assert "--ssh-key" not in _help("plan")
    assert "--format" not in _help("ssh") and "--ssh-key" in _help("ssh")
    state_list = _help("state", "list")
    assert "--sandbox" not in state_list and "--lockfile" in state_list
    apply = _help("apply")
    assert "--ssh-key" in apply and "--lock-timeout" in apply  # apply takes them all
