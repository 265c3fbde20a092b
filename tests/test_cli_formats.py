"""Options each command offers: markdown only on `podctl plan` (others text|json), and no
--ssh-key on destroy."""

from __future__ import annotations

import click
import pytest

from reconciler.cli import podctl, run


def _commands(group: click.Group, ctx: click.Context, path: str) -> list[tuple[str, click.Command]]:
    out: list[tuple[str, click.Command]] = []
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if command is None:
            continue
        if isinstance(command, click.Group):
            out += _commands(command, ctx, f"{path} {name}")
        else:
            out.append((f"{path} {name}", command))
    return out


def _format_choices(command: click.Command) -> list[str] | None:
    for param in command.params:
        if "--format" in getattr(param, "opts", ()):
            assert isinstance(param.type, click.Choice)
            return list(param.type.choices)
    return None


ALL = _commands(podctl, click.Context(podctl), "podctl")


def test_only_plan_offers_markdown() -> None:
    offered = {path: _format_choices(c) for path, c in ALL}
    assert offered["podctl plan"] == ["text", "json", "markdown"]
    others = {p: f for p, f in offered.items() if f is not None and p != "podctl plan"}
    assert "podctl status" in others and "podctl apply" in others and "podctl reconcile" in others
    assert {p: f for p, f in others.items() if f != ["text", "json"]} == {}


@pytest.mark.parametrize("argv", [["plan"], ["status"], ["reconcile"], ["state", "list"]])
def test_help_lists_the_command_s_formats(capsys: pytest.CaptureFixture[str], argv) -> None:
    assert run([*argv, "--help"]) == 0
    out = capsys.readouterr().out
    want = "[text|json|markdown]" if argv == ["plan"] else "[text|json]"
    assert f"--format {want}" in out
    if argv != ["plan"]:
        assert "markdown" not in out


@pytest.mark.parametrize(
    ("argv", "command"),
    [
        (["status", "-f", "x.yaml", "--format", "markdown"], "podctl status"),
        (["apply", "-y", "--format", "markdown"], "podctl apply"),
        (["state", "list", "--format", "markdown"], "podctl state list"),
        (["--format", "markdown", "status", "-f", "x.yaml"], "podctl status"),
    ],
)
def test_markdown_elsewhere_is_a_usage_error_naming_plan(
    capsys: pytest.CaptureFixture[str], argv: list[str], command: str
) -> None:
    assert run(argv) == 2
    err = capsys.readouterr().err
    assert "markdown is for `podctl plan`" in err and f"`{command}` has text|json." in err
    assert "Traceback" not in err


def test_destroy_offers_no_ssh_key(capsys: pytest.CaptureFixture[str]) -> None:
    """destroy runs no job: --ssh-key (which only jobs and watchdogs use) is not its option."""
    assert run(["destroy", "--help"]) == 0
    assert "--ssh-key" not in capsys.readouterr().out
    assert run(["apply", "--help"]) == 0
    assert "--ssh-key" in capsys.readouterr().out
