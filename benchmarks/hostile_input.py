"""Hostile input: bad CLI values, damaged files, sandbox abuse and escape sequences, case by case.

Run: `.venv/bin/python -m benchmarks.hostile_input [--no-write]`. Every case drives the real
`podctl` command (a subprocess; on a pseudo-terminal for the escape cases) against a private
sandbox in a temp dir, or the sandbox over HTTP and SFTP, and counts: tracebacks (a
`Traceback` or `Internal error` in the output), hangs (no answer within the case's bound),
files changed (the stack folder's files, byte for byte, the lock's sidecar aside) and escapes
interpreted (a raw ESC, C1, BEL, BS, DEL or bidi override from the hostile content on the
screen). Writes the "Hostile input" section of RELIABILITY.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pty
import select
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from benchmarks.cli_startup import podctl_command
from benchmarks.report import record, table
from reconciler.sandbox import control, layout

ROOT = Path(__file__).resolve().parent.parent
RELIABILITY_MD = ROOT / "RELIABILITY.md"
BOUND_S = 60.0  # a command that has not ended by then counts as a hang
DEEP = "[" * 200_000 + "]" * 200_000
HOSTILE = "evil\x1b]0;pwned\x07\x1b[2J\x9b31m\x07\u202ex"
RAW = ("\x1b]0;pwned", "\x1b[2J", "\x9b", "\x07", "\x08", "\x7f", "\u202e")
SPEC = """\
version: 1
stack: hostile
pods:
  box:
    image: img:1
    gpu: {type: NVIDIA RTX A4000}
    ports: [22/tcp]
jobs:
  show:
    pod: box
    run: printf 'before \\033]0;pwned\\007\\033[2J \\302\\2331m \\010\\177 after\\n'
