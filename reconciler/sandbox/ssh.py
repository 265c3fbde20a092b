"""SSH for pods: one asyncssh server per running pod with `22/tcp` and a key (exec + SFTP)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reconciler.sandbox import gpus, layout, procs
from reconciler.sandbox.state import Pod, Store, free_tcp_port

if TYPE_CHECKING:
    import asyncssh

log = logging.getLogger("podctl.sandbox.ssh")
PIPE = asyncio.subprocess.PIPE
_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def authorized_keys_text(pod: Pod, account_pub_key: str) -> str:
    """RunPod's rule: the pod's `PUBLIC_KEY` env, else the account's keys when `startSsh`."""
    env_key = pod.env_dict().get("PUBLIC_KEY", "").strip()
    if env_key:
        return env_key
    return account_pub_key.strip() if pod.start_ssh else ""


@dataclass(eq=False)
class PodServer:
    """The SSH server of one pod generation."""

    pod_id: str
    generation: int
    port: int
    acceptor: Any = None
    conns: set[asyncssh.SSHServerConnection] = field(default_factory=set)
    pgids: set[int] = field(default_factory=set)
    holder: asyncio.subprocess.Process | None = None  # holds the pod's mount namespace

    def holder_pid(self) -> int | None:
        """The namespace holder's pid while it lives, else None (commands build their own)."""
        if self.holder is None or self.holder.returncode is not None:
            return None
        return self.holder.pid


