"""reconciler.ssh against the sandbox's real SSH pods: pinning, commands, jobs, transfers."""

from __future__ import annotations

import asyncio
import os
import stat
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from reconciler.backends.runpod_graphql.client import RunPodClient
from reconciler.errors import HostKeyChangedError, SshError, TransferError
from reconciler.jobs import remote
from reconciler.model import ActualPod, SshEndpoint
from reconciler.sandbox import layout, procs
from reconciler.ssh import PodConnection, StackKey, connect, ensure_stack_key
from tests.sandbox.conftest import Sandbox, module_sandbox, sb

__all__ = ["module_sandbox", "sb"]

pytestmark = pytest.mark.skipif(
    not procs.can_use_mount_namespace(), reason="commands see /workspace only in a namespace"
)
SECRET = "tok-ssh-Qx7' $(reboot)"
T = TypeVar("T")


@pytest.fixture(scope="session")
def stack_key(tmp_path_factory: pytest.TempPathFactory) -> StackKey:
    return ensure_stack_key(tmp_path_factory.mktemp("key") / "t.podctl.id_ed25519")


@pytest.fixture
def pod(sb: Sandbox, stack_key: StackKey) -> ActualPod:
    created = sb.create(
        ports="22/tcp,8888/http", env=[{"key": "PUBLIC_KEY", "value": stack_key.public_text}]
    )
    return asyncio.run(actual(sb, str(created["id"])))


async def actual(sb: Sandbox, pod_id: str) -> ActualPod:
    async with RunPodClient(sb.key, api_url=sb.url) as api:
        found = await api.get_pod(pod_id)
    assert found is not None and found.ssh is not None
    return found


def run(coro: Awaitable[T]) -> T:
    async def wrapped() -> T:
        return await coro

    return asyncio.run(wrapped())


def with_conn(pod: ActualPod, key: StackKey, body: Callable[[PodConnection], Awaitable[T]]) -> T:
    async def go() -> T:
        assert pod.ssh is not None
        async with await connect(pod.ssh, key) as conn:
            return await body(conn)

    return asyncio.run(go())


def volume(sb: Sandbox, pod: ActualPod) -> Path:
    return layout.volume_dir(sb.data_dir, pod.pod_id)


@pytest.fixture
def rd() -> Iterator[str]:
    yield remote.run_dir("/workspace", "job", "fp1")


def test_connect_exposes_the_host_key_and_pinning_refuses_another(pod, stack_key):
    assert pod.ssh is not None

    async def go() -> tuple[str, ...]:
        async with await connect(pod.ssh, stack_key) as first:
            keys = first.host_keys
        async with await connect(pod.ssh, stack_key, pinned=keys) as pinned:
            assert pinned.host_keys == keys
            assert await pinned.run("echo $RUNPOD_POD_ID") == (0, pod.pod_id + "\n", "")
        other = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAcx2KjVq3+fT0C7T7e7oTq3iGkYqkXUJ3FZ6V0l7l2y"
        with pytest.raises(HostKeyChangedError) as err:
            await connect(pod.ssh, stack_key, pinned=(other,))
        message = str(err.value)
        assert f"{pod.ssh.host}:{pod.ssh.port}" in message
        assert "podctl state rm" in message and "man-in-the-middle" in message
        return keys

    keys = run(go())
    assert len(keys) == 1 and keys[0].startswith("ssh-ed25519 ") and len(keys[0].split()) == 2


def test_run_returns_code_and_streams_and_sends_stdin(pod, stack_key):
    async def body(conn: PodConnection) -> None:
        assert await conn.run("echo hi; echo err >&2; exit 3") == (3, "hi\n", "err\n")
        assert await conn.run("cat", stdin=SECRET) == (0, SECRET, "")
        with pytest.raises(SshError, match=r"did not finish within 0\.5s"):
            await conn.run("sleep 5", timeout_s=0.5)
        assert (await conn.run("true"))[0] == 0  # the connection survives a timed-out command

    with_conn(pod, stack_key, body)


