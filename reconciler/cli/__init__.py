"""The `podctl` command line: parse options, call one use case, render, map errors to exit codes.

Thin on purpose. Heavy modules (httpx, asyncssh, jsonschema, deepdiff, the spec loader) are
imported inside the commands that need them, so `podctl --help` stays fast.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click

from reconciler import __version__
from reconciler.cli.params import SafePath
from reconciler.errors import PodctlError, SpecError

F = TypeVar("F", bound=Callable[..., Any])

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


@dataclass
class Settings:
    """Options that every command accepts, before or after the command name."""

    lockfile: Path | None = None
    sandbox: bool = False
    api_url: str | None = None
    output_format: str = "text"


def _set(name: str) -> Callable[[click.Context, click.Parameter, Any], None]:
    def callback(ctx: click.Context, _param: click.Parameter, value: Any) -> None:
        if value is None or value is False:
            return  # not given here: keep what the group (or the default) said
        setattr(ctx.ensure_object(Settings), name, value)

    return callback


def global_options(func: F) -> F:
    """Add the global options; they work on the group and on every command."""
    options = [
        click.option(
            "--lockfile",
            type=SafePath(dir_okay=False, path_type=Path),
            default=None,
            expose_value=False,
            callback=_set("lockfile"),
            help="Lockfile path (default: podctl.lock beside the spec).",
        ),
        click.option(
            "--sandbox",
            is_flag=True,
            default=False,
            expose_value=False,
            callback=_set("sandbox"),
            help="Talk to the local RunPod sandbox instead of RunPod (no account needed).",
        ),
        click.option(
            "--api-url",
            default=None,
            metavar="URL",
            expose_value=False,
            callback=_set("api_url"),
            help="RunPod API base URL (default: $RUNPOD_API_BASE_URL or https://api.runpod.io).",
        ),
        click.option(
            "--format",
            "output_format",
            type=click.Choice(["text", "json"]),
            default=None,
            expose_value=False,
            callback=_set("output_format"),
            help="Output format.",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def spec_paths_option(func: F) -> F:
    return click.option(
        "-f",
        "--file",
        "paths",
        multiple=True,
        required=True,
        type=SafePath(path_type=Path),
        help="A spec file, or a folder of *.yaml/*.yml files making one stack (repeatable).",
    )(func)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="podctl")
@global_options
@click.pass_context
def podctl(ctx: click.Context) -> None:
    """Declarative reconciler for RunPod GPU pods and the batch jobs that run on them.

    Write the pods and jobs you want in YAML; `podctl plan` shows the difference with what
    RunPod runs; `podctl apply` makes it so, runs each job exactly once and records it all in
    a lockfile.
    """
    ctx.ensure_object(Settings)


@podctl.command()
@spec_paths_option
@global_options
@click.pass_obj
def validate(settings: Settings, paths: tuple[Path, ...]) -> int:
    """Check spec files: every problem at once, each with file:line:col and a hint.

    Files of several stacks may be checked together; each stack is checked on its own.
    """
    from reconciler import render
    from reconciler.spec import load_stacks

    try:
        stacks = load_stacks(paths, strict_env=False)
    except SpecError as exc:
        _emit_problems(settings, exc.problems)
        return EXIT_ERROR
    warnings = [warning for desired in stacks for warning in desired.warnings]
    if settings.output_format == "json":
        click.echo(render.problems_json(warnings))
    else:
        if warnings:
            click.echo(render.problems_text(warnings), err=True)
        for desired in stacks:
            click.echo(
                f"Valid: stack {desired.stack!r}, {len(desired.pods)} pod(s), "
                f"{len(desired.jobs)} job(s) in {len(desired.files)} file(s)."
            )
    return EXIT_OK


def _emit_problems(settings: Settings, problems: Sequence[Any]) -> None:
    from reconciler import render

    if settings.output_format == "json":
        click.echo(render.problems_json(problems))
    else:
        click.echo(render.problems_text(problems), err=True)
        errors = sum(1 for p in problems if p.severity == "error")
        click.echo(f"{errors} error(s) in the spec; nothing was changed.", err=True)


_NOT_BUILT = {
    "plan": "Show what apply would change.",
    "apply": "Create, resume, stop or terminate pods and run jobs until the spec holds.",
    "destroy": "Terminate every pod of the stack.",
    "status": "Show the stack's pods and jobs.",
    "logs": "Show (or follow) a job's log.",
    "reconcile": "Keep the stack converged in a loop.",
    "import": "Adopt an existing pod into the stack.",
    "state": "Inspect or edit the lockfile.",
    "gpus": "List GPU types, prices and stock.",
}


def _not_built(name: str, summary: str) -> click.Command:
    @click.pass_context
    def command(ctx: click.Context) -> None:
        raise PodctlError(
            f"`podctl {name}` is not available in podctl {__version__} yet; "
            "`podctl validate` is. See the README for what each release can do."
        )

    return click.Command(
        name,
        callback=command,
        help=f"{summary} (not available yet)",
        short_help=f"{summary} (not available yet)",
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    )


for _name, _summary in _NOT_BUILT.items():
    podctl.add_command(_not_built(_name, _summary))

from reconciler.cli.sandbox import sandbox as _sandbox  # noqa: E402 - after the group exists

podctl.add_command(_sandbox)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point: run the command and map every outcome to an exit code, in one place."""
    sys.exit(run(argv))


def run(argv: Sequence[str] | None = None) -> int:
    """Run podctl and return its exit code (0 ok, 1 error, 2 usage or pending changes, 130)."""
    try:
        result = podctl.main(
            args=list(argv) if argv is not None else None,
            prog_name="podctl",
            standalone_mode=False,
        )
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:  # usage errors: exit 2
        exc.show()
        return exc.exit_code
    except (click.Abort, KeyboardInterrupt):
        click.echo("Interrupted.", err=True)
        return EXIT_INTERRUPTED
    except SpecError as exc:
        click.echo(str(exc), err=True)
        from reconciler import render

        click.echo(render.problems_text(exc.problems), err=True)
        return exc.exit_code
    except PodctlError as exc:
        click.echo(f"Error: {exc}", err=True)
        return exc.exit_code
    except BrokenPipeError:
        # stdout closed early (`podctl plan | head`): not an error worth a message
        sys.stderr.close()
        return EXIT_ERROR
    except Exception as exc:  # a bug: say so without a traceback unless asked
        if os.environ.get("PODCTL_DEBUG"):
            raise
        click.echo(
            f"Internal error: {type(exc).__name__}: {exc}\n"
            "This is a bug in podctl. Run again with PODCTL_DEBUG=1 for the traceback "
            "and report it.",
            err=True,
        )
        return EXIT_ERROR
    return result if isinstance(result, int) else EXIT_OK
