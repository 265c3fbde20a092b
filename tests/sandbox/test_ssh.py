"""SSH pods: OpenSSH exec, asyncssh SFTP, the volume at its mount path, processes, restart."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from pathlib import Path

import asyncssh
import pytest

from reconciler.sandbox import control, procs
from tests.sandbox.conftest import Sandbox, start_sandbox

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="the mount namespace needs root")


def ssh(
    port: int, key: Path, command: str, timeout: float = 20
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            "ssh", "-i", str(key), "-p", str(port), "-o", "StrictHostKeyChecking=no",
            "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "BatchMode=yes",
            "root@127.0.0.1", command,
        ],
        capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


def _create_ssh_pod(sb: Sandbox, pub: str) -> str:
    pod = sb.create(
        ports="22/tcp", env=[{"key": "PUBLIC_KEY", "value": pub}, {"key": "X", "value": "1"}]
    )
    return str(pod["id"])


def _mutate(sb: Sandbox, name: str, pod_id: str) -> None:
    sb.gql(f'mutation {{ {name}(input: {{podId: "{pod_id}"}}) {{ id }} }}')


def _dead(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def _wait_dead(pid: int, timeout: float = 5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _dead(pid):
            return True
        time.sleep(0.05)
    return False


async def _sftp_roundtrip(port: int, key: Path) -> tuple[list[str], bytes, bytes]:
    async with asyncssh.connect(
        "127.0.0.1", port, username="root", client_keys=[str(key)], known_hosts=None
    ) as conn:
        async with conn.start_sftp_client() as sftp:
            async with sftp.open("/workspace/sftp.txt", "wb") as f:
                await f.write(b"via sftp\n")
            names = sorted(await sftp.listdir("/workspace"))
            async with sftp.open("/workspace/shell.txt", "rb") as f:
                raw: object = await f.read()
                assert isinstance(raw, bytes)
                data = raw
            cwd = await sftp.realpath(".")
        result = await conn.run("cat /workspace/sftp.txt", check=True)
    assert isinstance(result.stdout, str)
    return [n for n in names if n not in (".", "..")], data, (cwd + "|" + result.stdout).encode()


@needs_root
def test_ssh_exec_sftp_and_volume_across_stop_resume(sb: Sandbox, client_key):
    key, pub = client_key
    pod_id = _create_ssh_pod(sb, pub)
    port = sb.ssh_port(pod_id)
    out = ssh(port, key, "echo hi; ls /workspace")
    assert out.returncode == 0, out.stderr
    assert out.stdout == "hi\n"
    out = ssh(
        port, key, "echo shell > /workspace/shell.txt; touch ~/scratch; echo oops >&2; exit 7"
    )
    assert out.returncode == 7 and out.stderr == "oops\n"
    env = ssh(port, key, 'echo "$RUNPOD_POD_ID $X $PUBLIC_KEY $RUNPOD_TCP_PORT_22"').stdout.split()
    assert env[:2] == [pod_id, "1"] and env[-1] == str(port) and pub.split()[1] in env

    names, data, extra = asyncio.run(_sftp_roundtrip(port, key))
    assert names == ["sftp.txt", "shell.txt"]
    assert data == b"shell\n"
    assert extra == b"/root|via sftp\n"

    _mutate(sb, "podStop", pod_id)
    assert sb.pod(pod_id)["runtime"] is None  # type: ignore[index]
    assert ssh(port, key, "true", timeout=10).returncode != 0  # nothing listens any more
    _mutate(sb, "podResume", pod_id)
    new_port = sb.ssh_port(pod_id)
    out = ssh(new_port, key, "ls /workspace; echo ---; ls -A ~")
    assert out.stdout == "sftp.txt\nshell.txt\n---\n", out.stderr


@needs_root
def test_account_key_with_start_ssh(sb: Sandbox, client_key):
    key, pub = client_key
    sb.gql("mutation($k: String) { updateUserSettings(input: {pubKey: $k}) { id } }", {"k": pub})
    assert sb.gql("{ myself { pubKey } }")["myself"]["pubKey"] == pub
    pod = sb.create(ports="22/tcp", startSsh=True, volumeMountPath="/runpod-volume")
    out = ssh(
        sb.ssh_port(pod["id"]),
        key,
        "echo $PUBLIC_KEY; mountpoint -q /runpod-volume && echo mounted",
    )
    assert out.stdout.split("\n")[:2] == [pub, "mounted"], out.stderr
    no_ssh = sb.create(ports="22/tcp")  # no PUBLIC_KEY, no startSsh: no key, no server
    assert ssh(sb.ssh_port(no_ssh["id"]), key, "true", timeout=10).returncode != 0
    existed = os.path.isdir("/runpod-volume") and not _created_by_sandbox(sb, "/runpod-volume")
    sb.gql(f'mutation {{ podTerminate(input: {{podId: "{pod["id"]}"}}) }}')
    assert os.path.isdir("/runpod-volume") == existed  # a mount point it made is removed


def _created_by_sandbox(sb: Sandbox, path: str) -> bool:
    import json

    state = json.loads((sb.data_dir / "state.json").read_text())
    return path in state.get("mount_points", [])


def test_processes_outlive_the_client_and_die_with_the_pod(sb: Sandbox, client_key):
    key, pub = client_key
    pod_id = _create_ssh_pod(sb, pub)
    port = sb.ssh_port(pod_id)
    bg = ssh(port, key, "nohup sleep 300 >/dev/null 2>&1 & echo $!")
    bg_pid = int(bg.stdout)
    fg = subprocess.Popen(
        ["ssh", "-i", str(key), "-p", str(port), "-o", "StrictHostKeyChecking=no",
         "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "root@127.0.0.1",
         "echo $$; exec sleep 301"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert fg.stdout is not None
    fg_pid = int(fg.stdout.readline())
    fg.kill()  # the client goes away
    fg.wait()
    fg.stdout.close()
    time.sleep(0.3)
    assert not _dead(bg_pid) and not _dead(fg_pid)
    _mutate(sb, "podStop", pod_id)
    assert _wait_dead(bg_pid) and _wait_dead(fg_pid)

    _mutate(sb, "podResume", pod_id)
    pid = int(ssh(sb.ssh_port(pod_id), key, "setsid sleep 302 >/dev/null 2>&1 & echo $!").stdout)
    sb.gql(
        "mutation($i: PodEditJobInput!) { podEditJob(input: $i) { id } }",
        {"i": {"podId": pod_id, "imageName": "img:2"}},
    )
    assert _wait_dead(pid)  # an edit resets the pod
    pid = int(ssh(sb.ssh_port(pod_id), key, "setsid sleep 303 >/dev/null 2>&1 & echo $!").stdout)
    sb.gql(f'mutation {{ podTerminate(input: {{podId: "{pod_id}"}}) }}')
    assert _wait_dead(pid)


def test_without_root_commands_run_in_the_volume_folder(tmp_path: Path):
    argv, cwd = procs.command_argv("ls", tmp_path / "v", "/workspace", tmp_path / "c", False)
    assert argv[-2:] == ["-c", "ls"] and cwd == str(tmp_path / "v")
    argv, cwd = procs.command_argv("ls", tmp_path / "v", "/workspace", tmp_path / "c", True)
    assert argv[:4] == ["unshare", "--mount", "--propagation", "private"]
    assert cwd == str(tmp_path / "c")


async def _host_key(port: int, key: Path) -> str:
    async with asyncssh.connect(
        "127.0.0.1", port, username="root", client_keys=[str(key)], known_hosts=None
    ) as conn:
        host_key = conn.get_server_host_key()
        assert host_key is not None
        return host_key.get_fingerprint()


def test_restart_restores_state_and_ssh(tmp_path: Path, client_key):
    key, pub = client_key
    data_dir = tmp_path / "sbx"
    sb = start_sandbox(data_dir)
    try:
        pod_id = _create_ssh_pod(sb, pub)
        stopped = sb.create(name="stopped")
        _mutate(sb, "podStop", stopped["id"])
        port = sb.ssh_port(pod_id)
        fingerprint = asyncio.run(_host_key(port, key))
        assert ssh(port, key, "echo kept > /workspace/f").returncode == 0
        job = int(ssh(port, key, "nohup sleep 304 >/dev/null 2>&1 & echo $!").stdout)
        url = sb.url
        control.stop(data_dir)
        assert control.find_running(data_dir) is None
        assert not _dead(job)  # the API went away, the pod did not

        sb = start_sandbox(data_dir)
        assert sb.url == url  # the API port is kept when free
        pods = sb.gql("{ myself { pods { id desiredStatus } } }")["myself"]["pods"]
        assert {p["id"]: p["desiredStatus"] for p in pods} == {
            pod_id: "RUNNING",
            stopped["id"]: "EXITED",
        }
        port2 = sb.ssh_port(pod_id)
        assert port2 == port
        assert asyncio.run(_host_key(port2, key)) == fingerprint
        assert ssh(port2, key, "cat /workspace/f").stdout == "kept\n"
        _mutate(sb, "podStop", pod_id)  # kills processes started before the restart too
        assert _wait_dead(job)
        _mutate(sb, "podResume", pod_id)
        job = int(ssh(sb.ssh_port(pod_id), key, "nohup sleep 305 >/dev/null 2>&1 & echo $!").stdout)
        control.stop(data_dir, kill_pods=True)
        assert _wait_dead(job)
    finally:
        control.reset(data_dir)
        control.stop(data_dir)


def test_fallback_without_mount_namespace(tmp_path: Path, client_key, monkeypatch):
    key, pub = client_key
    monkeypatch.setenv("PODCTL_SANDBOX_NO_NAMESPACE", "1")
    data_dir = tmp_path / "nons"
    sb = start_sandbox(data_dir)
    try:
        assert control.status(data_dir)["mount_namespace"] is False  # type: ignore[index]
        pod_id = _create_ssh_pod(sb, pub)
        out = ssh(sb.ssh_port(pod_id), key, 'echo v > f; pwd; echo "$PODCTL_SANDBOX_VOLUME"')
        volume = str(data_dir / "pods" / pod_id / "volume")
        assert out.stdout == f"{volume}\n{volume}\n", out.stderr
        assert (data_dir / "pods" / pod_id / "volume" / "f").read_text() == "v\n"
    finally:
        control.reset(data_dir)
        control.stop(data_dir)
