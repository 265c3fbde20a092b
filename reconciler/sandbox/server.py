"""The sandbox server: uvicorn serving the ASGI app, SSH supervisor and timers in one loop.

Run it as `python -m reconciler.sandbox.server --data-dir D [--port P] [--start-delay S]`;
`podctl sandbox start` does the same (in the foreground, or detached with `--detach`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import logging
import math
import os
import signal
import socket
import sys
import time
from collections.abc import Generator, Sequence
from pathlib import Path
from typing import IO, Any

import uvicorn

from reconciler.sandbox import layout
from reconciler.sandbox.app import SandboxApp
from reconciler.sandbox.faults import Faults
from reconciler.sandbox.ssh import SSHSupervisor
from reconciler.sandbox.state import Store

log = logging.getLogger("podctl.sandbox")
TICK = 0.2


class _Server(uvicorn.Server):
    """uvicorn without its signal capture: the sandbox installs its own handlers."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class Sandbox:
    """Everything one sandbox process runs."""

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int = 0,
        start_delay: float = 2.0,
        stock: int | None = None,
        seed: int = 0,
    ) -> None:
        self.data_dir = data_dir
        self.port = port
        self.faults = Faults(seed=seed)
        self.faults.apply({"seed": seed})
        kwargs: dict[str, Any] = {} if stock is None else {"default_stock": stock}
        self.store = Store(data_dir, faults=self.faults, start_delay=start_delay, **kwargs)
        self.ssh = SSHSupervisor(self.store, data_dir)
        self.store.killer = self.ssh.kill
        self.api_key = layout.api_key(data_dir)
        self.app = SandboxApp(
            self.store, self.faults, self.api_key, on_change=self._changed, info=self.info
        )
        self.started_at = time.time()
        self._wake = asyncio.Event()
        self.server: _Server | None = None

    def info(self) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "port": self.port,
            "url": f"http://127.0.0.1:{self.port}",
            "data_dir": str(self.data_dir),
            "started_at": self.started_at,
            "mount_namespace": self.ssh.use_ns,
        }

    async def _changed(self) -> None:
        """After a mutation: bring SSH servers in step before the client gets its answer."""
        await self.ssh.sync()
        self._wake.set()

    async def _ticker(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), TICK)
            self._wake.clear()
            try:
                await self.ssh.sync()
            except Exception:
                log.exception("sandbox tick failed")

    async def run(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.data_dir, 0o700)  # the API key and pod disks live here
        lock = self._lock_data_dir()
        self.store.load()
        # proto IPPROTO_TCP (not 0): asyncio sets TCP_NODELAY only on such sockets, and
        # without it every kept-alive request waits ~40 ms (Nagle + delayed ACK)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", self._pick_port()))
        except OSError:
            if self.port:
                raise
            sock.bind(("127.0.0.1", 0))  # the last port is taken: any port will do
        sock.listen(256)
        self.port = sock.getsockname()[1]
        layout.atomic_write(self.data_dir / layout.PORT_FILE, str(self.port).encode())
        config = uvicorn.Config(
            self.app,
            http="h11",
            lifespan="off",
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=1,
        )
        self.server = _Server(config)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.shutdown)
        await self.ssh.sync()  # pods that were running answer SSH again
        ticker = asyncio.create_task(self._ticker())
        serving = asyncio.create_task(self.server.serve(sockets=[sock]))
        while not self.server.started and not serving.done():
            await asyncio.sleep(0.005)
        if self.server.started:
            layout.write_info(self.data_dir, self.info())
            if not self.ssh.use_ns:
                log.warning(
                    "not root (or no unshare): pod commands run in the volume folder "
                    "($PODCTL_SANDBOX_VOLUME); the mount path does not exist inside commands"
                )
        try:
            await serving
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
            await self.ssh.close_all()
            layout.remove_info(self.data_dir, os.getpid())
            sock.close()
            lock.close()

    def _lock_data_dir(self) -> IO[bytes]:
        """One server per data dir: hold an exclusive lock for the server's life."""
        lock = open(self.data_dir / layout.LOCK_FILE, "ab")  # noqa: SIM115 - held until exit
        for _ in range(10):  # `control` probes the lock for an instant: do not mistake it
            try:
                fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                return lock
            except OSError:
                time.sleep(0.02)
        lock.close()
        raise OSError(f"another sandbox already serves {self.data_dir}")

    def _pick_port(self) -> int:
        """The port asked for; else the last one, so that exported URLs survive a restart."""
        if self.port:
            return self.port
        try:
            return int((self.data_dir / layout.PORT_FILE).read_text())
        except (OSError, ValueError):
            return 0

    def shutdown(self) -> None:
        if self.server is not None:
            self.server.should_exit = True


def _port(text: str) -> int:
    port = int(text)
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port: 1-65535, or 0 for any free one")
    return port


def _not_negative(text: str) -> float:
    number = float(text)
    if not math.isfinite(number) or number < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number >= 0")
    return number


def _count(text: str) -> int:
    number = int(text)
    if number < 0:
        raise argparse.ArgumentTypeError(f"{number} is not a count >= 0")
    return number


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reconciler.sandbox.server")
    parser.add_argument("--data-dir", type=Path, default=layout.default_data_dir())
    parser.add_argument("--port", type=_port, default=0)
    parser.add_argument("--start-delay", type=_not_negative, default=2.0)
    parser.add_argument("--stock", type=_count, default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("asyncssh").setLevel(logging.WARNING)
    sandbox = Sandbox(
        args.data_dir.resolve(),
        port=args.port,
        start_delay=args.start_delay,
        stock=args.stock,
        seed=args.seed,
    )
    try:
        asyncio.run(sandbox.run())
    except OSError as exc:
        print(f"podctl sandbox: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
