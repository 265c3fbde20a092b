"""The `podctl` command line: parse options, call one use case, render, map errors to exit codes.

Thin on purpose. Heavy modules (the backends, asyncssh, jsonschema, deepdiff, the spec loader) are
imported inside the commands that need them, so `podctl --help` stays fast.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import click

from reconciler import __version__
from reconciler.cli.params import FormatChoice, SafePath
from reconciler.errors import PodctlError, SpecError, UsageError

F = TypeVar("F", bound=Callable[..., Any])

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


@dataclass
class Settings:
    """Options that every command accepts, before or after the command name."""

    lockfile: Path | None = None
    state: str | None = None
    sandbox: bool = False
    api_url: str | None = None
    api: str = ""
    insecure_http: bool = False
    output_format: str = "text"
    lock_timeout: str = "0"
    ssh_key: Path | None = None


def _set(name: str) -> Callable[[click.Context, click.Parameter, Any], None]:
    def callback(ctx: click.Context, _param: click.Parameter, value: Any) -> None:
        if value is None or value is False:
            return  # not given here: keep what the group (or the default) said
        setattr(ctx.ensure_object(Settings), name, value)

    return callback


def global_options(func: F) -> F:
    """Add every global option of a command that takes them all (`--format text|json`)."""
    return options_of(*(n for n in _OPTION_NAMES if n != "plan-format"))(func)


def options_of(*names: str) -> Callable[[F], F]:
    """The global options a command takes (given after its name; the group takes them all),
    so that its --help lists only those."""

    def decorate(func: F) -> F:
        for option in reversed(
            [o for n, o in zip(_OPTION_NAMES, _options(), strict=True) if n in names]
        ):
            func = option(func)
        return func

    return decorate


_OPTION_NAMES = (
    "lockfile",
    "state",
    "sandbox",
    "api-url",
    "api",
    "insecure-http",
    "format",
    "plan-format",
    "ssh-key",
    "lock-timeout",
)
API = ("sandbox", "api-url", "api", "insecure-http")


def _options() -> list[Callable[[F], F]]:
    return [
        click.option(
            "--lockfile",
            type=SafePath(dir_okay=False, path_type=Path),
            default=None,
            expose_value=False,
            callback=_set("lockfile"),
            help="Lockfile path (default: <stack>.podctl.lock beside the spec).",
        ),
        click.option(
            "--state",
            default=None,
            metavar="URL",
            envvar="PODCTL_STATE",
            expose_value=False,
            callback=_set("state"),
            help="Where the recorded state lives: a lockfile path, or postgresql://... for a "
            "team's shared state (env PODCTL_STATE).",
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
            "--api",
            type=click.Choice(["graphql", "rest"]),
            default=None,
            expose_value=False,
            callback=_set("api"),
            help="Which RunPod API to speak: graphql (default; RunPod retires it early 2027) or "
            "rest (REST API v2). Default: $PODCTL_API, else graphql.",
        ),
        click.option(
            "--insecure-http",
            is_flag=True,
            default=False,
            expose_value=False,
            callback=_set("insecure_http"),
            help="Allow a plain http:// API URL to a host other than this machine (the API key "
            "then crosses the network unencrypted).",
        ),
        click.option(
            "--format",
            "output_format",
            type=FormatChoice(),
            default=None,
            expose_value=False,
            callback=_set("output_format"),
            help="Output format.",
        ),
        click.option(  # plan's (and the group's, which passes it on): markdown too
            "--format",
            "output_format",
            type=click.Choice(["text", "json", "markdown"]),
            default=None,
            expose_value=False,
            callback=_set("output_format"),
            help="Output format (markdown: for pull requests; plan only).",
        ),
        click.option(
            "--ssh-key",
            type=SafePath(dir_okay=False, path_type=Path),
            default=None,
            expose_value=False,
            envvar="PODCTL_SSH_KEY",
            callback=_set("ssh_key"),
            help="SSH key for jobs (env PODCTL_SSH_KEY; default: <stack>.podctl.id_ed25519 "
            "beside the lockfile, made on first use; a shared state needs it given).",
        ),
        click.option(
            "--lock-timeout",
            default=None,
            metavar="DURATION",
            expose_value=False,
            callback=_set("lock_timeout"),
            help="Wait this long for the lockfile's lock (default 0: fail at once, naming "
            "the holder).",
        ),
    ]


def _complete_pods(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
    from reconciler.cli.complete import pods

    return pods(ctx, param, incomplete)


def _complete_jobs(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
    from reconciler.cli.complete import jobs_and_pods

    return jobs_and_pods(ctx, param, incomplete)


def optional_spec_paths(func: F) -> F:
    return click.option(
        "-f",
        "--file",
        "paths",
        multiple=True,
        type=SafePath(path_type=Path),
        help="A spec file or folder (repeatable; default ./podctl.yaml, else ./specs/).",
    )(func)


class _LazyGroup(click.Group):
    """A group whose heavier subcommand groups are imported only when they are used.

    `podctl --help` lists them with a short help written here, so it does not import them.
    """

    lazy: ClassVar[dict[str, tuple[str, str, str]]] = {
        # name: (module, attribute, short help)
        "sandbox": (
            "reconciler.cli.sandbox",
            "sandbox",
            "Run a local RunPod-compatible API with SSH pods (no account needed).",
        ),
    }

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy and cmd_name not in self.commands:
            import importlib

            module, attribute, _ = self.lazy[cmd_name]
            self.add_command(getattr(importlib.import_module(module), attribute))
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """click's own listing, but a lazy group's short help comes from `lazy`."""
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows: list[tuple[str, str]] = []
        for name in names:
            if name in self.lazy and name not in self.commands:
                stand_in = click.Command(name, help=self.lazy[name][2])
                rows.append((name, stand_in.get_short_help_str(limit)))
                continue
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="podctl")
@options_of(*(n for n in _OPTION_NAMES if n != "format"))
@click.pass_context
def podctl(ctx: click.Context) -> None:
    """Declarative reconciler for RunPod GPU pods and the batch jobs that run on them.

    Write the pods and jobs you want in YAML; `podctl plan` shows the difference with what
    RunPod runs; `podctl apply` makes it so, runs each job exactly once and records it all in
    a lockfile.
    """
    ctx.ensure_object(Settings)


@podctl.command()
@optional_spec_paths
@options_of("format")
@click.pass_obj
def validate(settings: Settings, paths: tuple[Path, ...]) -> int:
    """Check spec files: every problem at once, each with file:line:col and a hint.

    Files of several stacks may be checked together; each stack is checked on its own.
    """
    from reconciler import render
    from reconciler.cli.common import paths_or_default
    from reconciler.spec import load_stacks

    try:
        stacks = load_stacks(paths_or_default(paths), strict_env=False)
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
                f"{len(desired.jobs) + len(desired.endpoint_jobs)} job(s)"
                + (f", {len(desired.endpoints)} endpoint(s)" if desired.endpoints else "")
                + f" in {len(desired.files)} file(s)."
            )
    return EXIT_OK


def _emit_problems(settings: Settings, problems: Sequence[Any]) -> None:
    from reconciler import render

    if settings.output_format == "json":
        click.echo(render.problems_json(problems))
    else:
        click.echo(render.problems_text(problems), err=True)
        errors = sum(1 for p in problems if p.severity == "error")
        click.echo(f"{errors} error(s) in the spec.", err=True)  # validate changes nothing


def target_option(func: F) -> F:
    return click.option(
        "--target",
        "targets",
        multiple=True,
        metavar="pod.NAME",
        shell_complete=_complete_pods,
        help="Only this pod, or endpoint.NAME (repeatable).",
    )(func)


def run_options(func: F) -> F:
    """--parallelism and --timeout: how changes run (apply, destroy, reconcile)."""
    options = [
        click.option(
            "--parallelism",
            type=int,
            default=10,
            show_default=True,
            help="Changes run at the same time.",
        ),
        click.option(
            "--timeout",
            default="10m",
            show_default=True,
            metavar="DURATION",
            help="How long a pod may take to become ready (or to resume).",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def apply_options(func: F) -> F:
    """-y plus the run options."""
    func = run_options(func)
    return click.option("-y", "--auto-approve", is_flag=True, help="Do not ask for confirmation.")(
        func
    )


def _no_markdown(settings: Settings, command: str) -> None:
    if settings.output_format == "markdown":
        raise UsageError(
            f"--format markdown is for `podctl plan`; `podctl {command}` has text|json."
        )


@podctl.command()
@optional_spec_paths
@target_option
@click.option(
    "-out",
    "--out",
    "out",
    type=SafePath(dir_okay=False, path_type=Path),
    help="Save the plan to FILE; `podctl apply FILE` applies exactly it.",
)
@click.option(
    "--detailed-exitcode",
    is_flag=True,
    help="Exit 0 with no changes, 2 with changes, 1 on an error.",
)
@options_of("lockfile", "state", "state", *API, "plan-format", "lock-timeout")
@click.pass_obj
def plan(
    settings: Settings,
    paths: tuple[Path, ...],
    targets: tuple[str, ...],
    out: Path | None,
    detailed_exitcode: bool,
) -> int:
    """Show what apply would change: per pod the action, reason, field diff and cost."""
    from reconciler.cli.pods import plan_command

    return plan_command(settings, paths, targets, out, detailed_exitcode)


@podctl.command()
@optional_spec_paths
@click.argument("plan_file", required=False, type=SafePath(dir_okay=False, path_type=Path))
@target_option
@apply_options
@click.option(
    "--ignore-budget",
    is_flag=True,
    help="Apply even past budget.max_usd_per_hour, or with budget.max_usd_total reached "
    "(this apply only; it says so).",
)
@click.option(
    "--cancel-on-interrupt",
    is_flag=True,
    help="On Ctrl-C, /cancel the endpoint jobs podctl started without asking.",
)
@global_options
@click.pass_obj
def apply(
    settings: Settings,
    paths: tuple[Path, ...],
    plan_file: Path | None,
    targets: tuple[str, ...],
    auto_approve: bool,
    parallelism: int,
    timeout: str,
    ignore_budget: bool,
    cancel_on_interrupt: bool,
) -> int:
    """Converge: create, update, replace, resume, stop or terminate pods; run jobs once.

    With PLAN_FILE (from `podctl plan -out`), apply exactly that plan, or refuse it when the
    lockfile or any pod it touches moved since.
    """
    from reconciler.cli.pods import apply_command

    _no_markdown(settings, "apply")
    return apply_command(
        settings,
        paths,
        plan_file,
        targets,
        auto_approve,
        parallelism,
        timeout,
        ignore_budget=ignore_budget,
        cancel_on_interrupt=cancel_on_interrupt,
    )


@podctl.command()
@optional_spec_paths
@target_option
@apply_options
@click.option("--force", is_flag=True, help="Also terminate pods marked `protect: true`.")
@options_of(*(n for n in _OPTION_NAMES if n not in ("plan-format", "ssh-key")))  # runs no job
@click.pass_obj
def destroy(
    settings: Settings,
    paths: tuple[Path, ...],
    targets: tuple[str, ...],
    auto_approve: bool,
    parallelism: int,
    timeout: str,
    force: bool,
) -> int:
    """Terminate every pod of the stack (protected ones only with --force)."""
    from reconciler.cli.pods import apply_command

    _no_markdown(settings, "destroy")
    return apply_command(
        settings,
        paths,
        None,
        targets,
        auto_approve,
        parallelism,
        timeout,
        destroy=True,
        force=force,
    )


@podctl.command()
@optional_spec_paths
@options_of("lockfile", "state", "state", *API, "format")
@click.pass_obj
def status(settings: Settings, paths: tuple[Path, ...]) -> int:
    """Show the stack's pods (desired, actual, GPU, $/h, uptime, SSH) and its jobs."""
    from reconciler.cli.inspect import status_command

    _no_markdown(settings, "status")
    return status_command(settings, paths)