def test_job_streams_every_line_once_with_env_and_exit_code(sb, pod, stack_key, rd):
    lines: list[str] = []
    command = 'for i in $(seq 1 40); do echo "line $i"; [ $((i % 10)) = 0 ] && sleep 0.2; done\n'
    command += 'printf "%s\\n" "$TOKEN" > /workspace/token; printf "no newline"; exit 7'

    async def body(conn: PodConnection) -> remote.RemoteJob:
        started = await conn.start_job(
            rd, command, env={"TOKEN": SECRET}, workdir="/workspace", timeout_s=None
        )
        assert started.state in ("running", "exited")
        return await conn.follow_log(rd, lines.append, poll_s=0.05)

    final = with_conn(pod, stack_key, body)
    assert final.state == "exited" and final.exit_code == 7
    assert lines == [f"line {i}" for i in range(1, 41)] + ["no newline"]
    vol = volume(sb, pod)
    assert (vol / "token").read_text() == SECRET + "\n"
    run_dir = vol / ".podctl/jobs/job/fp1"
    assert sorted(p.name for p in run_dir.iterdir()) == [
        "exit", "finished", "log", "pgid", "pid", "run.sh", "started", "up",
    ]  # fmt: skip
    for f in run_dir.iterdir():
        assert "tok-ssh" not in f.read_text(), f
    again = with_conn(pod, stack_key, lambda c: c.start_job(rd, command, env={}, workdir=None,
                                                             timeout_s=None))  # fmt: skip
    assert again == final  # a finished run is reported, not re-run


def test_client_dies_mid_job_and_a_reattach_gets_everything(sb, pod, stack_key, rd):
    command = "for i in $(seq 1 30); do echo step $i; sleep 0.1; done; exit 3"
    seen: list[str] = []

    async def first() -> None:
        assert pod.ssh is not None
        conn = await connect(pod.ssh, stack_key)
        await conn.start_job(rd, command, env={}, workdir=None, timeout_s=None)
        follower = asyncio.create_task(conn.follow_log(rd, seen.append, poll_s=0.05))
        while len(seen) < 3:
            await asyncio.sleep(0.05)
        follower.cancel()  # the user pressed Ctrl-C ...
        with pytest.raises(asyncio.CancelledError):
            await follower
        conn._conn.abort()  # ... and the client vanished without a goodbye

    run(first())
    assert 3 <= len(seen) < 30
    status = with_conn(pod, stack_key, lambda c: c.job_status(rd))
    assert status.state == "running"  # the job did not die with the client
    lines: list[str] = []
    final = with_conn(pod, stack_key, lambda c: c.follow_log(rd, lines.append, poll_s=0.05))
    assert final.exit_code == 3 and lines == [f"step {i}" for i in range(1, 31)]
    # a follower resuming at an offset gets only what it has not seen
    offset = len("".join(f"step {i}\n" for i in range(1, 21)))
    tail: list[str] = []
    with_conn(pod, stack_key, lambda c: c.follow_log(rd, tail.append, offset=offset))
    assert tail == [f"step {i}" for i in range(21, 31)]


def test_timeout_and_kill_end_the_whole_group(sb, pod, stack_key):
    timed = remote.run_dir("/workspace", "timed", "f")
    killed = remote.run_dir("/workspace", "killed", "f")
    vol = volume(sb, pod)

    async def body(conn: PodConnection) -> tuple[remote.RemoteJob, remote.RemoteJob]:
        cmd = "sleep 300 & echo $! > /workspace/{0}.child; echo started; wait"
        await conn.start_job(timed, cmd.format("timed"), env={}, workdir=None, timeout_s=1)
        await conn.start_job(killed, cmd.format("killed"), env={}, workdir=None, timeout_s=None)
        t0 = time.monotonic()
        first = await conn.follow_log(timed, lambda _: None, poll_s=0.1)
        assert time.monotonic() - t0 < 6
        await conn.kill_job(killed)
        return first, await conn.job_status(killed)

    first, second = with_conn(pod, stack_key, body)
    assert first.exit_code == 124 and first.timed_out
    assert second.state == "exited" and second.exit_code == 143
    for name in ("timed", "killed"):
        child = int((vol / f"{name}.child").read_text())
        deadline = time.monotonic() + 5
        while os.path.exists(f"/proc/{child}") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not os.path.exists(f"/proc/{child}") or _zombie(child), name


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_upload_skips_unchanged_files_and_keeps_modes(sb, pod, stack_key, tmp_path):
    src = tmp_path / "data"
    (src / "sub").mkdir(parents=True)
    (src / "run.sh").write_text("#!/bin/sh\necho run\n")
    (src / "run.sh").chmod(0o755)
    (src / "secret.txt").write_text("private")
    (src / "secret.txt").chmod(0o600)
    (src / "sub" / "big.bin").write_bytes(os.urandom(300_000))
    (src / "sub").chmod(0o750)
    single = tmp_path / "one.txt"
    single.write_text("one")

    async def body(conn: PodConnection) -> list[object]:
        out: list[object] = [await conn.upload(src, "/workspace/in/data")]
        out.append(await conn.upload(src, "/workspace/in/data"))
        (src / "secret.txt").write_text("changed")
        (src / "run.sh").chmod(0o700)  # a new mode alone is applied, not re-sent
        out.append(await conn.upload(src, "/workspace/in/data"))
        out.append(await conn.upload(single, "/workspace/in/files/"))
        out.append(await conn.upload(single, "/workspace/in/renamed.txt"))
        out.append(await conn.run("cd /workspace/in && stat -c '%a %n' data/* "
                                  "files/one.txt && sh data/run.sh"))  # fmt: skip
        return out

    first, second, third, one, renamed, listing = with_conn(pod, stack_key, body)
    assert (first.files, first.bytes, first.skipped) == (3, 300_000 + 19 + 7, 0)  # type: ignore[attr-defined]
    assert (second.files, second.skipped) == (0, 3)  # type: ignore[attr-defined]
    assert (third.files, third.bytes, third.skipped) == (1, 7, 2)  # type: ignore[attr-defined]
    assert (one.files, renamed.files) == (1, 1)  # type: ignore[attr-defined]
    assert listing == (0, "700 data/run.sh\n600 data/secret.txt\n750 data/sub\n"
                          "644 files/one.txt\nrun\n", "")  # fmt: skip
    vol = volume(sb, pod)
    assert (vol / "in/data/sub/big.bin").read_bytes() == (src / "sub/big.bin").read_bytes()
    assert (vol / "in/renamed.txt").read_text() == "one"
    with pytest.raises(TransferError, match="does not exist"):
        with_conn(pod, stack_key, lambda c: c.upload(tmp_path / "nope", "/workspace/x"))


