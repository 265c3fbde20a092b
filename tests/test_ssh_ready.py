"""reconciler.ssh readiness and keys: wait_ready's give-up messages, the stack key file."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.errors import SshError, SshNotReadyError
from reconciler.model import ActualPod, PodStatus, SshEndpoint
from reconciler.ssh import (
    StackKey,
    diagnose,
    ensure_stack_key,
    wait_ready,
)
from reconciler.state import LocalState
from tests.sandbox.conftest import Sandbox, module_sandbox, sb
from tests.test_ssh import actual

__all__ = ["module_sandbox", "sb"]


@pytest.fixture(scope="session")
def stack_key(tmp_path_factory: pytest.TempPathFactory) -> StackKey:
    return ensure_stack_key(tmp_path_factory.mktemp("key") / "r.podctl.id_ed25519")


def bare_pod(**changes: object) -> ActualPod:
    pod = ActualPod(
        pod_id="p1", name="s-box", desired_status=PodStatus.RUNNING, image="img",
        ports=("22/tcp",), runtime_ready=True,
    )  # fmt: skip
    return dataclasses.replace(pod, **changes)  # type: ignore[arg-type]


def give_up(pod: ActualPod, key: StackKey, timeout_s: float = 1.5, **kw: object) -> str:
    async def go() -> str:
        with pytest.raises(SshNotReadyError) as err:
            await wait_ready(pod, key, timeout_s=timeout_s, initial_s=0.1, max_s=0.3, **kw)  # type: ignore[arg-type]
        return str(err.value)

    return asyncio.run(go())


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts TCP connections and never says a word."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        yield int(s.getsockname()[1])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_no_22_tcp_gives_up_at_once(stack_key):
    t0 = time.monotonic()
    message = give_up(bare_pod(ports=("8888/http",)), stack_key, timeout_s=30)
    assert time.monotonic() - t0 < 1
    assert message == (
        "pod s-box (p1) does not expose 22/tcp (its ports: 8888/http), so podctl cannot reach "
        "it over SSH; add `22/tcp` to the pod's `ports` in the spec and apply (RunPod's "
        "ssh.runpod.io proxy cannot run commands or copy files)."
    )


def test_no_port_mapping_yet(stack_key):
    calls = 0

    async def refresh() -> ActualPod:
        nonlocal calls
        calls += 1
        return bare_pod(runtime_ready=False)

    message = give_up(bare_pod(runtime_ready=False), stack_key, refresh=refresh)
    assert message.startswith("pod s-box (p1) has no public IP and port mapped to 22/tcp yet")
    assert "image still pulling" in message and "cloud: secure" in message
    assert calls >= 3  # backoff 0.1, 0.2, 0.3, 0.3 ... within 1.5 s
    # without a way to re-read the pod, waiting cannot help
    assert "no public IP" in give_up(bare_pod(), stack_key, timeout_s=30)


def test_pod_gone_while_waiting(stack_key):
    async def refresh() -> None:
        return None

    assert give_up(bare_pod(), stack_key, refresh=refresh) == (
        "pod s-box (p1) no longer exists while waiting for its SSH"
    )


def test_connection_refused_means_no_sshd(stack_key):
    pod = bare_pod(ssh=SshEndpoint("127.0.0.1", free_port()))
    message = give_up(pod, stack_key, timeout_s=1)
    assert f"connection to 127.0.0.1:{pod.ssh.port} refused: sshd is not running" in message  # type: ignore[union-attr]
    assert "use a RunPod base image" in message


def test_silent_port_times_out(stack_key, silent_port):
    pod = bare_pod(ssh=SshEndpoint("127.0.0.1", silent_port))
    t0 = time.monotonic()
    message = give_up(pod, stack_key, timeout_s=1.5)
    assert time.monotonic() - t0 < 5
    assert f"no SSH answer from 127.0.0.1:{silent_port} in time" in message


def test_auth_refused_with_another_key(sb: Sandbox, stack_key, tmp_path: Path):
    other = ensure_stack_key(tmp_path / "other.podctl.id_ed25519")
    created = sb.create(ports="22/tcp", env=[{"key": "PUBLIC_KEY", "value": other.public_text}])
    pod = asyncio.run(actual(sb, str(created["id"])))
    t0 = time.monotonic()
    message = give_up(pod, stack_key, timeout_s=30)
    assert time.monotonic() - t0 < 10  # three refusals end the wait early
    assert "refused this stack's key (authentication failed)" in message
    assert "created outside podctl or with another key" in message


def test_ready_once_the_endpoint_appears(sb: Sandbox, stack_key):
    created = sb.create(ports="22/tcp", env=[{"key": "PUBLIC_KEY", "value": stack_key.public_text}])
    ready = asyncio.run(actual(sb, str(created["id"])))
    pending = dataclasses.replace(ready, ssh=None, runtime_ready=False)
    answers = iter([pending, ready])

    async def refresh() -> ActualPod:
        return next(answers)

    async def go() -> tuple[str, ...]:
        conn = await wait_ready(pending, stack_key, timeout_s=20, initial_s=0.05, refresh=refresh)
        async with conn:
            assert (await conn.run("echo ok"))[1] == "ok\n"
            return conn.host_keys

    assert len(asyncio.run(go())) == 1


def test_diagnose_a_stopped_pod_and_a_generic_error():
    stopped = bare_pod(desired_status=PodStatus.EXITED)
    assert diagnose(stopped, None) == (
        "pod s-box (p1) is EXITED, not running, so its SSH cannot answer; set `state: running` "
        "for it and apply."
    )
    pod = bare_pod(ssh=SshEndpoint("10.0.0.1", 40022))
    assert diagnose(pod, SshError("boom")) == "pod s-box (p1): SSH to 10.0.0.1:40022 failed: boom"


# --- keys -----------------------------------------------------------------------------------


def test_the_local_state_folder_sits_beside_the_lockfile():
    local = LocalState.beside(Path("/x/llm.podctl.lock"))
    assert local.ssh_key == Path("/x/llm.podctl.id_ed25519")
    assert local.job_logs == Path("/x/llm.podctl.logs")
    assert LocalState.beside(Path("odd")).ssh_key == Path("odd.id_ed25519")


def test_stack_key_is_made_once_private_and_reloaded(tmp_path: Path):
    path = tmp_path / "keys" / "s.podctl.id_ed25519"
    made = ensure_stack_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert made.public_text.startswith("ssh-ed25519 ") and made.public_text.endswith(" podctl-s")
    pub = path.with_name(path.name + ".pub")
    assert pub.read_text() == made.public_text + "\n"
    assert ensure_stack_key(path) == made
    pub.unlink()
    assert ensure_stack_key(path) == made and pub.exists()  # the public half is re-derived
    assert [p.name for p in path.parent.iterdir() if p.name.startswith(".")] == []


def test_a_readable_key_is_refused(tmp_path: Path):
    path = tmp_path / "s.podctl.id_ed25519"
    ensure_stack_key(path)
    path.chmod(0o644)
    with pytest.raises(SshError) as err:
        ensure_stack_key(path)
    assert str(err.value) == (
        f"the SSH key {path} may be read by other users (mode 0644); run `chmod 600 {path}` "
        "and retry"
    )
    path.chmod(0o600)
    path.write_text("not a key")
    with pytest.raises(SshError, match="cannot load the SSH key"):
        ensure_stack_key(path)