@podctl.command()
@options_of(*API, "format")
@click.pass_obj
def gpus(settings: Settings) -> int:
    """List GPU types: memory, per-GPU price on each cloud, and stock."""
    from reconciler.cli.inspect import gpus_command

    _no_markdown(settings, "gpus")
    return gpus_command(settings)


@podctl.command("import")
@click.argument("address", metavar="pod.NAME", shell_complete=_complete_pods)
@click.argument("pod_id", metavar="POD_ID")
@optional_spec_paths
@options_of("lockfile", "state", "state", *API, "format", "lock-timeout")
@click.pass_obj
def import_(settings: Settings, address: str, pod_id: str, paths: tuple[Path, ...]) -> int:
    """Adopt an existing pod (or endpoint.NAME ENDPOINT_ID) as one of the spec."""
    from reconciler.cli.inspect import import_command

    return import_command(settings, paths, address, pod_id)


@podctl.group()
def state() -> None:
    """Inspect or edit the lockfile (the recorded state)."""


@state.command("list")
@optional_spec_paths
@options_of("lockfile", "state", "state", "format")
@click.pass_obj
def state_list(settings: Settings, paths: tuple[Path, ...]) -> int:
    """List the recorded pods (and pending creates)."""
    from reconciler.cli.inspect import state_list_command

    return state_list_command(settings, paths)


