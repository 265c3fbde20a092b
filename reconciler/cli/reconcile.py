"""`podctl reconcile` (the loop, its signals and status lines) and `podctl state rebuild`."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import click

from reconciler.cli.common import (
    apply_request,
    connection,
    echo_err,
    live_terminal,
    parse_duration_option,
    paths_or_default,
    say,
)
from reconciler.errors import UsageError
from reconciler.model import Address

if TYPE_CHECKING:
    from reconciler.cli import Settings
    from reconciler.plans import Plan

WAIT_STEP_S = 0.1  # how often the pause between rounds looks for a stop signal


class Signals:
    """SIGINT/SIGTERM: the first asks the loop to stop after the actions in flight, the
    second exits at once (KeyboardInterrupt: exit 130)."""

    def __init__(self) -> None:
        self.count = 0

    def stopping(self) -> bool:
        return self.count > 0

    def handle(self, signum: int, _frame: FrameType | None) -> None:
        self.count += 1
        if self.count > 1:
            raise KeyboardInterrupt
        name = signal.Signals(signum).name
        echo_err(
            f"podctl reconcile: {name}: finishing the actions in flight, then exiting "
            "(send it again to exit at once)."
        )

    @contextmanager
    def installed(self) -> Iterator[Signals]:
        previous = {s: signal.signal(s, self.handle) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield self
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def wait(self, seconds: float) -> None:
        """Sleep `seconds`, returning early once a stop signal came."""
        deadline = time.monotonic() + seconds
        while not self.stopping():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(WAIT_STEP_S, left))


def reconcile_command(
    settings: Settings,
    paths: tuple[Path, ...],
    interval: str,
    once: bool,
    parallelism: int,
    timeout: str,
) -> int:

    from reconciler.workflow.pods import PlanRequest
    from reconciler.workflow.reconcile import LoopOptions, Round, reconcile

    if settings.output_format == "markdown":
        raise UsageError(
            "--format markdown is for `podctl plan`; `podctl reconcile` has text|json."
        )
    options = apply_request(parallelism, timeout)
    interval_s = parse_duration_option(interval, "--interval")
    if interval_s <= 0:
        raise UsageError(f"--interval {interval!r} must be more than 0: write e.g. 30s, 5m or 1h.")
    request = PlanRequest(paths=paths_or_default(paths))
    as_json = settings.output_format == "json"
    conn = connection(settings)

    from reconciler.cli.progress import LiveProgress, Progress

    # with --format json, stdout carries JSON lines: each round, and each event of a round;
    # on a terminal, a round's changes show in apply's live view, erased at the round's line
    progress = Progress(as_json, err=True)
    if not as_json and live_terminal():
        progress = LiveProgress()
        options = replace(options, heartbeat_s=min(options.heartbeat_s or 1.0, 1.0))

    def on_round(status: Round) -> None:
        if isinstance(progress, LiveProgress):
            progress.close()
        if as_json:
            say(json.dumps({"event": "round", **status.as_dict()}, sort_keys=True))
        else:
            say(status.text())

    def show_plan(plan: Plan) -> None:
        if plan.has_changes and not as_json:
            from reconciler import render

            echo_err(render.plan_text(plan, False))
        if isinstance(progress, LiveProgress):
            progress.planned(plan)

    signals = Signals()
    with signals.installed():
        return reconcile(
            conn,
            request,
            options,
            LoopOptions(interval_s=interval_s, once=once),
            on_round=on_round,
            on_event=progress,
            stopping=signals.stopping,
            wait=signals.wait,
            show_plan=show_plan,
        )


def state_rebuild_command(settings: Settings, paths: tuple[Path, ...], force: bool) -> int:
    from reconciler.workflow.state import state_rebuild

    rebuilt = state_rebuild(connection(settings), paths_or_default(paths), force=force)
    pods = rebuilt.lockfile.pods
    if settings.output_format == "json":
        click.echo(
            json.dumps(
                {
                    "lockfile": str(rebuilt.path),
                    "moved_to": str(rebuilt.moved_to) if rebuilt.moved_to else None,
                    "pods": {name: record.pod_id for name, record in sorted(pods.items())},
                    "kept_jobs_and_host_keys": rebuilt.kept_jobs_and_keys,
                },
                indent=2,
                sort_keys=True,
            )
        )
        return 0
    if rebuilt.moved_to is not None:
        click.echo(
            f"Moved the unreadable lockfile aside to {rebuilt.moved_to} (kept, not deleted)."
        )
    listed = (
        ", ".join(f"{Address.pod(n)} = {r.pod_id}" for n, r in sorted(pods.items())) or "no pods"
    )
    kept = " (jobs and host keys kept)" if rebuilt.kept_jobs_and_keys else ""
    say(
        f"Rebuilt {rebuilt.path} from the pods' markers: {listed}{kept}. "
        "Run `podctl plan` to see what differs from the spec."
    )
    return 0
