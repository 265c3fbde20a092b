"""Render a benchmark table and record it in its own section of BENCHMARKS.md."""

from __future__ import annotations

import platform
import re
import statistics
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

BENCHMARKS_MD = Path(__file__).resolve().parent.parent / "BENCHMARKS.md"
HEADER = (
    "# Benchmarks\n\n"
    "Measured by the scripts in `benchmarks/` (each rewrites only its own section). The\n"
    "machines are shared and noisy: compare ratios measured in one run, not absolute times\n"
    "across runs.\n"
)


def median_ms(samples: Sequence[float]) -> float:
    return statistics.median(samples) * 1000


def ms(seconds: float) -> str:
    """Seconds as whole milliseconds for a table cell: `248 ms`."""
    return f"{seconds * 1000:.0f} ms"


def verdict(value: float, limit: float, shown: str) -> str:
    """A target cell: `<= 1 s: met`, or `<= 1 s: MISSED` when value > limit."""
    return f"<= {shown}: {'met' if value <= limit else 'MISSED'}"


def timing_row(label: str, samples: Sequence[float], target: str = "") -> list[object]:
    """`[label, median, max, target]` for a `table(TIMING_HEADERS, rows)`."""
    return [label, ms(statistics.median(samples)), ms(max(samples)), target]


TIMING_HEADERS = ("measurement", "median", "max", "target")


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A markdown table; also readable as plain text."""
    cells = [[str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |"
    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    body = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in cells
    ]
    return "\n".join([line, rule, *body])


def record(name: str, title: str, body: str, *, note: str = "", path: Path = BENCHMARKS_MD) -> None:
    """Replace (or add) the section `name` of BENCHMARKS.md with `body`.

    `name` is the module in `benchmarks/` (the section says how to rerun it); `note` is one
    sentence on how it was measured, shown under the stamp.
    """
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    how = f"\n{note}" if note else ""
    section = (
        f"<!-- bench:{name} -->\n## {title}\n\n"
        f"_{stamp}, Python {platform.python_version()}, {platform.machine()}; "
        f"`python -m benchmarks.{name}`_{how}\n\n{body}\n<!-- /bench:{name} -->"
    )
    text = path.read_text() if path.exists() else HEADER
    pattern = re.compile(
        rf"<!-- bench:{re.escape(name)} -->.*?<!-- /bench:{re.escape(name)} -->", re.S
    )
    if pattern.search(text):
        text = pattern.sub(lambda _m: section, text)
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(text)
