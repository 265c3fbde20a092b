"""Start-up time of the podctl command: `--help`, `--version`, validate, a 10-pod plan.

Run: `.venv/bin/python -m benchmarks.cli_startup [--before DIR]`. Target: `podctl --help`
median <= 150 ms. Commands run from compiled bytecode (the package is compiled first and
PYTHONDONTWRITEBYTECODE is dropped for them), as after `pip install`. The plan is of 10 pods
in an account of 1,110 (a private sandbox). With `--before DIR` (another checkout of podctl,
e.g. a `git worktree` of an older commit) each command also runs from DIR's `reconciler`
package, interleaved run by run with this one, so both columns share the machine's load.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
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


def compiled_env(source: Path | None = None) -> dict[str, str]:
    """The environment a command runs in: bytecode used; `source` first on the path."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if source is not None:
        env["PYTHONPATH"] = str(source)
    return env


def compile_tree(*roots: Path) -> None:
    targets = [str(root / "reconciler") for root in roots] + [sysconfig.get_paths()["purelib"]]
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", "-j", "0", *targets],
        env=compiled_env(),
        capture_output=True,
        check=False,
    )


def time_once(argv: list[str], env: dict[str, str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(argv, cwd=cwd, env=env, capture_output=True, check=False)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--before", type=Path, help="another podctl checkout to compare with")
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    from benchmarks import pods  # here: pods imports podctl_command from this module
    from reconciler.sandbox import control

    trees: list[tuple[str, Path | None]] = [("now", ROOT)]
    if args.before:
        trees.insert(0, ("before", args.before.resolve()))
    compile_tree(*[tree for _, tree in trees if tree is not None])
    python = [sys.executable, "-m", "reconciler"]  # run from `work`: cwd is first on the path
    with tempfile.TemporaryDirectory() as tmp_name:
        work = Path(tmp_name)
        small = pods.write_spec(work, "small", pods.SMALL)
        big = pods.write_spec(work, "big", pods.BIG)
        pods.seed(work / "sandbox", [big, small], pods.OTHERS)
        info = control.start_detached(work / "sandbox", start_delay=0)
        try:
            cases: list[tuple[str, list[str], Path]] = [
                ("python -c pass (floor)", [sys.executable, "-c", "pass"], work),
                ("podctl --help", [*python, "--help"], work),
                ("podctl --version", [*python, "--version"], work),
                (
                    "podctl validate -f specs/quickstart.yaml",
                    [*python, "validate", "-f", str(ROOT / "specs" / "quickstart.yaml")],
                    work,
                ),
                (
                    "podctl plan, 10 pods (account of 1,110)",
                    [*python, "plan", "-f", str(small), "--lockfile", str(work / "none.lock")],
                    work,
                ),
            ]
            samples: dict[tuple[str, str], list[float]] = {}
            for _ in range(args.runs):
                for label, argv, cwd in cases:
                    for name, tree in trees:
                        env = {**compiled_env(tree), **info.env()}
                        samples.setdefault((label, name), []).append(time_once(argv, env, cwd))
        finally:
            control.stop(info.data_dir)
    rows: list[list[object]] = []
    for label, _, _ in cases:
        medians = [median_ms(samples[(label, name)]) for name, _ in trees]
        target = ""
        if "help" in label:
            met = medians[-1] <= TARGET_HELP_MS
            target = f"<= {TARGET_HELP_MS:.0f} ms: {'met' if met else 'MISSED'}"
        rows.append([label, *(f"{ms:.0f}" for ms in medians), target])
    headers = ["command", *(f"{name}: median ms" for name, _ in trees), "target"]
    text = table(headers, rows)
    print(text)
    if not args.no_record:
        note = (
            f"{args.runs} runs each, `python -m reconciler` from compiled bytecode"
            + (", before and now interleaved" if args.before else "")
            + "."
        )
        record("cli_startup", "CLI start-up", text, note=note)


if __name__ == "__main__":
    main()
