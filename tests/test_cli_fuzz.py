"""Random command lines: podctl answers each with exit 0, 1 or 2 and a message, never a traceback.

Only commands that cannot start a long-lived process or touch RunPod are run with random
arguments (validate, sandbox status/env/stop/reset/fault against an empty data dir, --version);
every command, built or not, gets random arguments after `--help`, which click handles before
anything runs. `sandbox start` is only ever asked for its help.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.cli import podctl, run

ROOT = Path(__file__).resolve().parent.parent
GLOBAL = ["--lockfile", "--sandbox", "--api-url", "--format", "json", "text", "yaml"]
ODD = ["", "-", "--", "-x", "--no-such-option", "é", "\x00", "a b", "0", "-1", "1e9", "nan", "=="]
SANDBOX_SAFE = ["status", "env", "stop", "reset", "fault"]
FAULT_WORDS = [
    "show", "clear", "seed", "latency", "errors", "exhaust", "gpu-taken", "stock", "preempt",
    "lose-response", "--rate", "--probability", "--kind", "--count", "--retry-after", "--cloud",
    "--restore", "--free", "--on", "--unlimited", "--kill-pods", "429", "reset", "garbage",
    "SECURE", "MOON", "0.3", "2", "NVIDIA A40", "create",
]  # fmt: skip


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    base = tmp_path_factory.mktemp("cli-fuzz")
    (base / "ok.yaml").write_text(
        "version: 1\nstack: fuzz\ndefaults: {image: img, gpu: {type: [NVIDIA A40]}}\n"
        "pods: {box: {ports: [22/tcp]}}\n"
    )
    (base / "bad.yaml").write_text("version: 1\nstack: [\npods: 3\n")
    (base / "binary.yaml").write_bytes(b"\xff\xfe\x00garbage")
    (base / "dir").mkdir()
    yield base


def words(workdir: Path) -> list[str]:
    files = [str(workdir / n) for n in ("ok.yaml", "bad.yaml", "binary.yaml", "dir", "nope.yaml")]
    return [*GLOBAL, *ODD, *files, "-f", "--file", "-h", "--help", str(ROOT / "specs"), "x"]


def invoke(argv: list[str], workdir: Path) -> tuple[int, str]:
    """`run(argv)` with output captured; the sandbox data dir is an empty folder of our own."""
    runner = CliRunner()
    env = {
        "PODCTL_SANDBOX_DIR": str(workdir / "no-sandbox"),
        "PODCTL_DEBUG": None,
        "RUNPOD_API_KEY": None,
        "RUNPOD_API_BASE_URL": "http://127.0.0.1:9",  # nothing listens: never RunPod
        "HOME": str(workdir),
    }
    with runner.isolation(env=env) as (stdout, stderr, _output):
        code = run(argv)
    return code, stdout.getvalue().decode(errors="replace") + stderr.getvalue().decode(
        errors="replace"
    )


def check(argv: list[str], workdir: Path) -> None:
    code, output = invoke(argv, workdir)
    assert code in (0, 1, 2), (argv, code, output)
    assert "Traceback" not in output, (argv, output)
    assert "Internal error" not in output, (argv, output)
    if code != 0:
        assert output.strip(), (argv, "a failure must say why")


FUZZ = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@FUZZ
@given(data=st.data())
def test_validate_with_random_arguments(data: st.DataObject, workdir: Path) -> None:
    tokens = st.sampled_from(words(workdir))
    head = data.draw(st.lists(st.sampled_from(GLOBAL + ODD), max_size=2))
    files = st.lists(st.tuples(st.just("-f"), st.one_of(tokens, st.text(max_size=8))), max_size=2)
    tail = [t for pair in data.draw(files) for t in pair]
    tail += data.draw(st.lists(st.one_of(tokens, st.text(max_size=8)), max_size=4))
    check([*head, "validate", *tail], workdir)


@FUZZ
@given(data=st.data())
def test_sandbox_commands_with_random_arguments(data: st.DataObject, workdir: Path) -> None:
    command = data.draw(st.sampled_from(SANDBOX_SAFE))
    tokens = st.sampled_from([*FAULT_WORDS, *ODD, "--data-dir", str(workdir / "no-sandbox")])
    tail = data.draw(st.lists(tokens, max_size=5))
    argv = ["sandbox", command, *tail]
    if "--data-dir" in argv:
        # the data dir must stay ours: whatever follows --data-dir becomes our empty folder
        at = argv.index("--data-dir")
        argv = [*argv[: at + 1], str(workdir / "no-sandbox"), *argv[at + 2 :]]
    check(argv, workdir)


def all_commands() -> list[list[str]]:
    import click

    paths: list[list[str]] = [[]]
    ctx = click.Context(podctl)
    for name in podctl.list_commands(ctx):  # lazy groups (sandbox) included
        command = podctl.get_command(ctx, name)
        assert command is not None, name
        paths.append([name])
        if isinstance(command, click.Group):
            paths.extend([name, sub] for sub in command.commands)
            fault = command.commands.get("fault")
            if isinstance(fault, click.Group):
                paths.extend([name, "fault", sub] for sub in fault.commands)
    return paths


@FUZZ
@given(data=st.data())
def test_help_of_every_command_with_random_arguments(data: st.DataObject, workdir: Path) -> None:
    path = data.draw(st.sampled_from(all_commands()))
    flag = data.draw(st.sampled_from(["--help", "-h"]))
    tail = data.draw(st.lists(st.sampled_from(words(workdir) + FAULT_WORDS), max_size=4))
    check([*path, flag, *tail], workdir)


@pytest.mark.parametrize("path", all_commands(), ids=lambda p: " ".join(p) or "podctl")
def test_every_help_page_exits_0(path: list[str], workdir: Path) -> None:
    code, output = invoke([*path, "--help"], workdir)
    assert code == 0, output
    assert output.startswith("Usage: podctl")


@pytest.mark.parametrize("value", ["", "-", "\udcff.yaml", "no/such/dir/"])
def test_odd_spec_paths_are_problems_not_crashes(value: str, workdir: Path) -> None:
    code, output = invoke(["validate", "-f", value], workdir)
    assert code == 1, output
    assert "1 error(s) in the spec." in output


@pytest.mark.parametrize(
    "argv",
    [
        ["validate", "-f", "a\x00b.yaml"],
        ["--lockfile", "\x00", "validate", "-f", "x.yaml"],
        ["sandbox", "status", "--data-dir", "d\x00"],
    ],
)
def test_a_nul_byte_in_a_path_is_a_usage_error(argv: list[str], workdir: Path) -> None:
    code, output = invoke(argv, workdir)
    assert code == 2, output
    assert "is not a usable path: it holds a NUL byte." in output


def test_no_sandbox_is_a_clear_error(workdir: Path) -> None:
    code, output = invoke(["sandbox", "fault", "latency", "5"], workdir)
    assert code == 1
    assert output.startswith("Error: ") and "Traceback" not in output
