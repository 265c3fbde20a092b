"""Click parameter types shared by the commands: paths that refuse a NUL byte cleanly."""

from __future__ import annotations

import os
from typing import Any

import click


class SafePath(click.Path):
    """click.Path, but a NUL byte in the value is a usage error (click's os.stat raises on it)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        text = os.fsdecode(value) if isinstance(value, bytes | os.PathLike) else str(value)
        if "\x00" in text:
            self.fail(f"{text!r} is not a usable path: it holds a NUL byte.", param, ctx)
        return super().convert(value, param, ctx)
