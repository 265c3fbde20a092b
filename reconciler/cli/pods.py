"""`podctl plan`, `apply` and `destroy`: options in, one workflow call, the rendering out."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import click

from reconciler.cli.common import (
    apply_request,
    color,
    connection,
    interactive,
    live_terminal,
    paths_or_default,
)
from reconciler.errors import PodctlError, UsageError
from reconciler.model import Address

if TYPE_CHECKING:
    from reconciler.cli import Settings
    from reconciler.plans import Plan

EXIT_CHANGES = 2  # plan --detailed-exitcode: there are changes


def _targets(values: tuple[str, ...]) -> frozenset[str]:
    for value in values:
        if not (Address.name_in(value, "pod") or Address.name_in(value, "endpoint")):
            raise UsageError(
                f"--target {value!r}: write pod.NAME or endpoint.NAME (e.g. --target pod.trainer)."
            )
    return frozenset(values)


def render_plan(plan: Plan, output_format: str) -> str:
    from reconciler import render

    if output_format == "json":
        return render.plan_json(plan)
    if output_format == "markdown":
        return render.plan_markdown(plan)
    return render.plan_text(plan, color())


def plan_command(
    settings: Settings,
    paths: tuple[Path, ...],
    targets: tuple[str, ...],
    out: Path | None,
    detailed_exitcode: bool,
) -> int:
    from reconciler.workflow import PlanRequest, make_plan, save_plan

    request = PlanRequest(paths=paths_or_default(paths), targets=_targets(targets))
    plan, _lockfile = make_plan(connection(settings), request)
    click.echo(render_plan(plan, settings.output_format))
    if out is not None:
        save_plan(plan, out)
        if settings.output_format == "text":
            click.echo(f"Saved the plan to {out}; apply exactly it with `podctl apply {out}`.")
    if plan.errors:
        return 1
    if detailed_exitcode and (plan.has_changes or plan.waiting):
        return EXIT_CHANGES
    return 0


def _confirm(auto_approve: bool, verb: str) -> bool:
    if auto_approve:
        return True
    if not interactive():
        raise PodctlError(
            f"podctl {verb} needs a confirmation and there is no terminal to ask on; "
            "pass -y/--auto-approve to proceed without asking. Nothing was changed."
        )
    answer: str = click.prompt(
        f"Do you want to {verb}? Only 'yes' will be accepted", default="", show_default=False
    )
    return answer.strip() == "yes"


def apply_command(
    settings: Settings,
    paths: tuple[Path, ...],
    plan_file: Path | None,
    targets: tuple[str, ...],
    auto_approve: bool,
    parallelism: int,
    timeout: str,
    *,
    destroy: bool = False,
    force: bool = False,
    ignore_budget: bool = False,
    cancel_on_interrupt: bool = False,
) -> int:

    from reconciler.workflow import PlanRequest, apply

    if plan_file is not None and (paths or targets):
        raise UsageError("A saved plan carries its spec files and targets: drop -f and --target.")
    options = apply_request(parallelism, timeout, plan_file)
    from reconciler.cli.endpoint_jobs import ask_cancel

    options = replace(
        options,
        cancel_on_interrupt=cancel_on_interrupt,
        ask_cancel=None if cancel_on_interrupt or not interactive() else ask_cancel,
    )
    verb = "destroy" if destroy else "apply"
    request = PlanRequest(
        paths=() if plan_file is not None else paths_or_default(paths),
        targets=_targets(targets),
        destroy=destroy,
        force=force,
        ignore_budget=ignore_budget,
    )
    as_json = settings.output_format == "json"
    from reconciler.cli.progress import LiveProgress, Progress
    from reconciler.plans import plan_to_dict

    # with --format json, stdout carries JSON lines only: the plan, each event, the summary
    live = not as_json and live_terminal()
    progress: Progress = Progress(as_json)
    if live:
        progress = LiveProgress()
        options = replace(options, heartbeat_s=min(options.heartbeat_s or 1.0, 1.0))

    def show_plan(plan: Plan) -> None:
        if as_json:
            progress.record("plan", plan_to_dict(plan))
        else:
            click.echo(render_plan(plan, "text"))
        if isinstance(progress, LiveProgress):
            progress.planned(plan)

    started = time.monotonic()
    applied = apply(
        connection(settings),
        request,
        options,
        confirm=lambda _plan: _confirm(auto_approve, verb),
        on_event=progress,
        show_plan=show_plan,
    )
    took = time.monotonic() - started
    if isinstance(progress, LiveProgress):
        progress.close()
    result = applied.result
    if as_json:
        from reconciler.render.summary import summary_dict

        if result is None:
            from reconciler.plans import ApplyResult

            result = ApplyResult(stack=applied.plan.stack)
        progress.record("summary", summary_dict(result, applied.plan, took))
        return 0 if result.ok else 1
    if result is None:
        return 0
    from reconciler import render

    click.echo(render.summary_text(result, color(), plan=applied.plan, took_s=took))
    return 0 if result.ok else 1
