"""Detached jobs against a real OpenSSH sshd on loopback (skipped when /usr/sbin/sshd is missing).

This is where a job that dies with its SSH channel would show: sshd, unlike the sandbox,
closes the session's pipes and process group when the client goes away.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.jobs import remote
from reconciler.model import SshEndpoint
from reconciler.ssh import StackKey, connect, ensure_stack_key

SSHD = Path("/usr/sbin/sshd")
pytestmark = [
    pytest.mark.skipif(not SSHD.exists(), reason="no OpenSSH server (/usr/sbin/sshd)"),
    pytest.mark.skipif(os.geteuid() != 0, reason="sshd logs in as root here"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SshEndpoint, StackKey]]:
    root = tmp_path_factory.mktemp("sshd")
    key = ensure_stack_key(root / "t.podctl.id_ed25519")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(root / "hostkey")],
                   check=True)  # fmt: skip
    (root / "authorized_keys").write_text(key.public_text + "\n")
    port = _free_port()
    (root / "sshd_config").write_text(
        f"ListenAddress 127.0.0.1\nPort {port}\nHostKey {root}/hostkey\n"
        f"PidFile {root}/sshd.pid\nAuthorizedKeysFile {root}/authorized_keys\n"
        "PermitRootLogin prohibit-password\nPubkeyAuthentication yes\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
        "StrictModes no\nSubsystem sftp internal-sftp\n"
    )
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
    log = open(root / "sshd.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen([str(SSHD), "-D", "-e", "-f", str(root / "sshd_config")],
                            stdout=log, stderr=log)  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise AssertionError((root / "sshd.log").read_text()) from None
                time.sleep(0.05)
        yield SshEndpoint("127.0.0.1", port), key
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


def test_job_survives_the_client_and_reattach_gets_everything(sshd, tmp_path: Path):
    endpoint, key = sshd
    rd = str(tmp_path / "run")
    command = "for i in $(seq 1 25); do echo tick $i; sleep 0.1; done; exit 4"
    seen: list[str] = []

    async def first() -> None:
        conn = await connect(endpoint, key)
        await conn.start_job(rd, command, env={"A": "1"}, workdir=str(tmp_path), timeout_s=60)
        follower = asyncio.create_task(conn.follow_log(rd, seen.append, poll_s=0.05))
        while len(seen) < 2:
            await asyncio.sleep(0.02)
        follower.cancel()
        with pytest.raises(asyncio.CancelledError):
            await follower
        conn._conn.abort()  # the client dies: sshd tears the session down

    asyncio.run(first())
    assert 2 <= len(seen) < 25

    async def reattach() -> tuple[remote.RemoteJob, remote.RemoteJob, list[str]]:
        lines: list[str] = []
        async with await connect(endpoint, key) as conn:
            during = await conn.job_status(rd)
            final = await conn.follow_log(rd, lines.append, poll_s=0.05)
        return during, final, lines

    during, final, lines = asyncio.run(reattach())
    assert during.state == "running"
    assert final.state == "exited" and final.exit_code == 4
    assert lines == [f"tick {i}" for i in range(1, 26)]


def test_timeout_and_kill_through_sshd(sshd, tmp_path: Path):
    endpoint, key = sshd
    timed, killed = str(tmp_path / "timed"), str(tmp_path / "killed")

    async def go() -> tuple[remote.RemoteJob, remote.RemoteJob]:
        async with await connect(endpoint, key) as conn:
            await conn.start_job(timed, "sleep 300", env={}, workdir=None, timeout_s=1)
            await conn.start_job(killed, "sleep 300", env={}, workdir=None, timeout_s=None)
            first = await conn.follow_log(timed, lambda _: None, poll_s=0.1)
            await conn.kill_job(killed)
            return first, await conn.job_status(killed)

    first, second = asyncio.run(go())
    assert first.exit_code == 124 and second.exit_code == 143
