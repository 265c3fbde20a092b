"""Click parameter types shared by the commands: safe paths, finite numbers, output formats."""

from __future__ import annotations

import math
import os
from typing import Any

import click


class SafePath(click.Path):
    """click.Path, but a NUL byte, or an empty value for a file, is a usage error.

    click's os.stat raises on a NUL byte; `Path("")` is `.`, the working folder, which no
    file option (`-out`, `--lockfile`) means.
    """

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        text = os.fsdecode(value) if isinstance(value, bytes | os.PathLike) else str(value)
        if not text and not self.dir_okay:
            self.fail("an empty path names no file: give a file name.", param, ctx)
        if "\x00" in text:
            self.fail(f"{text!r} is not a usable path: it holds a NUL byte.", param, ctx)
        return super().convert(value, param, ctx)


class FiniteFloat(click.FloatRange):
    """click.FloatRange that also refuses `nan` and `inf` (which every comparison lets by)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return number


class FormatChoice(click.Choice):  # type: ignore[type-arg]
    """`--format text|json`: markdown is a plan's format only, and the refusal says so."""

    def __init__(self) -> None:
        super().__init__(["text", "json"])

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and value.strip().lower() == "markdown":
            command = f"podctl {ctx.command_path.split(' ', 1)[-1]}" if ctx else "this command"
            self.fail(
                f"--format markdown is for `podctl plan` only; `{command}` has text|json.",
                param,
                ctx,
            )
        return super().convert(value, param, ctx)
