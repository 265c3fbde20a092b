"""Downloads from a real OpenSSH SFTP server (sshd's internal-sftp) whose tree a pod's root
made hostile: a relative symlink chain, an absolute venv link, a FIFO (skipped without sshd)."""

from __future__ import annotations

import asyncio
import os

from reconciler.ssh import TransferStats, connect
from tests.test_ssh_openssh import pytestmark, sshd

__all__ = ["pytestmark", "sshd"]


def test_a_relative_symlink_chain_through_real_sftp_reaches_nothing_outside(sshd, tmp_path):
    endpoint, key = sshd
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "precious.txt").write_text("mine")
    pod = tmp_path / "pod" / "out"
    deep = pod.joinpath(*(f"d{i}" for i in range(1, 31)))
    deep.mkdir(parents=True)
    (deep / "up").symlink_to("../..")
    chain = "/".join(f"d{i}" for i in range(1, 31)) + "/up/../../" + "../" * 60
    (pod / "esc").symlink_to(chain + str(victim).lstrip("/"))
    (pod / "venv" / "bin").mkdir(parents=True)
    (pod / "venv" / "bin" / "python").symlink_to("/usr/bin/python3")
    os.mkfifo(pod / "pipe")
    (pod / "ok.txt").write_text("ok")
    results = tmp_path / "results"
    results.mkdir()
    (results / "mine.txt").write_text("kept")
    assert os.path.realpath(pod / "esc") == str(victim)  # the chain works on the pod's side

    async def go() -> TransferStats:
        async with await connect(endpoint, key) as conn:
            return await conn.download(str(pod), f"{results}/", timeout_s=60)

    got = asyncio.run(go())
    assert sorted(p.name for p in victim.iterdir()) == ["precious.txt"]
    assert (victim / "precious.txt").read_text() == "mine"
    names = sorted(p.relative_to(results).as_posix() for p in results.rglob("*"))
    assert "esc" not in names and "pipe" not in names and "venv/bin/python" not in names
    assert {"mine.txt", "ok.txt", "venv/bin"} <= set(names)
    assert os.readlink(results.joinpath(*(f"d{i}" for i in range(1, 31)), "up")) == "../.."
    assert sorted(got.warnings) == [
        "skipped 'pipe': a FIFO",
        "skipped the link 'esc': it leads outside the download",
        "skipped the link 'venv/bin/python' -> '/usr/bin/python3': it is absolute",
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pod", "results", "victim"]


def test_an_upload_sends_links_inside_its_folder_and_skips_links_out(sshd, tmp_path):
    endpoint, key = sshd
    src = tmp_path / "data"
    src.mkdir()
    (src / "real.txt").write_text("12345")
    (src / "alias.txt").symlink_to("real.txt")
    (tmp_path / "secret").write_text("private key material")
    (src / "leak").symlink_to(tmp_path / "secret")
    dest = tmp_path / "remote"

    async def go() -> TransferStats:
        async with await connect(endpoint, key) as conn:
            return await conn.upload(src, str(dest))

    got = asyncio.run(go())
    assert sorted(p.name for p in dest.iterdir()) == ["alias.txt", "real.txt"]
    assert (dest / "alias.txt").read_text() == "12345" and not (dest / "alias.txt").is_symlink()
    assert (got.files, got.bytes) == (2, 10)
    assert got.warnings == ("skipped the link 'leak': it points outside the upload",)
