"""`podctl cancel JOB`, `podctl purge-queue endpoint.NAME`, and the Ctrl-C question."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from reconciler.cli.common import connection, paths_or_default, say

if TYPE_CHECKING:
    from reconciler.cli import Settings


def ask_cancel(running: int) -> bool:
    """Asked on Ctrl-C during an apply with endpoint requests in flight."""
    return click.confirm(
        f"\nInterrupted: cancel the {running} endpoint request(s) podctl started (/cancel)? "
        "No leaves them running; the next apply reattaches to them",
        default=False,
        err=True,
    )


def cancel_command(settings: Settings, job: str, paths: tuple[Path, ...]) -> int:
    from reconciler.workflow.endpoint_ops import cancel_job

    ids = cancel_job(connection(settings), paths_or_default(paths), job)
    if not ids:
        say(f"{job}: no request of it is queued or running (nothing to cancel).")
        return 0
    say(f"{job}: cancelled {len(ids)} request(s): {', '.join(ids)}")
    return 0


def purge_command(settings: Settings, endpoint: str, paths: tuple[Path, ...]) -> int:
    from reconciler.workflow.endpoint_ops import purge_queue

    removed = purge_queue(connection(settings), paths_or_default(paths), endpoint)
    say(f"{endpoint}: removed {removed} queued request(s); running ones go on.")
    return 0
