"""The endpoint parts of `podctl status` and `podctl import endpoint.NAME ID`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from reconciler.cli.common import connection, say

if TYPE_CHECKING:
    from reconciler.cli import Settings
    from reconciler.workflow.endpoints import EndpointStatusRow


def endpoint_table(rows: Sequence[EndpointStatusRow]) -> str:
    """ENDPOINT, DESIRED, ID, WORKERS (min-max), then `/health`: workers idle/running and jobs
    in queue / in progress / completed / failed."""
    from reconciler.cli.inspect import table

    def health(row: EndpointStatusRow) -> tuple[str, str, str, str]:
        h = row.health
        if h is None:
            return ("-", "-", "-", "-")
        return (
            f"{h.workers_idle}/{h.workers_running}",
            f"{h.jobs_in_queue}/{h.jobs_in_progress}",
            str(h.jobs_completed),
            str(h.jobs_failed),
        )

    return table(
        (
            "ENDPOINT",
            "DESIRED",
            "ID",
            "WORKERS",
            "IDLE/RUNNING",
            "QUEUED/IN PROGRESS",
            "COMPLETED",
            "FAILED",
        ),
        [(r.endpoint, r.desired, r.endpoint_id or "-", r.workers or "-", *health(r)) for r in rows],
    )


def import_endpoint_command(
    settings: Settings, paths: tuple[Path, ...], address: str, endpoint_id: str
) -> int:
    from reconciler.cli.common import paths_or_default
    from reconciler.workflow.endpoints import import_endpoint

    record = import_endpoint(connection(settings), paths_or_default(paths), address, endpoint_id)
    say(
        f"Imported endpoint {record.endpoint_id} as {address}. Run `podctl plan` to see what "
        "apply would change on it (an in-place update adds podctl's markers)."
    )
    return 0
