"""Hostile API: `podctl plan/apply` against an API server that misbehaves on purpose.

Run: `.venv/bin/python -m benchmarks.hostile_api`. Each case starts podctl as a subprocess
against tests/hostile/api.py on loopback (a server that drips bytes, sends 100 MiB, a gzip
bomb, terminal escapes, a redirect, echoes the key and URL or a create's env, or answers
503) or with a broken `--api-url`, with the API key, a URL password, a URL query value and
a from_env value set. It counts secrets found in stdout, stderr, the plan file and the
lockfile, hangs (no exit within the watchdog), tracebacks, and lockfiles that no longer
parse; then records its table in RELIABILITY.md (`benchmarks.report.record`).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmarks.report import record, table
from reconciler.errors import LockfileError
from reconciler.lockfile import LockfileStore
from reconciler.lockfile.codec import loads
from reconciler.model import Lockfile
from tests.hostile.api import hostile_api

ROOT = Path(__file__).resolve().parent.parent
RELIABILITY_MD = ROOT / "RELIABILITY.md"
KEY = "rpa_BENCH_KEY_5f0c2e9a"
PASSWORD = "pw-bench-7Hq2"
QUERY_SECRET = "qs-bench-3Jx8"
TOKEN = "hf_BENCH_SECRET_91ab"
SECRETS = (KEY, PASSWORD, QUERY_SECRET, TOKEN)
# podctl's deadlines scaled down so a dripping server costs seconds, not minutes
REQUEST_DEADLINE_S = 1.0
CALL_DEADLINE_S = 3.0
WATCHDOG_S = 60.0  # a podctl still running after this long hangs
SPEC = """\
version: 1
stack: hx
pods:
  box:
    image: img:1
    gpu: {type: [NVIDIA RTX A4000], count: 1}
    env:
      TOKEN: {from_env: HX_TOKEN}
