"""Where apply's and reconcile's progress events go: plain lines, or JSON lines on stdout."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import click

from reconciler.cli.common import say

if TYPE_CHECKING:
    from reconciler.events import Event


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class Progress:
    """Renders each event as it comes: JSON lines on stdout with `--format json`, else text
    lines (indented, controls escaped) on stdout, or on stderr when `err`."""

    def __init__(self, as_json: bool, *, err: bool = False) -> None:
        from reconciler.render.progress import PlainProgress

        self.as_json = as_json
        self.err = err
        self.plain = PlainProgress()

    def __call__(self, event: Event) -> None:
        from reconciler.render.progress import event_json

        if self.as_json:
            # json.dumps escapes every control character: exact JSON, safe on a terminal
            click.echo(event_json(event, now_iso()))
            return
        line = self.plain.line(event)
        if line is not None:
            say(f"  {line}", err=self.err)

    def record(self, kind: str, data: dict[str, object]) -> None:
        """A line that is not an executor event (the plan, the summary, a round), in JSON mode."""
        click.echo(json.dumps({"event": kind, "ts": now_iso(), **data}))
