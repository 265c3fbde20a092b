"""Start-up time of the podctl command (target: `podctl --help` median <= 150 ms)."""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.report import median_ms, record, table

ROOT = Path(__file__).resolve().parent.parent
TARGET_HELP_MS = 150.0


def podctl_command() -> list[str]:
    exe = Path(sys.executable).parent / "podctl"
    if exe.exists():
        return [str(exe)]
    found = shutil.which("podctl")
    return [found] if found else [sys.executable, "-m", "reconciler"]


def time_command(argv: list[str], runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, cwd=ROOT, capture_output=True, check=False)
        samples.append(time.perf_counter() - start)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=21)
    args = parser.parse_args()
    podctl = podctl_command()
    python_floor = median_ms(time_command([sys.executable, "-c", "pass"], args.runs))
    cases = [
        ("podctl --help", [*podctl, "--help"]),
        ("podctl --version", [*podctl, "--version"]),
        (
            "podctl validate -f specs/quickstart.yaml",
            [*podctl, "validate", "-f", "specs/quickstart.yaml"],
        ),
    ]
    rows: list[list[object]] = [["python -c pass (floor)", f"{python_floor:.0f}", ""]]
    for label, argv in cases:
        ms = median_ms(time_command(argv, args.runs))
        target = (
            f"<= {TARGET_HELP_MS:.0f} ms: {'met' if ms <= TARGET_HELP_MS else 'MISSED'}"
            if "help" in label
            else ""
        )
        rows.append([label, f"{ms:.0f}", target])
    text = table(["command", f"median ms ({args.runs} runs)", "target"], rows)
    print(text)
    record("cli_startup", "CLI start-up", text)


if __name__ == "__main__":
    main()