"""
# a podctl process with the scaled deadlines (the only difference with the installed command)
LAUNCH = (
    "import sys, reconciler.backends.http as c; "
    f"c.REQUEST_DEADLINE_S = {REQUEST_DEADLINE_S}; c.CALL_DEADLINE_S = {CALL_DEADLINE_S}; "
    "from reconciler.cli import main; sys.argv[0] = 'podctl'; main()"
)


@dataclass(frozen=True)
class Case:
    name: str
    mode: str | None  # the server's mode; None: no server (a broken --api-url)
    command: tuple[str, ...]
    url: str = ""  # for mode None; else the server's URL with a password and a query value
    expect_code: int = 1


CASES = (
    Case("drips 1 byte / 0.2 s (plan)", "drip", ("plan",)),
    Case("drips 1 byte / 0.2 s (apply)", "drip", ("apply", "-y")),
    Case("100 MiB body", "huge", ("plan",)),
    Case("gzip bomb (100 MiB in ~100 KiB)", "gzip_bomb", ("plan",)),
    Case("escape sequences in GraphQL errors", "escapes", ("plan",)),
    Case("redirect to another host", "redirect", ("apply", "-y")),
    Case("echoes the key and the URL", "echo", ("plan",)),
    Case("quotes a create's env back", "echo_create", ("apply", "-y")),
    Case("503 on every request", "unavailable", ("apply", "-y")),
    Case("--api-url 'http://[::1'", None, ("plan",), "http://[::1", 2),
    Case("--api-url port 70000", None, ("plan",), "http://127.0.0.1:70000", 2),
    Case("--api-url without a scheme", None, ("plan",), "api.runpod.io", 2),
    Case(
        "plain http:// to another host",
        None,
        ("plan",),
        f"http://u:{PASSWORD}@10.1.2.3/?api_key={QUERY_SECRET}",
        2,
    ),
)
HEADERS = (
    "case",
    "secrets printed",
    "hangs",
    "tracebacks",
    "lockfile corrupted",
    "result",
)


@dataclass
class Outcome:
    secrets: int
    hangs: int
    tracebacks: int
    corrupted: int
    code: int | None
    last_line: str
    ok: bool


def seed_lockfile(path: Path) -> None:
    """A valid lockfile of the stack, so every case can check it is left readable."""
    store = LockfileStore(path)
    with store:
        store.write(Lockfile(stack="hx"))


def run_case(case: Case, folder: Path) -> Outcome:
    folder.mkdir()
    (folder / "podctl.yaml").write_text(SPEC)
    lockfile = folder / "hx.podctl.lock"
    seed_lockfile(lockfile)
    plan_file = folder / "plan.json"
    env = {
        **os.environ,
        "HOME": str(folder / "home"),
        "RUNPOD_API_KEY": KEY,
        "HX_TOKEN": TOKEN,
        "PYTHONPATH": str(ROOT),
    }
    env.pop("RUNPOD_API_BASE_URL", None)
    env.pop("PODCTL_DEBUG", None)

    def launch(url: str) -> tuple[int | None, str, str]:
        extra = ("-out", str(plan_file)) if case.command[0] == "plan" else ()
        argv = [sys.executable, "-c", LAUNCH, *case.command, *extra, "--api-url", url]
        argv += ["-f", str(folder / "podctl.yaml")]
        try:
            done = subprocess.run(
                argv, env=env, cwd=folder, capture_output=True, text=True, timeout=WATCHDOG_S
            )
        except subprocess.TimeoutExpired as exc:
            return None, _text(exc.stdout), _text(exc.stderr)
        return done.returncode, done.stdout, done.stderr

    if case.mode is None:
        code, out, err = launch(case.url)
    else:
        with hostile_api(case.mode) as api:
            url = api.url.replace("http://", f"http://u:{PASSWORD}@") + f"/?api_key={QUERY_SECRET}"
            code, out, err = launch(url)
    files = [f.read_text(errors="replace") for f in (plan_file, lockfile) if f.exists()]
    shown = [out, err, *files]
    secrets = sum(1 for s in SECRETS for text in shown if s in text)
    try:
        loads(lockfile.read_text(), str(lockfile))
        corrupted = 0
    except (OSError, LockfileError):
        corrupted = 1
    tracebacks = int("Traceback" in err or "Internal error" in err)
    hangs = int(code is None)
    # the error is stderr's last line; a failed change is reported on stdout instead
    lines = err.strip().splitlines() or [
        line.strip() for line in out.splitlines() if line.strip().startswith("failed ")
    ]
    last = lines[-1] if lines else ""
    ok = (secrets, hangs, tracebacks, corrupted) == (0, 0, 0, 0) and code == case.expect_code
    return Outcome(secrets, hangs, tracebacks, corrupted, code, last, ok)


def _text(value: str | bytes | None) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else value.decode(errors="replace")


def result_cell(case: Case, outcome: Outcome) -> str:
    what = outcome.last_line.removeprefix("Error: ")
    # the scrubbed server URL (its port changes every run) as one word, to keep the cell short
    what = re.sub(r"http://\*\*\*@127\.0\.0\.1:\d+/graphql\?api_key=\*\*\*", "<url>", what)
    what = what.replace("|", "\\|")
    if len(what) > 140:
        what = what[:137] + "..."
    status = "ok" if outcome.ok else "FAILED"
    code = "no exit" if outcome.code is None else f"exit {outcome.code}"
    return f"{status}: {code}, `{what}`" if what else f"{status}: {code}"


def main(argv: Sequence[str] | None = None) -> int:
    start = time.perf_counter()
    rows: list[list[object]] = []
    outcomes: list[Outcome] = []
    with tempfile.TemporaryDirectory(prefix="podctl-hostile-") as tmp:
        for index, case in enumerate(CASES):
            outcome = run_case(case, Path(tmp) / f"case{index}")
            outcomes.append(outcome)
            rows.append(
                [
                    case.name,
                    outcome.secrets,
                    outcome.hangs,
                    outcome.tracebacks,
                    outcome.corrupted,
                    result_cell(case, outcome),
                ]
            )
            print(f"{case.name}: {'ok' if outcome.ok else 'FAILED'}", flush=True)
    total = time.perf_counter() - start
    body = table(HEADERS, rows)
    print(body)
    note = (
        "Each case runs podctl in a subprocess against tests/hostile/api.py on loopback (or "
        "with a broken `--api-url`), with the API key, a URL password, a URL query value and "
        "a from_env value set (`<url>`: the server's URL as podctl shows it, password and "
        "query value as `***`); `secrets printed` counts any of them found in stdout, stderr, "
        "the plan file or the lockfile; a hang is no exit within "
        f"{WATCHDOG_S:.0f} s. podctl's deadlines are scaled to {REQUEST_DEADLINE_S:g} s per "
        f"request and {CALL_DEADLINE_S:g} s per call (90 s and 300 s by default). "
        f"{total:.0f} s in all."
    )
    record("hostile_api", "Hostile API", body, note=note, path=RELIABILITY_MD)
    print(f"wrote {RELIABILITY_MD.relative_to(ROOT)}")
    return 0 if all(o.ok for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