"""
HEADERS = ("case", "tracebacks", "hangs", "files changed", "escapes interpreted", "result")


@dataclass(frozen=True)
class Ran:
    code: int | None  # None: it hung (killed at the bound)
    out: str  # stdout and stderr together, as the screen or a pipe got them
    stdout: str = ""


@dataclass(frozen=True)
class Row:
    case: str
    tracebacks: int
    hangs: int
    changed: int | str
    escapes: int | str
    result: str
    ok: bool

    def cells(self) -> list[object]:
        return [self.case, self.tracebacks, self.hangs, self.changed, self.escapes, self.result]


class Bench:
    """A private sandbox, a stack folder with an applied pod and job, and podctl to run."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.sandbox = control.start_detached(work / "sandbox", start_delay=0)
        self.folder = work / "stack"
        self.folder.mkdir()
        self.spec = self.folder / "podctl.yaml"
        self.spec.write_text(SPEC)
        self.lockfile = self.folder / "hostile.podctl.lock"
        self.env = {
            **os.environ,
            "PODCTL_SANDBOX_DIR": str(self.sandbox.data_dir),
            "PODCTL_POLL_INTERVAL": "0.02",
            "HOME": str(work / "home"),
            "TERM": "xterm-256color",
        }
        self.env.pop("NO_COLOR", None)
        applied = self.run(["apply", "-y", "-f", str(self.spec)])
        if applied.code != 0:
            raise SystemExit(f"setup apply failed:\n{applied.out}")
        self.good = self.lockfile.read_text()

    def close(self) -> None:
        control.reset(self.sandbox.data_dir)
        control.stop(self.sandbox.data_dir)

    def run(self, args: list[str], *, tty: bool = False, sandbox: bool = True) -> Ran:
        argv = [*podctl_command(), *(["--sandbox"] if sandbox else []), *args]
        if tty:
            return _on_a_terminal(argv, self.env, self.work)
        try:
            done = subprocess.run(
                argv,
                cwd=self.work,
                env=self.env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=BOUND_S,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            return Ran(None, str(exc.stdout or "") + str(exc.stderr or ""))
        return Ran(done.returncode, done.stdout + done.stderr, done.stdout)

    def files(self) -> dict[str, bytes]:
        return {
            p.name: p.read_bytes()
            for p in sorted(self.folder.iterdir())
            if p.is_file() and not p.name.endswith(".lock.lock")
        }

    def restore(self) -> None:
        for p in self.folder.iterdir():
            if ".corrupt-" in p.name:
                p.unlink()
        self.lockfile.write_text(self.good)


def _on_a_terminal(argv: list[str], env: dict[str, str], cwd: Path) -> Ran:
    controller, terminal = pty.openpty()
    proc = subprocess.Popen(
        argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=terminal, stderr=terminal
    )
    os.close(terminal)
    screen = b""
    deadline = time.monotonic() + BOUND_S
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([controller], [], [], 0.5)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO: every writer closed the terminal
                break
            if not chunk:
                break
            screen += chunk
    finally:
        os.close(controller)
    hung = proc.poll() is None and time.monotonic() >= deadline
    if proc.poll() is None:
        proc.kill()
    code = proc.wait(timeout=30)
    return Ran(None if hung else code, screen.decode("utf-8", errors="replace"))


def _tracebacks(out: str) -> int:
    return out.count("Traceback") + out.count("Internal error")


def _escapes(out: str) -> int:
    return sum(out.count(raw) for raw in RAW)


def cli_row(
    bench: Bench,
    case: str,
    args: list[str],
    expect: int,
    message: str,
    *,
    prepare: Callable[[], None] = lambda: None,
    sandbox: bool = True,
) -> Row:
    """Run one bad command: exit `expect`, `message` in the output, no file changed."""
    prepare()
    before = bench.files()
    ran = bench.run(args, sandbox=sandbox)
    changed = sum(1 for name, data in bench.files().items() if before.get(name) != data)
    changed += sum(1 for name in before if name not in bench.files())
    tracebacks = _tracebacks(ran.out)
    ok = ran.code == expect and message in ran.out and not tracebacks and not changed
    first = next((line for line in ran.out.splitlines() if message in line), "")
    shown = first.strip().removeprefix("Error: ").replace(f"{bench.work}/", "") or "?"
    shown = shown if len(shown) <= 80 else shown[:77] + "..."
    result = f"exit {ran.code}: {shown}" if ran.code is not None else "HUNG"
    bench.restore()
    return Row(case, tracebacks, int(ran.code is None), changed, "n/a", result, ok)


def _write_deep(bench: Bench) -> None:
    bench.lockfile.write_text(DEEP)


def _write(path: Path, text: str) -> None:
    path.write_text(text)


def _other_stack(bench: Bench) -> None:
    data = json.loads(bench.good)
    data["stack"] = "other"
    bench.lockfile.write_text(json.dumps(data, indent=2))


def _mixed_zones(bench: Bench) -> None:
    data = json.loads(bench.good)
    data["jobs"]["show"]["started_at"] = "2026-01-01T10:00:00"
    data["jobs"]["show"]["finished_at"] = "2026-01-01T10:00:30+00:00"
    data["pods"]["box"]["created_at"] = "2026-01-01T09:59:00"
    bench.lockfile.write_text(json.dumps(data, indent=2))


def cli_rows(bench: Bench) -> list[Row]:
    spec = ["-f", str(bench.spec)]
    sandbox_dir = str(bench.work / "never")
    rows = [
        cli_row(bench, "plan -out ''", ["plan", "-out", "", *spec], 2, "an empty path names no"),
        cli_row(
            bench, "apply --timeout 0s", ["apply", "-y", "--timeout", "0s", *spec], 2, "more than 0"
        ),
    ]
    for value in (["--port", "-1"], ["--port", "70000"], ["--start-delay", "-5"]):
        rows.append(
            cli_row(
                bench,
                f"sandbox start {' '.join(value)}",
                ["sandbox", "start", "--detach", "--data-dir", sandbox_dir, *value],
                2,
                "is not in the range",
                sandbox=False,
            )
        )
    for value in (["--start-delay", "nan"], ["--stock", "-1"]):
        rows.append(
            cli_row(
                bench,
                f"sandbox start {' '.join(value)}",
                ["sandbox", "start", "--detach", "--data-dir", sandbox_dir, *value],
                2,
                "is not a finite number" if "nan" in value else "is not in the range",
                sandbox=False,
            )
        )
    corrupt = "nested too deeply to be a lockfile"
    for command in (["status"], ["plan"], ["apply", "-y"], ["state", "list"]):
        rows.append(
            cli_row(
                bench,
                f"lockfile nested 200k deep: {' '.join(command)}",
                [*command, *spec],
                1,
                corrupt,
                prepare=lambda: _write_deep(bench),
            )
        )
    rows.append(
        cli_row(
            bench,
            "lockfile nested 200k deep: state show",
            ["state", "show", "pod.box", *spec],
            1,
            corrupt,
            prepare=lambda: _write_deep(bench),
        )
    )
    rows.append(rebuild_row(bench))
    plan_file = bench.folder / "plan.json"
    rows.append(
        cli_row(
            bench,
            "plan file nested 200k deep: apply PLAN",
            ["apply", str(plan_file)],
            1,
            "is not a podctl plan (its JSON is nested too deeply)",
            prepare=lambda: _write(plan_file, DEEP),
        )
    )
    plan_file.unlink()
    for command, shown in ((["status"], "succeeded  0     30s"), (["plan"], "No changes.")):
        rows.append(
            cli_row(
                bench,
                f"lockfile mixing time zones: {command[0]}",
                [*command, *spec],
                0,
                shown,
                prepare=lambda: _mixed_zones(bench),
            )
        )
    refused = "belongs to stack 'other', not 'hostile'"
    for command in (
        ["status"],
        ["plan"],
        ["apply", "-y"],
        ["state", "list"],
        ["state", "show", "pod.box"],
        ["state", "rm", "pod.box"],
    ):
        rows.append(
            cli_row(
                bench,
                f"another stack's lockfile: {' '.join(command[:2])}",
                [*command, *spec],
                1,
                refused,
                prepare=lambda: _other_stack(bench),
            )
        )
    return rows


def rebuild_row(bench: Bench) -> Row:
    """The documented recovery works on a lockfile nested too deeply: moved aside, rebuilt."""
    bench.lockfile.write_text(DEEP)
    ran = bench.run(["state", "rebuild", "-f", str(bench.spec)])
    aside = [p for p in bench.folder.iterdir() if ".corrupt-" in p.name]
    kept = len(aside) == 1 and aside[0].read_text() == DEEP
    rebuilt = json.loads(bench.lockfile.read_text()) if bench.lockfile.exists() else {}
    adopted = "box" in rebuilt.get("pods", {})
    tracebacks = _tracebacks(ran.out)
    ok = ran.code == 0 and kept and adopted and not tracebacks
    result = f"exit {ran.code}: damaged file kept aside byte for byte, pod adopted"
    bench.restore()
    return Row(
        "lockfile nested 200k deep: state rebuild",
        tracebacks,
        int(ran.code is None),
        0 if kept else 1,
        "n/a",
        result if ok else f"exit {ran.code}: FAILED",
        ok,
    )


def _status_line(url: str, head: bytes, body: bytes = b"") -> str:
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head + body)
        answer = b""
        while b"\r\n" not in answer:
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
    return answer.split(b"\r\n", 1)[0].decode(errors="replace")


