"""Transfers against the sandbox's SFTP: sparse files come back whole, a FIFO freezes nothing."""

from __future__ import annotations

import asyncio
import os

import asyncssh
import pytest

from reconciler.ssh import PodConnection
from tests.test_ssh import module_sandbox, pod, pytestmark, sb, stack_key, volume, with_conn

__all__ = ["module_sandbox", "pod", "pytestmark", "sb", "stack_key"]


def test_a_sparse_file_comes_back_whole(sb, pod, stack_key, tmp_path):
    vol = volume(sb, pod)
    with open(vol / "sparse.bin", "wb") as f:
        f.write(b"head")
        f.seek(5_000_000)
        f.write(b"mid")
        f.truncate(9_000_000)  # ends in a hole

    async def body(conn: PodConnection) -> object:
        return await conn.download("/workspace/sparse.bin", tmp_path / "sparse.bin")

    got = with_conn(pod, stack_key, body)
    data = (tmp_path / "sparse.bin").read_bytes()
    assert len(data) == 9_000_000 and data[:4] == b"head" and data[5_000_000:5_000_003] == b"mid"
    assert got.bytes == 9_000_000  # type: ignore[attr-defined]


def test_reading_a_fifo_over_sftp_does_not_freeze_the_sandbox(sb, pod, stack_key):
    os.mkfifo(volume(sb, pod) / "pipe")

    async def body(conn: PodConnection) -> tuple[int, str, str]:
        sftp = await conn._conn.start_sftp_client()
        try:
            async with sftp.open(b"/workspace/pipe", "rb") as f:
                data: bytes = await asyncio.wait_for(f.read(10), 10)
                assert data == b""  # no writer: nothing
        except asyncssh.SFTPError:
            pass  # or refused: either way the server answers
        finally:
            sftp.exit()
        return await conn.run("echo alive", timeout_s=10)

    assert with_conn(pod, stack_key, body) == (0, "alive\n", "")


@pytest.mark.parametrize("mode", [0o600, 0o755])
def test_an_upload_keeps_its_mode_and_counts_what_it_sent(sb, pod, stack_key, tmp_path, mode):
    src = tmp_path / "one.sh"
    src.write_text("#!/bin/sh\n")
    src.chmod(mode)

    async def body(conn: PodConnection) -> object:
        return await conn.upload(src, "/workspace/in/")

    got = with_conn(pod, stack_key, body)
    assert (got.files, got.bytes) == (1, 10)  # type: ignore[attr-defined]
    assert (volume(sb, pod) / "in" / "one.sh").stat().st_mode & 0o777 == mode
