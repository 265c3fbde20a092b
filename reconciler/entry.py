"""The `podctl` console script: `--version` answered without importing the command line."""

from __future__ import annotations

import sys


def main() -> None:
    """`podctl --version` alone prints what click's version option prints; else run podctl."""
    if sys.argv[1:] == ["--version"]:
        from reconciler import __version__

        sys.stdout.write(f"podctl, version {__version__}\n")
        raise SystemExit(0)
    from reconciler.cli import main as run_podctl

    run_podctl()
