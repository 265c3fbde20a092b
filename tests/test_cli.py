"""The command line skeleton: help, version, exit codes, commands not built yet."""

from __future__ import annotations

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
    assert run(["validate"]) == 2
    assert "Missing option '-f' / '--file'" in capsys.readouterr().err


def test_unknown_command_exits_2(capsys):
    assert run(["frobnicate"]) == 2
    assert "No such command 'frobnicate'" in capsys.readouterr().err


def test_command_not_built_says_so_and_exits_1(capsys):
    assert run(["logs", "train", "-f"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("Error: `podctl logs` is not available in podctl")
    assert "Traceback" not in err


def test_help_does_not_import_heavy_modules():
    code = (
        "import sys\n"
        "from reconciler.cli import run\n"
        "run(['--help'])\n"
        "heavy = {'httpx', 'asyncssh', 'jsonschema', 'deepdiff', 'yaml'} & set(sys.modules)\n"
        "print(sorted(heavy))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip().splitlines()[-1] == "[]"