class SSHSupervisor:
    """Keeps one SSH server per running pod, in step with the store; kills pod processes."""

    def __init__(self, store: Store, data_dir: Path) -> None:
        self.store = store
        self.data_dir = data_dir
        self.servers: dict[str, PodServer] = {}
        self.use_ns = procs.can_use_mount_namespace()
        self._failed: set[tuple[str, int]] = set()  # (pod, generation): do not retry each tick
        self._lock = asyncio.Lock()

    def kill(self, pod_id: str) -> None:
        """Kill every process of the pod (sync: called from the store's stop/edit/terminate)."""
        server = self.servers.get(pod_id)
        procs.kill_pod(pod_id, self.data_dir, set(server.pgids) if server else set())

    async def sync(self) -> None:
        async with self._lock:
            for pod_id in list(self.servers):
                pod = self.store.get(pod_id)
                server = self.servers[pod_id]
                if (
                    pod is None
                    or pod.desired_status != "RUNNING"
                    or pod.generation != server.generation
                    or pod.ssh_port() != server.port
                ):
                    await self._close(pod_id)
            for pod in list(self.store.pods.values()):
                if pod.id in self.servers or pod.desired_status != "RUNNING":
                    continue
                if (pod.id, pod.generation) in self._failed:
                    continue
                if pod.ssh_port() is None:
                    continue
                text = authorized_keys_text(pod, self.store.account.pub_key)
                if not text:
                    continue
                from reconciler.sandbox.ssh_server import parse_keys  # asyncssh: lazily

                keys = parse_keys(text)
                if keys is None:
                    continue
                try:
                    await self._start(pod, keys)
                except Exception:  # one broken pod must not stop the others
                    log.exception("cannot start SSH for pod %s", pod.id)
                    self._failed.add((pod.id, pod.generation))

    async def _start(self, pod: Pod, keys: asyncssh.SSHAuthorizedKeys) -> None:
        import asyncssh

        from reconciler.sandbox.ssh_server import ConnTracker, PodSFTP, load_host_key

        port = pod.ssh_port()
        assert port is not None
        host_key = load_host_key(layout.host_key_file(self.data_dir, pod.id))
        volume = layout.volume_dir(self.data_dir, pod.id)
        container = layout.container_dir(self.data_dir, pod.id)
        volume.mkdir(parents=True, exist_ok=True)
        container.mkdir(parents=True, exist_ok=True)
        gpus.install(self.data_dir, pod.id, pod.gpu_count)
        if self.use_ns:
            try:
                if procs.prepare_mount_point(pod.volume_mount_path):
                    self.store.note_mount_point(pod.volume_mount_path)
            except OSError:
                log.warning("cannot create %s; commands will not see the volume there", pod.id)
        server = PodServer(pod.id, pod.generation, port)
        if self.use_ns and procs.can_enter_namespaces():
            server.holder = await self._hold_namespace(pod, port, volume, container)

        async def handle(process: asyncssh.SSHServerProcess[bytes]) -> None:
            await self._run(server, pod, process)

        def sftp(chan: asyncssh.SSHServerChannel[bytes]) -> PodSFTP:
            return PodSFTP(chan, volume, pod.volume_mount_path, container)

        for attempt in range(2):
            try:
                server.acceptor = await asyncssh.create_server(
                    lambda: ConnTracker(server),
                    "127.0.0.1",
                    server.port,
                    server_host_keys=[host_key],
                    authorized_client_keys=keys,
                    process_factory=handle,
                    sftp_factory=sftp,
                    allow_scp=True,
                    encoding=None,
                    keepalive_interval=0,
                )
                break
            except OSError:
                if attempt:
                    raise
                # the port was taken while the sandbox was down: pick a new one
                used = {p for other in self.store.pods.values() for p in other.port_map.values()}
                server.port = free_tcp_port(used)
                pod.port_map["22/tcp"] = server.port
                self.store.save()
        self.servers[pod.id] = server

    async def _hold_namespace(
        self, pod: Pod, port: int, volume: Path, container: Path
    ) -> asyncio.subprocess.Process | None:
        """Start the pod's namespace holder; None (commands fall back) if it is not up in 2 s."""
        try:
            proc = await asyncio.create_subprocess_exec(
                *procs.holder_argv(volume, pod.volume_mount_path, container),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
                env=self.pod_env(pod, port),
                start_new_session=True,
            )
        except OSError:
            return None
        for _ in range(200):
            if procs.holder_ready(proc.pid):
                return proc
            if proc.returncode is not None:
                break
            await asyncio.sleep(0.01)
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        with contextlib.suppress(Exception):
            await proc.wait()
        log.warning("pod %s: no namespace holder; each command builds its own", pod.id)
        return None

    async def _close(self, pod_id: str) -> None:
        server = self.servers.pop(pod_id)
        if server.holder is not None and server.holder.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                server.holder.kill()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.holder.wait(), 2)
        if server.acceptor is not None:
            server.acceptor.close()
        for conn in list(server.conns):
            conn.close()
        if server.acceptor is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.acceptor.wait_closed(), 2)

    async def close_all(self) -> None:
        async with self._lock:
            for pod_id in list(self.servers):
                await self._close(pod_id)

    def pod_env(self, pod: Pod, port: int) -> dict[str, str]:
        shell = procs.login_shell()
        env = {
            "PATH": f"{gpus.bin_dir(self.data_dir, pod.id)}:{_PATH}",  # nvidia-smi's stand-in
            "HOME": "/root",
            "USER": "root",
            "LOGNAME": "root",
            "SHELL": shell,
            "LANG": "C.UTF-8",
        }
        env.update(pod.env_dict())
        env.update(
            {
                "RUNPOD_POD_ID": pod.id,
                "RUNPOD_POD_HOSTNAME": pod.pod_host_id,
                "RUNPOD_DC_ID": pod.data_center_id,
                "RUNPOD_GPU_COUNT": str(pod.gpu_count),
                "RUNPOD_CPU_COUNT": str(pod.vcpu_count),
                "RUNPOD_MEM_GB": str(pod.memory_gb),
                "RUNPOD_PUBLIC_IP": "127.0.0.1",
                "RUNPOD_TCP_PORT_22": str(port),
                "RUNPOD_API_KEY": pod.api_key,  # pod-scoped, as RunPod's
                "RUNPOD_VOLUME_MOUNT_PATH": pod.volume_mount_path,
                "PUBLIC_KEY": authorized_keys_text(pod, self.store.account.pub_key),
                procs.MARK_DIR: str(self.data_dir),
            }
        )
        if not self.use_ns:
            env["HOME"] = str(layout.container_dir(self.data_dir, pod.id))
            env["PODCTL_SANDBOX_VOLUME"] = str(layout.volume_dir(self.data_dir, pod.id))
        return env

    async def _run(
        self, server: PodServer, pod: Pod, process: asyncssh.SSHServerProcess[bytes]
    ) -> None:
        """Run one exec/shell request; the process outlives the client, as on a real pod."""
        try:
            command = process.command or f"exec {procs.login_shell()}"
            holder = server.holder_pid()
            if holder is not None:
                argv = procs.nsenter_argv(holder, command)
                cwd = str(layout.container_dir(self.data_dir, pod.id))
            else:
                argv, cwd = procs.command_argv(
                    command,
                    layout.volume_dir(self.data_dir, pod.id),
                    pod.volume_mount_path,
                    layout.container_dir(self.data_dir, pod.id),
                    self.use_ns,
                )
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=PIPE,
                stdout=PIPE,
                stderr=PIPE,
                cwd=cwd,
                env=self.pod_env(pod, server.port),
                start_new_session=True,
            )
        except Exception as exc:
            log.exception("cannot start a command in pod %s", pod.id)
            with contextlib.suppress(Exception):
                process.stderr.write(f"podctl sandbox: cannot start: {exc}\n".encode())
                process.exit(127)
            return
        server.pgids.add(proc.pid)
        try:
            feeder = asyncio.create_task(_feed_stdin(process, proc))
            assert proc.stdout is not None and proc.stderr is not None
            await asyncio.gather(
                _pump(proc.stdout, process.stdout), _pump(proc.stderr, process.stderr)
            )
            status = await proc.wait()
            feeder.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await feeder
        finally:
            server.pgids.discard(proc.pid)
        if not process.channel.is_closing():
            with contextlib.suppress(Exception):
                process.exit(status if status >= 0 else 128 - status)


async def _pump(src: asyncio.StreamReader, dst: Any) -> None:
    """Subprocess pipe -> SSH channel; once the client is gone, keep draining (no SIGPIPE)."""
    alive = True
    while data := await src.read(65536):
        if not alive:
            continue
        try:
            dst.write(data)
            await dst.drain()
        except Exception:
            alive = False


async def _feed_stdin(process: asyncssh.SSHServerProcess[bytes], proc: Any) -> None:
    try:
        while data := await process.stdin.read(65536):
            proc.stdin.write(data)
            await proc.stdin.drain()
    except Exception:
        pass
    finally:
        with contextlib.suppress(Exception):
            proc.stdin.close()