def test_download_merges_like_cp_and_keeps_what_it_does_not_bring(sb, pod, stack_key, tmp_path):
    vol = volume(sb, pod)
    (vol / "out/deep").mkdir(parents=True)
    (vol / "out/a.txt").write_text("a")
    (vol / "out/deep/b.sh").write_text("b")
    (vol / "out/deep/b.sh").chmod(0o751)
    results = tmp_path / "results"
    results.mkdir()
    (results / "keep.txt").write_text("mine")
    replaced = tmp_path / "replaced"
    (replaced / "old").mkdir(parents=True)

    async def body(conn: PodConnection) -> list[object]:
        out: list[object] = [await conn.download("/workspace/out", f"{results}/")]
        out.append(await conn.download("/workspace/out", replaced))
        out.append(await conn.download("/workspace/out/a.txt", tmp_path / "file.txt"))
        with pytest.raises(TransferError, match="does not exist"):
            await conn.download("/workspace/missing", replaced)
        return out

    into, whole, single = with_conn(pod, stack_key, body)
    assert whole.files == 2  # type: ignore[attr-defined]
    assert (into.files, into.bytes) == (2, 2)  # type: ignore[attr-defined]
    assert sorted(p.relative_to(results).as_posix() for p in results.rglob("*")) == [
        "a.txt", "deep", "deep/b.sh", "keep.txt",
    ]  # fmt: skip
    assert stat.S_IMODE((results / "deep/b.sh").stat().st_mode) == 0o751
    assert sorted(p.name for p in replaced.iterdir()) == ["a.txt", "deep", "old"]  # kept
    assert (single.files, (tmp_path / "file.txt").read_text()) == (1, "a")  # type: ignore[attr-defined]
    # nothing half-done is left beside the destinations (the failed one changed nothing)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt", "replaced", "results"]


def test_at_most_eight_channels_at_once(pod, stack_key):
    async def body(conn: PodConnection) -> str:
        cmd = "echo + >> /workspace/overlap; sleep 0.3; echo - >> /workspace/overlap"
        await asyncio.gather(*(conn.run(cmd) for _ in range(20)))
        assert conn.peak_channels == 8 and conn.channels_in_use == 0
        return (await conn.run("cat /workspace/overlap"))[1]

    marks = with_conn(pod, stack_key, body).split()
    depth = peak = 0
    for mark in marks:
        depth += 1 if mark == "+" else -1
        peak = max(peak, depth)
    assert len(marks) == 40 and peak == 8


def test_a_dropped_connection_is_an_ssh_error(pod, stack_key):
    async def go() -> None:
        assert pod.ssh is not None
        conn = await connect(pod.ssh, stack_key)
        conn._conn.abort()
        await asyncio.sleep(0.05)
        with pytest.raises(SshError, match=f"SSH to root@127.0.0.1:{pod.ssh.port} failed"):
            await conn.run("true")

    run(go())


def test_connect_refuses_a_pod_endpoint_that_is_not_ssh(stack_key):
    async def go() -> None:
        with pytest.raises(SshError, match="connection refused"):
            await connect(SshEndpoint("127.0.0.1", _free_port()), stack_key, timeout_s=2)

    run(go())


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
