"""Log reads over SSH against the sandbox's pods: bounded output, `\\r` lines, tails."""

from __future__ import annotations

import pytest

from reconciler.errors import JobError
from reconciler.jobs import remote
from reconciler.ssh import PodConnection
from tests.test_ssh import module_sandbox, pod, pytestmark, sb, stack_key, with_conn

__all__ = ["module_sandbox", "pod", "pytestmark", "sb", "stack_key"]

RD = remote.run_dir("/workspace", "bar", "fp1")


def test_a_pod_that_sends_more_than_asked_is_refused_not_buffered(pod, stack_key):
    async def body(conn: PodConnection) -> None:
        assert await conn._bounded_script("printf ok; echo oops >&2", "read", 10) == b"ok"
        with pytest.raises(JobError, match="sent more than the 65546 bytes asked for"):
            await conn._bounded_script("head -c 50000000 /dev/zero", "read the log", 10)
        with pytest.raises(JobError, match=r"cannot read on .*: oops"):
            await conn._bounded_script("echo oops >&2; exit 3", "read", 10)
        assert (await conn.run("true"))[0] == 0  # the connection is still good

    with_conn(pod, stack_key, body)


def test_follow_log_splits_progress_lines_and_tails_read_the_end(pod, stack_key):
    command = (
        "i=0; while [ $i -lt 3000 ]; do printf 'step %d %0500d\\r' $i 0; i=$((i+1)); done;"
        " echo; echo last"
    )
    lines: list[str] = []

    async def body(conn: PodConnection) -> tuple[remote.RemoteJob, bytes]:
        await conn.start_job(RD, command, env={}, workdir=None, timeout_s=None)
        final = await conn.follow_log(RD, lines.append, poll_s=0.05)
        assert final.exit_code == 0
        again: list[str] = []
        assert (await conn.follow_log(RD, again.append, follow=False)).state == "exited"
        assert again == lines
        return await conn.log_tail(RD, 12)

    seen, data = with_conn(pod, stack_key, body)
    pad = "0" * 500
    assert lines == [f"step {i} {pad}" for i in range(3000)] + ["last"]  # 1.5 MB: two chunks
    assert data == f"{pad}\r\nlast\n".encode()[-12:] and seen.log_bytes > 1 << 20