def _answers(bench: Bench) -> bool:
    """The sandbox's API still answers a query within 5 s."""
    try:
        resp = httpx.post(
            bench.sandbox.url + "/graphql",
            json={"query": "query { myself { id } }"},
            headers={"Authorization": f"Bearer {bench.sandbox.api_key}"},
            timeout=5,
        )
    except httpx.HTTPError:
        return False
    return resp.status_code == 200


def sandbox_rows(bench: Bench) -> list[Row]:
    url, key = bench.sandbox.url, bench.sandbox.api_key
    rows = []
    stranger = (
        b"POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 100000000\r\n\r\n"
    )
    status = _status_line(url, stranger)
    ok = status.endswith("401 Unauthorized") and _answers(bench)
    rows.append(
        Row(
            "sandbox: 100 MB body without the key",
            0,
            int(not _answers(bench)),
            0,
            "n/a",
            f"{status.split(' ', 1)[1]} before the body is read",
            ok,
        )
    )
    big = (
        f"POST /graphql HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {(1 << 20) + 1}\r\n\r\n"
    ).encode()
    status = _status_line(url, big)
    rows.append(
        Row(
            "sandbox: body over 1 MiB with the key",
            0,
            int(not _answers(bench)),
            0,
            "n/a",
            status.split(" ", 1)[1],
            status.endswith("413 Request Entity Too Large"),
        )
    )
    health = httpx.get(url + "/_sandbox/health", timeout=10)
    rows.append(
        Row(
            "sandbox: /_sandbox/health without the key",
            0,
            0,
            0,
            "n/a",
            f"{health.status_code}, no pid given",
            health.status_code == 401 and "pid" not in health.text,
        )
    )
    rows.append(fifo_row(bench))
    return rows


