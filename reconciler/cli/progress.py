"""Where apply's and reconcile's progress events go: plain lines, or JSON lines on stdout."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import click

from reconciler.cli.common import say

if TYPE_CHECKING:
    from reconciler.events import Event
    from reconciler.plans import Plan


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


class LiveProgress(Progress):
    """On a terminal: the event lines scroll above a block redrawn in place (what runs, for
    how long, what waits on what, the cost); the heartbeat redraws it every second."""

    def __init__(self, cost_per_hr: float | None = None) -> None:
        super().__init__(False)
        self.cost_per_hr = cost_per_hr
        self.deltas: dict[tuple[str, str], float] = {}  # (address, action) -> $/h it changes
        self.drawn = 0  # lines of the block now on the screen

    def planned(self, plan: Plan) -> None:
        """The stack's $/h now, and what each pod change does to it once done.

        Each plan starts a new view: a reconcile round shows only its own changes.
        """
        from reconciler.render.progress import PlainProgress

        self.close()
        self.plain = PlainProgress()
        self.deltas = {}
        self.cost_per_hr = plan.total_cost_before
        for c in plan.actionable:
            after = c.running_cost_after
            if c.cost_before is not None and after is not None:
                self.deltas[(c.address, c.action.value)] = after - c.cost_before

    def __call__(self, event: Event) -> None:
        import shutil

        from reconciler.events import ChangeFinished
        from reconciler.render.live import live_block
        from reconciler.textsafe import shown

        line = self.plain.line(event)
        if isinstance(event, ChangeFinished) and event.outcome == "done":
            self.cost_per_hr = (self.cost_per_hr or 0.0) + self.deltas.get(
                (event.address, event.action), 0.0
            )
        width = shutil.get_terminal_size((100, 24)).columns
        from reconciler.events import StillRunning

        # back to the block's first line, and erase from there to the end of the screen
        out = f"\x1b[{self.drawn}F\x1b[J" if self.drawn else ""

        if line is not None and not isinstance(event, StillRunning):
            out += shown(f"  {line}") + "\n"  # a heartbeat only updates the block
        block = live_block(self.plain.tracker, width - 1, self.cost_per_hr)
        out += "".join(f"{b}\n" for b in block)
        self.drawn = len(block)
        click.echo(out, nl=False)

    def close(self) -> None:
        """Erase the block before the summary or a round's line (they say how it ended)."""
        if self.drawn:
            click.echo(f"\x1b[{self.drawn}F\x1b[J", nl=False)
            self.drawn = 0
