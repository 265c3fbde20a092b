"""`podctl validate`: exit codes, text and JSON output, no tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from reconciler.cli import run
from tests.spec_helpers import write

SPECS = Path(__file__).resolve().parent.parent / "specs"
BROKEN = """
version: 1
stack: demo
pods:
  box:
    image: img
    gpu: {type: A4000, count: two}
    gpus: 1
"""


def test_valid_specs_exit_0_and_say_so(capsys, monkeypatch):
    monkeypatch.delenv("DEV_JUPYTER_PASSWORD", raising=False)
    assert run(["validate", "-f", str(SPECS)]) == 0
    captured = capsys.readouterr()
    assert "Valid: stack 'quickstart', 1 pod(s), 2 job(s) in 1 file(s)." in captured.out
    assert "warning: the environment variable DEV_JUPYTER_PASSWORD is not set" in captured.err


def test_broken_spec_exits_1_with_one_line_per_problem(tmp_path, capsys):
    spec = write(tmp_path, BROKEN)
    assert run(["validate", "-f", str(spec)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"{spec}:6:31: pods.box.gpu.count: error: expected an integer, got the string 'two'",
        f"{spec}:7:5: pods.box.gpus: error: unknown key 'gpus' (hint: did you mean 'gpu'?)",
        "2 error(s) in the spec.",
    ]


def test_json_output_is_a_list_of_problem_objects(tmp_path, capsys):
    spec = write(tmp_path, BROKEN)
    assert run(["validate", "--format", "json", "-f", str(spec)]) == 1
    problems = json.loads(capsys.readouterr().out)
    assert problems[1] == {
        "severity": "error",
        "file": str(spec),
        "line": 7,
        "col": 5,
        "path": "pods.box.gpus",
        "message": "unknown key 'gpus'",
        "hint": "did you mean 'gpu'?",
    }
    assert len(problems) == 2


def test_json_output_of_a_valid_spec_is_its_warnings(capsys):
    assert run(["validate", "--format", "json", "-f", str(SPECS / "quickstart.yaml")]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_missing_file_is_a_clear_message_and_exit_1(tmp_path, capsys):
    missing = tmp_path / "nope.yaml"
    assert run(["validate", "-f", str(missing)]) == 1
    err = capsys.readouterr().err
    assert f"{missing}: error: no such file or folder" in err
    assert "Traceback" not in err


def test_no_traceback_for_hostile_files_in_a_real_process(tmp_path):
    (tmp_path / "junk.yaml").write_bytes(bytes(range(256)))
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    (tmp_path / "deep.yaml").write_text("a: " + "[" * 3000 + "\n")
    result = subprocess.run(
        [sys.executable, "-m", "reconciler", "validate", "-f", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stdout + result.stderr
    assert "3 error(s) in the spec" in result.stderr