@state.command("show")
@click.argument("address", metavar="pod.NAME", shell_complete=_complete_pods)
@optional_spec_paths
@options_of("lockfile", "state", "state", "format")
@click.pass_obj
def state_show(settings: Settings, address: str, paths: tuple[Path, ...]) -> int:
    """Show one recorded pod."""
    from reconciler.cli.inspect import state_show_command

    return state_show_command(settings, paths, address)


@state.command("rm")
@click.argument("address", metavar="pod.NAME", shell_complete=_complete_pods)
@optional_spec_paths
@options_of("lockfile", "state", "state", "format", "lock-timeout")
@click.pass_obj
def state_rm(settings: Settings, address: str, paths: tuple[Path, ...]) -> int:
    """Forget a recorded pod (the pod itself is not touched)."""
    from reconciler.cli.inspect import state_rm_command

    return state_rm_command(settings, paths, address)


@podctl.command()
@click.argument("job", metavar="JOB|pod.NAME", shell_complete=_complete_jobs)
@click.option(
    "-F",
    "--follow",
    is_flag=True,
    help="Keep printing until the run ends (a pod: until ^C).",
)
@click.option(
    "-n",
    "--tail",
    type=click.IntRange(min=0),
    default=None,
    metavar="N",
    help="Only the last N lines (read from the end of the log, not all of it).",
)
@optional_spec_paths
@options_of("lockfile", "state", "state", *API, "ssh-key")
@click.pass_obj
def logs(
    settings: Settings, job: str, follow: bool, tail: int | None, paths: tuple[Path, ...]
) -> int:
    """Show (or follow) a job's log: from its pod, else the copy saved at the last apply.

    `pod.NAME` shows that pod's own container log instead (needs --api rest).
    """
    from reconciler.cli.common import connection, echo_err, paths_or_default, say_log_line
    from reconciler.model import Address
    from reconciler.workflow.logs import job_logs, pod_logs

    if Address.name_in(job, "pod") is not None:
        pod_logs(
            connection(settings),
            paths_or_default(paths),
            job,
            follow=follow,
            tail=tail,
            on_line=say_log_line,
        )
        return 0
    job_logs(
        connection(settings),
        paths_or_default(paths),
        job,
        follow=follow,
        tail=tail,
        on_line=say_log_line,
        on_note=echo_err,
    )
    return 0


