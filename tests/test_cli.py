"""The command line skeleton: help, version, exit codes, usage errors."""

from __future__ import annotations

import re
import subprocess
import sys

from reconciler import __version__
from reconciler.cli import run


def test_version(capsys):
    assert run(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"podctl, version {__version__}"


def test_help_lists_commands(capsys):
    assert run(["--help"]) == 0
    out = capsys.readouterr().out
    for name in ("validate", "plan", "apply", "destroy", "status", "logs", "sandbox"):
        assert f"  {name} " in out


def test_usage_error_exits_2(capsys):
    assert run(["logs"]) == 2
    assert "Missing argument 'JOB|pod.NAME'" in capsys.readouterr().err


def test_unknown_command_exits_2(capsys):
    assert run(["frobnicate"]) == 2
    assert "No such command 'frobnicate'" in capsys.readouterr().err


def test_logs_of_a_job_the_spec_lacks_is_a_usage_error(capsys, tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text("version: 1\nstack: s\npods: {}\njobs: {}\n")
    assert run(["logs", "train", "--file", str(spec)]) == 2
    err = capsys.readouterr().err
    assert err == "Error: No job 'train' in stack s; its jobs: (none).\n"


def test_help_does_not_import_heavy_modules():
    code = (
        "import sys\n"
        "from reconciler.cli import run\n"
        "run(['--help'])\n"
        "heavy = {'httpx', 'asyncssh', 'jsonschema', 'deepdiff', 'yaml', 'reconciler.cli.sandbox'}"
        " & set(sys.modules)\n"
        "print(sorted(heavy))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_the_lazy_sandbox_group_lists_and_runs(capsys):
    assert run(["--help"]) == 0
    listing = capsys.readouterr().out
    assert re.search(r"\n  sandbox +Run a local RunPod-compatible API with SSH pods", listing)
    assert run(["sandbox", "--help"]) == 0
    assert "start" in capsys.readouterr().out
