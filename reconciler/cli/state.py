"""`podctl state migrate`: move a stack's state between a lockfile and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from reconciler.cli.common import connection, paths_or_default, say
from reconciler.errors import UsageError

if TYPE_CHECKING:
    from reconciler.cli import Settings


def state_migrate_command(settings: Settings, paths: tuple[Path, ...], to: str, force: bool) -> int:
    from reconciler.state import is_postgres_url
    from reconciler.urls import scrub_url
    from reconciler.workflow.state import state_migrate

    if "://" in to and not is_postgres_url(to):
        raise UsageError(f"--to {scrub_url(to)}: give a lockfile path or a postgresql:// URL.")
    moved = state_migrate(connection(settings), paths_or_default(paths), to, force=force)
    state = moved.lockfile
    if settings.output_format == "json":
        data = {
            "from": moved.source,
            "to": moved.target,
            "stack": state.stack,
            "lineage": state.lineage,
            "serial": state.serial,
            "pods": len(state.pods),
            "jobs": len(state.jobs),
            "replaced_kept_at": None if moved.replaced is None else str(moved.replaced),
        }
        say(json.dumps(data, indent=2, sort_keys=True))
        return 0
    if moved.replaced is not None:
        say(f"The state {moved.target} held is kept at {moved.replaced} (not deleted).")
    say(
        f"Migrated stack {state.stack} (serial {state.serial}, {len(state.pods)} pod(s), "
        f"{len(state.jobs)} job(s)) from {moved.source} to {moved.target}; verified: same "
        f"lineage, serial and contents. {moved.source} is kept as it was: point every runner "
        "at the new store (--state or PODCTL_STATE), then remove the old one."
    )
    return 0
