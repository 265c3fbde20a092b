"""Shell completion of pod and job names, read from the spec (`-f`, else the default one)."""

from __future__ import annotations

from pathlib import Path

import click
from click.shell_completion import CompletionItem

from reconciler.model import Address


def _names(ctx: click.Context) -> tuple[list[str], list[str]]:
    """(pod addresses, job names) of the spec the command line names; none when unreadable."""
    from reconciler.spec import load_stacks
    from reconciler.workflow.context import default_spec_paths

    given = ctx.params.get("paths") or ()
    try:
        paths = tuple(Path(p) for p in given) or default_spec_paths()
        stacks = load_stacks(paths, strict_env=False)
    except Exception:  # a broken or missing spec completes nothing, never a traceback
        return [], []
    pods = [str(Address.pod(name)) for stack in stacks for name in stack.pods]
    jobs = [name for stack in stacks for name in stack.jobs]
    return pods, jobs


def _matching(names: list[str], incomplete: str) -> list[CompletionItem]:
    return [CompletionItem(n) for n in names if n.startswith(incomplete)]


def pods(ctx: click.Context, _param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    return _matching(_names(ctx)[0], incomplete)


def jobs_and_pods(
    ctx: click.Context, _param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    pod_names, job_names = _names(ctx)
    return _matching(job_names + pod_names, incomplete)