def fifo_row(bench: Bench) -> Row:
    """SFTP open of a FIFO in the pod's volume: refused, and the API still answers."""
    import asyncssh

    pods = httpx.post(
        bench.sandbox.url + "/graphql",
        json={"query": "query { myself { pods { id desiredStatus } } }"},
        headers={"Authorization": f"Bearer {bench.sandbox.api_key}"},
        timeout=10,
    ).json()["data"]["myself"]["pods"]
    pod_id = next(p["id"] for p in pods if p["desiredStatus"] == "RUNNING")
    fifo = layout.volume_dir(bench.sandbox.data_dir, pod_id) / "out.fifo"
    os.mkfifo(fifo)
    pod = httpx.post(
        bench.sandbox.url + "/graphql",
        json={
            "query": "query($id: String!) { pod(input: {podId: $id}) { runtime { ports"
            " { privatePort publicPort } } } }",
            "variables": {"id": pod_id},
        },
        headers={"Authorization": f"Bearer {bench.sandbox.api_key}"},
        timeout=10,
    ).json()["data"]["pod"]
    port = next(p["publicPort"] for p in pod["runtime"]["ports"] if p["privatePort"] == 22)
    key = bench.lockfile.with_name("hostile.podctl.id_ed25519")

    async def get() -> str:
        async with (
            asyncssh.connect(
                "127.0.0.1", port, username="root", client_keys=[str(key)], known_hosts=None
            ) as conn,
            conn.start_sftp_client() as sftp,
        ):
            try:
                async with sftp.open("/workspace/out.fifo", "rb") as f:
                    await f.read()
            except asyncssh.SFTPError as exc:
                return str(exc.reason)
        return "read"

    try:
        reason = asyncio.run(asyncio.wait_for(get(), 20))
        hung = 0
    except TimeoutError:
        reason, hung = "no answer", 1
    answers = _answers(bench)
    fifo.unlink()
    return Row(
        "sandbox: SFTP open of a FIFO in a pod folder",
        0,
        hung or int(not answers),
        0,
        "n/a",
        f"refused ({reason}); API answers" if answers else f"{reason}; API FROZEN",
        reason.endswith("is not a regular file") and answers,
    )


def escape_rows(bench: Bench) -> list[Row]:
    markers = {"PODCTL_STACK": "hostile", "PODCTL_POD": HOSTILE, "PODCTL_UID": "u-hostile"}
    created = httpx.post(
        bench.sandbox.url + "/graphql",
        json={
            "query": "mutation($input: PodFindAndDeployOnDemandInput!) {"
            " podFindAndDeployOnDemand(input: $input) { id } }",
            "variables": {
                "input": {
                    "name": HOSTILE,
                    "imageName": "img",
                    "gpuTypeId": "NVIDIA RTX A4000",
                    "gpuCount": 1,
                    "env": [{"key": k, "value": v} for k, v in markers.items()],
                }
            },
        },
        headers={"Authorization": f"Bearer {bench.sandbox.api_key}"},
        timeout=10,
    ).json()["data"]["podFindAndDeployOnDemand"]
    spec = ["-f", str(bench.spec)]
    rows = []
    cases: list[tuple[str, list[str], str, str]] = [
        ("escapes: hostile pod name in plan (tty)", ["plan", *spec], "\\x1b]0;pwned", "\x1b[1;31m"),
        ("escapes: hostile pod name in status (tty)", ["status", *spec], "\\x1b]0;pwned", ""),
        (
            "escapes: job log via podctl logs (tty)",
            ["logs", "show", "--file", str(bench.spec)],
            "",
            "",
        ),
    ]
    for case, args, wanted, colour in cases:
        before = bench.files()
        ran = bench.run(args, tty=True)
        changed = sum(1 for name, data in bench.files().items() if before.get(name) != data)
        escapes = _escapes(ran.out)
        shown = wanted or "\\x1b]0;pwned\\x07\\x1b[2J"
        visible = shown in ran.out
        ok = ran.code == 0 and escapes == 0 and visible and (not colour or colour in ran.out)
        note = "shown as \\x1b..., own colour kept" if colour else "shown as \\x1b..."
        rows.append(
            Row(
                case,
                _tracebacks(ran.out),
                int(ran.code is None),
                changed,
                escapes,
                f"exit {ran.code}: {note}",
                ok and not _tracebacks(ran.out),
            )
        )
    json_out = bench.run(["status", "--format", "json", *spec])
    names = [row["pod"] for row in json.loads(json_out.stdout)["pods"]]
    rows.append(
        Row(
            "escapes: hostile pod name in status --format json",
            _tracebacks(json_out.out),
            int(json_out.code is None),
            0,
            _escapes(json_out.out),
            f"exit {json_out.code}: valid JSON, the exact name",
            HOSTILE in names,
        )
    )
    httpx.post(
        bench.sandbox.url + "/graphql",
        json={"query": f'mutation {{ podTerminate(input: {{podId: "{created["id"]}"}}) }}'},
        headers={"Authorization": f"Bearer {bench.sandbox.api_key}"},
        timeout=10,
    )
    return rows


