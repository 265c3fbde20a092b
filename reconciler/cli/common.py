"""Helpers the command modules share: settings -> Connection, durations, TTY checks."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from reconciler.errors import UsageError

if TYPE_CHECKING:
    from reconciler.cli import Settings
    from reconciler.workflow import ApplyRequest, Connection


def parse_duration_option(value: str, option: str) -> float:
    """`0`, `30`, `30s`, `10m`, `1h30m` -> seconds; a usage error otherwise."""
    from reconciler.spec.durations import parse_duration

    text = value.strip()
    if text in ("0", "0s"):
        return 0.0
    seconds = parse_duration(int(text) if text.isdigit() else text)
    if seconds is None:
        raise UsageError(
            f"{option} {value!r} is not a duration: write e.g. 30s, 10m, 1h30m or seconds."
        )
    return float(seconds)


def _shown_arg(arg: str) -> str:
    """An argument as the lock's holder record may show it: a URL's credentials as `***`."""
    from reconciler.urls import scrub_url

    if "://" not in arg:
        return arg
    flag, sep, url = arg.partition("=") if arg.startswith("-") else ("", "", arg)
    return flag + sep + scrub_url(url if sep else arg)


def connection(settings: Settings) -> Connection:
    from reconciler.cli.wiring import PORTS
    from reconciler.state import is_postgres_url
    from reconciler.workflow import Connection

    if settings.sandbox and settings.api_url:  # which one is meant? never override silently
        raise UsageError(
            "--sandbox and --api-url both name the API: pass --sandbox for the local sandbox, "
            "or --api-url URL for another server, not both."
        )
    command = " ".join(["podctl", *map(_shown_arg, sys.argv[1:3])]) if sys.argv else "podctl"
    lockfile, state = settings.lockfile, settings.state
    if state is not None and lockfile is not None:
        raise UsageError("Pass --state or --lockfile, not both (PODCTL_STATE sets --state).")
    if state is not None and not is_postgres_url(state):
        if "://" in state:
            raise UsageError(
                "--state must be a lockfile path or a postgresql:// URL; "
                f"{state.partition('://')[0]!r} is not a state store podctl knows."
            )
        lockfile, state = Path(state), None
    return Connection(
        lockfile=lockfile,
        state=state,
        sandbox=settings.sandbox,
        api_url=settings.api_url,
        api=settings.api,
        insecure_http=settings.insecure_http,
        lock_timeout=parse_duration_option(settings.lock_timeout, "--lock-timeout"),
        command=command,
        env=dict(os.environ),
        on_notice=echo_err,
        ssh_key=settings.ssh_key,
        ports=PORTS,
    )


def apply_request(parallelism: int, timeout: str, plan_file: Path | None = None) -> ApplyRequest:
    """How changes run, from --parallelism and --timeout (apply, destroy, reconcile).

    `PODCTL_POLL_INTERVAL` (seconds) sets the first readiness poll; it backs off to 5 s, or to
    5x a sub-second first interval (the tests' quick polls). `PODCTL_HEARTBEAT_INTERVAL`
    (seconds, default 30) sets how often a running change reports it still runs.
    """
    from reconciler.workflow import ApplyRequest

    if parallelism < 1:
        raise UsageError("--parallelism must be at least 1.")
    timeout_s = parse_duration_option(timeout, "--timeout")
    if timeout_s <= 0:  # a pod never gets a chance to become ready
        raise UsageError(f"--timeout {timeout!r} must be more than 0: write e.g. 10m, 30m or 1h.")
    poll = float(os.environ.get("PODCTL_POLL_INTERVAL", "1") or 1)
    # a "still running" event per running change this often (without a terminal: a line)
    heartbeat = float(os.environ.get("PODCTL_HEARTBEAT_INTERVAL", "30") or 30)
    return ApplyRequest(
        heartbeat_s=heartbeat if heartbeat > 0 else None,
        plan_file=plan_file,
        parallelism=parallelism,
        timeout_s=timeout_s,
        poll_initial_s=poll,
        poll_max_s=max(poll, 5.0 if poll >= 1 else poll * 5),
    )


def color() -> bool:
    """ANSI colour only when stdout is a terminal (and NO_COLOR is not set)."""
    return sys.stdout.isatty() and not os.environ.get("NO_COLOR")


def live_terminal() -> bool:
    """A live, redrawn progress view: stdout is a terminal that can move its cursor."""
    return sys.stdout.isatty() and os.environ.get("TERM", "") not in ("", "dumb")


def interactive() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty()


def paths_or_default(paths: tuple[Path, ...]) -> tuple[Path, ...]:
    from reconciler.workflow import default_spec_paths

    return paths or default_spec_paths()


def say(text: str, *, err: bool = False) -> None:
    """Print a line that carries text from the API, a pod or a file: its controls escaped."""
    from reconciler.textsafe import shown

    click.echo(shown(text), err=err)


def echo_err(text: str) -> None:
    """Notices, progress events and notes on stderr (their content escaped, as by `say`)."""
    say(text, err=True)


def say_log_line(text: str) -> None:
    """A job's log line: escaped on a terminal, as the pod wrote it when piped to a file."""
    if sys.stdout.isatty():
        say(text)
    else:
        click.echo(text)