@podctl.command()
@click.argument("job", metavar="JOB", shell_complete=_complete_jobs)
@optional_spec_paths
@options_of("lockfile", "state", "state")
@click.pass_obj
def cancel(settings: Settings, job: str, paths: tuple[Path, ...]) -> int:
    """Cancel an endpoint job's requests that RunPod still queues or runs (/cancel)."""
    from reconciler.cli.endpoint_jobs import cancel_command

    return cancel_command(settings, job, paths)


@podctl.command("purge-queue")
@click.argument("endpoint", metavar="endpoint.NAME")
@optional_spec_paths
@options_of("lockfile", "state", "state")
@click.pass_obj
def purge_queue(settings: Settings, endpoint: str, paths: tuple[Path, ...]) -> int:
    """Remove every queued request of an endpoint (/purge-queue); running ones go on."""
    from reconciler.cli.endpoint_jobs import purge_command

    return purge_command(settings, endpoint, paths)


@podctl.command(context_settings={"ignore_unknown_options": True})
@click.argument("pod", metavar="pod.NAME", shell_complete=_complete_pods)
@click.argument("command", nargs=-1, type=click.UNPROCESSED, metavar="[-- CMD...]")
@optional_spec_paths
@options_of("lockfile", "state", "state", *API, "ssh-key")
@click.pass_obj
def ssh(settings: Settings, pod: str, command: tuple[str, ...], paths: tuple[Path, ...]) -> int:
    """A shell on a pod (or one command after `--`), with the stack's key and the pod's
    pinned host key: a pod whose host key changed is refused."""
    import subprocess

    from reconciler.cli.common import connection, paths_or_default
    from reconciler.model import Address
    from reconciler.workflow.sshcmd import ssh_call

    if not Address.name_in(pod, "pod"):
        raise UsageError(f"{pod!r}: write pod.NAME (e.g. podctl ssh pod.trainer).")
    call = ssh_call(connection(settings), paths_or_default(paths), pod, command)
    try:
        return subprocess.call(call.argv)
    finally:
        call.known_hosts.unlink(missing_ok=True)


