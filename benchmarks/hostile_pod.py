"""Hostile pod: a pod's root lies over SFTP; count what reaches outside the download's target.

Each case serves a tree from a lying asyncssh SFTP server (tests/hostile/sftp.py), or from a
real OpenSSH sshd (internal-sftp) when /usr/sbin/sshd exists and we are root, and runs
`PodConnection.download` (or `upload`) into a fresh folder beside a victim folder and a file
already in the target. It counts files written outside the target, local files lost or
changed, transfers that did not end within their deadline (hangs) and exceptions other than
podctl's own errors (tracebacks). Writes its section of RELIABILITY.md.

    python -m benchmarks.hostile_pod            # run, print, record in RELIABILITY.md
    python -m benchmarks.hostile_pod --no-write # run and print only
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from benchmarks.report import record, table
from reconciler.errors import PodctlError
from reconciler.model import SshEndpoint
from reconciler.ssh import StackKey, connect, ensure_stack_key
from tests.hostile.sftp import Node, chain_tree, file, folder, link, lying_server

ROOT = Path(__file__).resolve().parent.parent
RELIABILITY_MD = ROOT / "RELIABILITY.md"
SSHD = Path("/usr/sbin/sshd")
DEADLINE_S = 2.0  # the transfer's own timeout in the cases that must hit it
WATCHDOG_S = 60.0  # past this, the transfer counts as a hang
HEADERS = (
    "case",
    "files written outside the target",
    "local files lost",
    "hangs",
    "tracebacks",
    "result",
)


@dataclass
class Outcome:
    outside: int = 0
    lost: int = 0
    hangs: int = 0
    tracebacks: int = 0
    detail: str = ""


def _snapshot(top: Path, skip: Path) -> dict[str, str]:
    """Every file and link under `top` except under `skip`, with a digest of its content."""
    seen: dict[str, str] = {}
    for folder_name, dirs, names in os.walk(top):
        here = Path(folder_name)
        if here == skip or skip in here.parents:
            dirs[:] = []
            continue
        for name in [*names, *(d for d in dirs if (here / d).is_symlink())]:
            path = here / name
            rel = path.relative_to(top).as_posix()
            if path.is_symlink():
                seen[rel] = "-> " + os.readlink(path)
            else:
                seen[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return seen


@dataclass(frozen=True)
class Case:
    name: str
    tree: Callable[[Path], Node] | None  # served by the lying server; None: real sshd
    remote: str = "/"
    upload: bool = False
    deadline: bool = False  # must end by its deadline with a TransferError


def _cases() -> list[Case]:
    def venv(_victim: Path) -> Node:
        return folder({"venv": folder({"bin": folder({"python": link("/usr/bin/python3")})})})

    return [
        Case("relative symlink chain (lying server)", chain_tree),
        Case("relative symlink chain (OpenSSH internal-sftp)", None),
        Case(
            "a name listed as a link, then as a folder",
            lambda v: folder({"x": link(str(v))}, x=folder({"precious.txt": file("pwned")})),
        ),
        Case(
            "a folder where an earlier download left a link",
            lambda v: folder({"x": folder({"precious.txt": file("pwned")})}),
        ),
        Case("absolute link (a venv's python)", venv),
        Case("link leading out with ..", lambda v: folder({"up": link("../" * 30 + str(v)[1:])})),
        Case(
            "file that grows past its listed size",
            lambda v: folder({"log": file("abc", endless=True)}),
        ),
        Case(
            "endless file with a huge listed size",
            lambda v: folder({"big": file(size=1 << 40, endless=True)}),
            deadline=True,
        ),
        Case("FIFO", lambda v: folder({"pipe": Node("fifo"), "ok": file("ok")})),
        Case(
            "FIFO served as a regular file (open never answers)",
            lambda v: folder({"pipe": file(hang=True)}),
            deadline=True,
        ),
        Case(
            "names with \\, / , .. and control characters",
            lambda v: folder(
                {"a\\b": file("x"), "../precious.txt": file("x"), "\x1b[2J": Node("socket")}
            ),
        ),
        Case(
            "setuid and world-writable modes",
            lambda v: folder({"s": file("s", mode=0o6777), "w": file("w", mode=0o666)}),
        ),
        Case("upload: a link inside `from` to a file outside it", None, upload=True),
    ]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def _sshd(work: Path, key: StackKey) -> Iterator[SshEndpoint | None]:
    """A throwaway OpenSSH sshd on loopback (None when there is none, or we are not root)."""
    if not SSHD.exists() or os.geteuid() != 0:
        yield None
        return
    conf = work / "sshd"
    conf.mkdir()
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(conf / "hk")],
                   check=True)  # fmt: skip
    (conf / "keys").write_text(key.public_text + "\n")
    port = _free_port()
    (conf / "cfg").write_text(
        f"ListenAddress 127.0.0.1\nPort {port}\nHostKey {conf}/hk\nPidFile {conf}/pid\n"
        f"AuthorizedKeysFile {conf}/keys\nPermitRootLogin prohibit-password\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
        "StrictModes no\nSubsystem sftp internal-sftp\n"
    )
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
    proc = subprocess.Popen([str(SSHD), "-D", "-e", "-f", str(conf / "cfg")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    yield None
                    return
                time.sleep(0.05)
        yield SshEndpoint("127.0.0.1", port)
    finally:
        proc.terminate()
        proc.wait(10)


def _pod_chain(pod: Path, victim: Path) -> None:
    """The chain on a real disk, for sshd to serve."""
    deep = pod.joinpath(*(f"d{i}" for i in range(1, 31)))
    deep.mkdir(parents=True)
    (deep / "up").symlink_to("../..")
    chain = "/".join(f"d{i}" for i in range(1, 31)) + "/up/../../" + "../" * 60
    (pod / "esc").symlink_to(chain + str(victim).lstrip("/"))
    (pod / "ok.txt").write_text("ok")


async def _transfer(case: Case, key: StackKey, work: Path, sshd: SshEndpoint | None) -> str:
    victim, results = work / "victim", work / "results"
    timeout = DEADLINE_S if case.deadline else 30.0
    if case.upload:
        if sshd is None:
            return "n/a (no sshd)"
        src = work / "data"
        src.mkdir()
        (src / "real.txt").write_text("x")
        (src / "leak").symlink_to(victim / "precious.txt")
        async with await connect(sshd, key) as conn:
            sent = await conn.upload(src, str(results / "remote"), timeout_s=timeout)
        # the upload lands in `results` here (the sshd's disk is this one)
        landed = sorted(p.name for p in (results / "remote").iterdir())
        return f"sent {landed}, {len(sent.warnings)} warning(s)"
    if case.tree is None:
        if sshd is None:
            return "n/a (no sshd)"
        pod = work / "pod"
        _pod_chain(pod, victim)
        async with await connect(sshd, key) as conn:
            got = await conn.download(str(pod), f"{results}/", timeout_s=timeout)
        return f"{got.files} file(s), {len(got.warnings)} warning(s)"
    if case.name.startswith("a folder where an earlier"):
        (results / "x").symlink_to(victim)  # as a first download (or the user) left it
    async with lying_server(case.tree(victim), key) as endpoint, await connect(endpoint, key) as c:
        got = await c.download(case.remote, f"{results}/", timeout_s=timeout)
    if case.name.startswith("setuid"):
        modes = [oct((results / n).stat().st_mode & 0o7777)[2:] for n in ("s", "w")]
        return f"modes {' and '.join(modes)}"
    return f"{got.files} file(s), {len(got.warnings)} warning(s)"


def run_case(case: Case, key: StackKey) -> Outcome:
    with tempfile.TemporaryDirectory(prefix="podctl-hostile-") as tmp:
        work = Path(tmp)
        victim, results = work / "victim", work / "results"
        victim.mkdir()
        (victim / "precious.txt").write_text("do not touch")
        results.mkdir()
        (results / "mine.txt").write_text("an earlier result")
        before_outside = _snapshot(work, results)
        keep = {"victim/precious.txt", "results/mine.txt"}
        digests = {k: hashlib.sha256((work / k).read_bytes()).hexdigest() for k in keep}
        out = Outcome()
        with _sshd(work, key) as sshd:
            try:
                out.detail = asyncio.run(
                    asyncio.wait_for(_transfer(case, key, work, sshd), WATCHDOG_S)
                )
                if case.deadline:
                    out.detail = "ended without hitting its deadline"
            except TimeoutError:
                out.hangs = 1
                out.detail = f"no end within {WATCHDOG_S:g}s"
            except PodctlError as exc:
                text = str(exc)
                if "did not finish within" in text:
                    out.detail = f"stopped at its {DEADLINE_S:g}s deadline, nothing placed"
                else:
                    out.detail = "refused: " + text.split(": ")[-1][:60]
                if case.deadline and "did not finish within" not in text:
                    out.detail = "FAILED: " + out.detail
            except Exception as exc:  # counted: the user would see a traceback
                out.tracebacks = 1
                out.detail = f"{type(exc).__name__}: {exc}"[:80]
        after_outside = _snapshot(work, results)
        skip = {"data", "pod", "sshd"}  # the case's own inputs
        changed = {
            k
            for k, v in after_outside.items()
            if before_outside.get(k) != v and k.split("/")[0] not in skip
        }
        out.outside = len(changed)
        for rel in keep:
            path = work / rel
            if not path.is_file() or hashlib.sha256(path.read_bytes()).hexdigest() != digests[rel]:
                out.lost += 1
        return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    rows = []
    failed = 0
    with tempfile.TemporaryDirectory(prefix="podctl-hostile-key-") as keys:
        key = ensure_stack_key(Path(keys) / "hostile.podctl.id_ed25519")
        for case in _cases():
            out = run_case(case, key)
            bad = out.outside or out.lost or out.hangs or out.tracebacks
            bad = bad or out.detail.startswith("FAILED") or out.detail.startswith("ended")
            failed += bool(bad)
            verdict = "FAILED" if bad else "ok"
            if out.detail.startswith("n/a"):
                verdict = out.detail
            shown = verdict if verdict.startswith("n/a") else f"{verdict} ({out.detail})"
            rows.append([case.name, out.outside, out.lost, out.hangs, out.tracebacks, shown])
    body = table(HEADERS, rows)
    print(body)
    if not args.no_write:
        note = (
            "Each case downloads (or uploads) through `PodConnection` from a lying asyncssh "
            "SFTP server (tests/hostile/sftp.py) or a real OpenSSH sshd (internal-sftp), into a "
            "folder that already holds a file, beside a victim folder; result is what the "
            "transfer reported. Rerun: `.venv/bin/python -m benchmarks.hostile_pod`; the tests: "
            "`.venv/bin/pytest -q tests/test_transfer_hostile.py tests/test_transfer_openssh.py "
            "tests/e2e/test_downloads.py`."
        )
        record("hostile_pod", "Hostile pod", body, note=note, path=RELIABILITY_MD)
        print(f"wrote {RELIABILITY_MD.relative_to(ROOT)}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