def job_escape_row(bench: Bench) -> Row:
    """A fresh run of the job on a terminal: its `[show]` line is escaped."""
    data = json.loads(bench.good)
    data["jobs"] = {}
    bench.lockfile.write_text(json.dumps(data, indent=2))
    ran = bench.run(["apply", "-y", "-f", str(bench.spec)], tty=True)
    line = "[show] before \\x1b]0;pwned\\x07\\x1b[2J \\x9b1m \\x08\\x7f after"
    escapes = _escapes(ran.out)
    colour = "\x1b[32mdone   \x1b[0m" in ran.out
    bench.good = bench.lockfile.read_text()
    return Row(
        "escapes: [job] log line in apply (tty)",
        _tracebacks(ran.out),
        int(ran.code is None),
        "n/a",
        escapes,
        f"exit {ran.code}: shown as \\x1b..., own colour kept",
        ran.code == 0 and line in ran.out and escapes == 0 and colour,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-write", action="store_true", help="print only; RELIABILITY.md kept")
    args = parser.parse_args(argv)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="podctl-hostile-") as tmp:
        bench = Bench(Path(tmp))
        try:
            rows = cli_rows(bench)
            rows += sandbox_rows(bench)
            rows.append(job_escape_row(bench))
            rows += escape_rows(bench)
        finally:
            bench.close()
    cells = [r.cells() for r in rows]
    for row, cell in zip(rows, cells, strict=True):
        if not row.ok:
            cell[-1] = f"FAILED: {cell[-1]}"
    body = table(HEADERS, cells)
    failed = [r.case for r in rows if not r.ok]
    body += "\n\n" + (f"Failures: {', '.join(failed)}." if failed else "Failures: none.")
    print(body)
    print(f"{len(rows)} cases in {time.monotonic() - started:.1f} s", file=sys.stderr)
    if not args.no_write:
        note = (
            "Each case runs the real `podctl` (a subprocess; on a pseudo-terminal for the "
            "escape cases) against a private sandbox, or the sandbox over HTTP and SFTP. "
            "tracebacks: `Traceback` or `Internal error` in the output; hangs: no answer "
            f"within {BOUND_S:.0f} s (the sandbox: its API not answering within 5 s); files "
            "changed: files of the stack folder not byte for byte the same after the case; "
            "escapes interpreted: raw ESC, C1, BEL, BS, DEL or bidi controls of the hostile "
            "text on the screen. The same cases are tests: tests/e2e/test_hostile_input.py, "
            "tests/e2e/test_hostile_terminal.py, tests/sandbox/test_hostile.py, "
            "tests/test_cli_sandbox_values.py."
        )
        record("hostile_input", "Hostile input", body, note=note, path=RELIABILITY_MD)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