@state.command("rebuild")
@optional_spec_paths
@click.option("--force", is_flag=True, help="Rebuild even a readable lockfile (keeps jobs).")
@options_of("lockfile", "state", "state", *API, "format", "lock-timeout")
@click.pass_obj
def state_rebuild(settings: Settings, paths: tuple[Path, ...], force: bool) -> int:
    """Rebuild the lockfile from the PODCTL_* markers on the pods (a corrupt one is kept aside)."""
    from reconciler.cli.reconcile import state_rebuild_command

    return state_rebuild_command(settings, paths, force)


@state.command("migrate")
@optional_spec_paths
@click.option(
    "--to",
    "to",
    required=True,
    metavar="URL|PATH",
    help="The store to move the state to: a postgresql:// URL, or a lockfile path.",
)
@click.option(
    "--force", is_flag=True, help="Replace a state the target already holds (kept aside)."
)
@options_of("lockfile", "state", "format", "lock-timeout")
@click.pass_obj
def state_migrate(settings: Settings, paths: tuple[Path, ...], to: str, force: bool) -> int:
    """Move the stack's state to another store (lockfile <-> PostgreSQL), verified."""
    from reconciler.cli.state import state_migrate_command

    _no_markdown(settings, "state migrate")

    return state_migrate_command(settings, paths, to, force)


@podctl.command()
@optional_spec_paths
@click.option(
    "--interval",
    default="60s",
    show_default=True,
    metavar="DURATION",
    help="Time between rounds (30s, 5m, 1h); errors back off instead.",
)
@click.option("--once", is_flag=True, help="One round: exit 0 when converged or changed, else 1.")
@run_options
@global_options
@click.pass_obj
def reconcile(
    settings: Settings,
    paths: tuple[Path, ...],
    interval: str,
    once: bool,
    parallelism: int,
    timeout: str,
) -> int:
    """Keep the stack converged: plan and apply in rounds, healing drift and preemptions.

    Each round takes the lockfile's lock, lists the pods once and acts only when the plan is
    not empty, exactly as `podctl apply -y` would. One status line per round (`--format json`:
    one JSON object per line). SIGINT/SIGTERM finish the actions in flight and exit 0.
    Several loops may run for one stack: one leads (acts), the others wait as standbys and
    take over within an interval of its death; each line says which it is.
    """
    from reconciler.cli.reconcile import reconcile_command

    return reconcile_command(settings, paths, interval, once, parallelism, timeout)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point: run the command and map every outcome to an exit code, in one place."""
    collect_rarely()
    sys.exit(run(argv))


def collect_rarely() -> None:
    """Tune the garbage collector for a command: many long-lived objects, few cycles.

    What start-up made is frozen out of every collection, and a young collection waits for
    50,000 new objects instead of 700: Python's default spent 10-20 % of a 1,000-pod plan
    scanning the spec, the pods and the plan again and again. Cycles are still collected.
    """
    import gc

    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


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
    except (click.Abort, KeyboardInterrupt) as exc:
        from reconciler.textsafe import shown

        # click turns a KeyboardInterrupt into Abort; apply's (naming what bills on) is the cause
        cause = exc.__cause__ if isinstance(exc, click.Abort) else exc
        text = str(cause) if isinstance(cause, KeyboardInterrupt) else ""
        click.echo(shown(text) if text else "Interrupted.", err=True)
        return EXIT_INTERRUPTED
    except SpecError as exc:
        from reconciler import render
        from reconciler.textsafe import shown

        click.echo(shown(str(exc)), err=True)
        click.echo(render.problems_text(exc.problems), err=True)
        return exc.exit_code
    except PodctlError as exc:
        from reconciler.textsafe import shown

        click.echo(f"Error: {shown(str(exc))}", err=True)  # it may quote the API or a pod
        return exc.exit_code
    except BrokenPipeError:
        # stdout closed early (`podctl plan | head`): not an error worth a message
        sys.stderr.close()
        return EXIT_ERROR
    except Exception as exc:  # a bug: say so without a traceback unless asked
        if os.environ.get("PODCTL_DEBUG"):
            raise
        from reconciler.textsafe import shown

        click.echo(
            f"Internal error: {type(exc).__name__}: {shown(str(exc))}\n"
            "This is a bug in podctl. Run again with PODCTL_DEBUG=1 for the traceback "
            "and report it.",
            err=True,
        )
        return EXIT_ERROR
    return result if isinstance(result, int) else EXIT_OK
