"""One SSH connection per pod (asyncssh): host-key pinning, commands, detached jobs, SFTP."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

import asyncssh

from reconciler.errors import HostKeyChangedError, JobError, SshError, TransferError
from reconciler.jobs import remote
from reconciler.jobs.loglines import LineSplitter
from reconciler.jobs.remote import RemoteJob
from reconciler.model import SshEndpoint
from reconciler.ssh import transfer
from reconciler.ssh.keys import StackKey
from reconciler.ssh.transfer import TransferStats

if TYPE_CHECKING:
    from typing import Self

MAX_CHANNELS = 8  # below OpenSSH's MaxSessions (10)
FIRST_LOG_POLL_S = 0.01
LOG_CHUNK = 1 << 20  # log bytes read per poll
OUTPUT_SLACK = 1 << 16  # room for the status block (and a motd) beside the log bytes asked for
STDERR_KEPT = 1 << 16
_HASH_SCRIPT = (
    'cd "$1" 2>/dev/null || exit 0\n'
    "command -v sha256sum >/dev/null 2>&1 || exit 3\n"
    "tr '\\n' '\\000' | xargs -0 -r sha256sum -- 2>/dev/null\n"
    "exit 0\n"
)


def host_key_line(key: asyncssh.SSHKey) -> str:
    """`<type> <base64>`: the OpenSSH public-key line that pins a host key (no comment)."""
    return " ".join(key.export_public_key("openssh").decode().split()[:2])


class PodConnection:
    """One SSH connection to a pod, reused for everything; at most 8 channels at once."""

    def __init__(
        self, conn: asyncssh.SSHClientConnection, endpoint: SshEndpoint, host_keys: tuple[str, ...]
    ) -> None:
        self._conn = conn
        self.endpoint = endpoint
        self.host_keys = host_keys
        self._slots = asyncio.Semaphore(MAX_CHANNELS)
        self.channels_in_use = 0
        self.peak_channels = 0

    @property
    def where(self) -> str:
        return f"root@{self.endpoint.host}:{self.endpoint.port}"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        self._conn.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._conn.wait_closed(), 5)

    @contextlib.asynccontextmanager
    async def _channel(self) -> AsyncIterator[None]:
        async with self._slots:
            self.channels_in_use += 1
            self.peak_channels = max(self.peak_channels, self.channels_in_use)
            try:
                yield
            finally:
                self.channels_in_use -= 1

    async def _exec(
        self, command: str, stdin: bytes | None, timeout_s: float | None
    ) -> tuple[int, bytes, bytes]:
        async with self._channel():
            try:
                result = await self._conn.run(
                    command, input=stdin, encoding=None, timeout=timeout_s, check=False
                )
            except asyncssh.TimeoutError:
                raise SshError(
                    f"a command on {self.where} did not finish within {timeout_s:g}s"
                ) from None
            except (asyncssh.Error, OSError) as exc:
                raise SshError(f"SSH to {self.where} failed: {_reason(exc)}") from exc
        code = result.exit_status
        if code is None:  # killed by a signal, or the channel closed without a status
            code = 255
        out, err = result.stdout or b"", result.stderr or b""
        assert isinstance(out, bytes) and isinstance(err, bytes)
        return code, out, err

    async def run(
        self, command: str, *, stdin: str | None = None, timeout_s: float | None = None
    ) -> tuple[int, str, str]:
        """(exit code, stdout, stderr) of a command; `stdin` is sent, never on the command line."""
        code, out, err = await self._exec(
            command, None if stdin is None else stdin.encode(), timeout_s
        )
        return code, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")

    async def _script(self, script: str, what: str, timeout_s: float | None = 120) -> bytes:
        code, out, err = await self._exec("sh -s", script.encode(), timeout_s)
        if code != 0:
            detail = err.decode("utf-8", "replace").strip()[-500:] or f"exit code {code}"
            raise JobError(f"cannot {what} on {self.where}: {detail}")
        return out

    async def start_job(
        self,
        run_dir: str,
        command: str,
        *,
        env: Mapping[str, str],
        workdir: str | None,
        timeout_s: int | None,
    ) -> RemoteJob:
        """Start the job detached (once: a live or finished run is only reported)."""
        script = remote.start_script(
            run_dir, command, env=env, workdir=workdir, timeout_s=timeout_s
        )
        out = await self._script(script, f"start the job in {run_dir}")
        job, log = remote.split_status(out)
        if job.state == "exited" and job.started_now and len(log) == job.log_bytes:
            return replace(job, log_text=log.decode("utf-8", "replace"))
        return job

    async def job_status(self, run_dir: str) -> RemoteJob:
        out = await self._script(remote.status_script(run_dir), f"read {run_dir}", 60)
        return remote.parse_status(out.decode("utf-8", "replace"))

    async def kill_job(self, run_dir: str) -> None:
        """Kill the job's process group (TERM, KILL after a grace); its exit code is recorded."""
        grace = remote.DEFAULT_GRACE_S
        await self._script(
            remote.kill_script(run_dir, grace_s=grace), f"kill {run_dir}", grace + 30
        )

    async def follow_log(
        self,
        run_dir: str,
        on_line: Callable[[str], None],
        *,
        offset: int = 0,
        poll_s: float = 0.2,
        follow: bool = True,
    ) -> RemoteJob:
        """Call `on_line` for each log line from byte `offset` until the run ends (without
        `follow`: until the end of the log as it is now).

        Reads LOG_CHUNK bytes per command and keeps at most one capped line between them
        (a `\\r` ends a line too: see loglines). Each poll is a short command reading files:
        cancelling this (or losing the client) never touches the detached job. Returns the
        last state seen ("exited", or "lost"/"absent"; "running" only without `follow`).
        """
        pos = offset
        lines = LineSplitter(on_line)
        delay = min(FIRST_LOG_POLL_S, poll_s)  # short jobs end fast: poll soon, then back off
        while True:
            out = await self._bounded_script(
                remote.log_script(run_dir, pos, LOG_CHUNK), f"read the log of {run_dir}", LOG_CHUNK
            )
            job, data = remote.split_status(out)
            if job.log_bytes < pos and not data:  # the run was started afresh: a new log
                pos, lines = 0, LineSplitter(on_line)
                continue
            pos += len(data)
            lines.feed(data)
            if len(data) >= LOG_CHUNK:
                continue
            if job.state != "running" or not follow:
                lines.close()
                return job
            await asyncio.sleep(delay)
            delay = FIRST_LOG_POLL_S if data else min(delay * 2, poll_s)

    async def log_tail(self, run_dir: str, limit: int) -> tuple[RemoteJob, bytes]:
        """(the run's status, the last `limit` bytes of its log)."""
        out = await self._bounded_script(
            remote.tail_script(run_dir, limit), f"read the log of {run_dir}", limit
        )
        return remote.split_status(out)

    async def _bounded_script(
        self, script: str, what: str, limit: int, timeout_s: float = 60
    ) -> bytes:
        """As _script, for a script that prints at most `limit` bytes (and a status block):
        output is read in pieces, and a pod that sends more is refused, not buffered."""
        cap = limit + OUTPUT_SLACK

        async def read_out(stream: asyncssh.SSHReader[bytes]) -> bytes:
            got = bytearray()
            while piece := await stream.read(1 << 16):
                got += piece
                if len(got) > cap:
                    raise JobError(
                        f"cannot {what} on {self.where}: the pod sent more than the "
                        f"{cap} bytes asked for"
                    )
            return bytes(got)

        async def read_err(stream: asyncssh.SSHReader[bytes]) -> bytes:
            kept = b""
            while piece := await stream.read(1 << 16):
                kept = (kept + piece)[-STDERR_KEPT:]
            return kept

        async def go() -> tuple[int, bytes, bytes]:
            proc = await self._conn.create_process("sh -s", input=script.encode(), encoding=None)
            errs = asyncio.ensure_future(read_err(proc.stderr))
            try:
                out = await read_out(proc.stdout)
                err = await errs
                await proc.wait_closed()
            finally:
                errs.cancel()
                proc.close()
            code = proc.exit_status
            return (255 if code is None else code), out, err

        async with self._channel():
            try:
                code, out, err = await asyncio.wait_for(go(), timeout_s)
            except TimeoutError:
                raise SshError(
                    f"a command on {self.where} did not finish within {timeout_s:g}s"
                ) from None
            except (asyncssh.Error, OSError) as exc:
                raise SshError(f"SSH to {self.where} failed: {_reason(exc)}") from exc
        if code != 0:
            detail = err.decode("utf-8", "replace").strip()[-500:] or f"exit code {code}"
            raise JobError(f"cannot {what} on {self.where}: {detail}")
        return out

    # --- transfers ------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _sftp(self) -> AsyncIterator[asyncssh.SFTPClient]:
        """An SFTP session whose closing is bounded: a server stuck in a request (a FIFO it
        opens) never answers the close, and must not hold apply."""
        async with self._channel():
            sftp = await self._conn.start_sftp_client()
            try:
                yield sftp
            finally:
                sftp.exit()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(sftp.wait_closed(), 5)

    async def upload(
        self, local: Path, remote_path: str, *, timeout_s: float = transfer.TIMEOUT_S
    ) -> TransferStats:
        """Send a file or folder; files whose sha256 (so also size) matches are skipped.

        A folder's contents land in `remote_path` (created with its parents); a file lands at
        `remote_path`, or inside it when it ends with "/". Modes are preserved. A symlink in
        the folder is sent as what it points to only when that is inside the folder.
        """
        plan = await asyncio.to_thread(transfer.plan_upload, Path(local), remote_path)
        try:
            async with asyncio.timeout(timeout_s):
                hashes = await asyncio.to_thread(transfer.local_hashes, plan)
                remote_hashes = await self._remote_hashes(plan.base, [f[0] for f in plan.files])
                async with self._sftp() as sftp:
                    return await transfer.upload(
                        sftp, plan, lambda rel: remote_hashes.get(rel) == hashes[rel]
                    )
        except TimeoutError:
            raise TransferError(
                f"upload of {local} to {self.where}:{remote_path} did not finish within "
                f"{timeout_s:g}s"
            ) from None
        except (asyncssh.Error, OSError) as exc:
            raise TransferError(
                f"upload of {local} to {self.where}:{remote_path} failed: "
                + transfer.shown(_reason(exc))
            ) from exc

    async def _remote_hashes(self, base: str, names: list[str]) -> dict[str, str]:
        """sha256 of those of `names` that exist under `base`, in one command ({} if unknown)."""
        listed = [n for n in names if "\n" not in n and "\\" not in n]
        if not listed:
            return {}
        command = f"sh -c {remote.quote(_HASH_SCRIPT)} podctl-hash {remote.quote(base)}"
        code, out, _ = await self._exec(command, ("\n".join(listed) + "\n").encode(), 600)
        if code != 0:
            return {}  # no sha256sum on the pod: upload everything
        result = {}
        for line in out.decode("utf-8", "replace").splitlines():
            digest, sep, name = line.partition("  ")
            if sep and len(digest) == 64:
                result[name] = digest
        return result

    async def download(
        self, remote_path: str, local: Path | str, *, timeout_s: float = transfer.TIMEOUT_S
    ) -> TransferStats:
        """Bring a file or folder like `cp -r` (no deletes); see reconciler.ssh.transfer.

        `local` ending in "/" (or naming an existing folder) receives the remote file under
        its own name, or the remote folder's contents; each file is renamed into place from a
        staging folder, so a failure leaves the old copy.
        """
        try:
            async with asyncio.timeout(timeout_s):
                async with self._sftp() as sftp:
                    return await transfer.download(sftp, remote_path, local, self.where)
        except TimeoutError:
            raise TransferError(
                f"download of {self.where}:{remote_path} to {local} did not finish within "
                f"{timeout_s:g}s; nothing of it was placed"
            ) from None
        except TransferError:
            raise
        except (asyncssh.Error, OSError) as exc:
            raise TransferError(
                f"download of {self.where}:{remote_path} to {local} failed: "
                + transfer.shown(_reason(exc))
            ) from exc


def _reason(exc: BaseException) -> str:
    if isinstance(exc, asyncssh.Error):
        return exc.reason or type(exc).__name__
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


async def connect(
    endpoint: SshEndpoint,
    key: StackKey,
    *,
    pinned: tuple[str, ...] = (),
    timeout_s: float = 10,
) -> PodConnection:
    """Connect as root with the stack key; with `pinned`, the host key must be one of them."""
    where = f"{endpoint.host}:{endpoint.port}"
    try:
        private = asyncssh.read_private_key(str(key.path))
    except (OSError, ValueError, asyncssh.KeyImportError) as exc:
        raise SshError(f"cannot load the SSH key {key.path}: {exc}") from None
    known_hosts: object = None
    if pinned:
        try:
            trusted = [asyncssh.import_public_key(line) for line in pinned]
        except (ValueError, asyncssh.KeyImportError):
            raise SshError(f"a pinned host key for {where} is malformed") from None
        known_hosts = (trusted, [], [])
    try:
        conn = await asyncio.wait_for(
            asyncssh.connect(
                endpoint.host,
                endpoint.port,
                username="root",
                client_keys=[private],
                known_hosts=known_hosts,
                agent_path=None,
                config=[],
                password=None,
                kbdint_auth=False,
                preferred_auth="publickey",
                connect_timeout=timeout_s,
                login_timeout=timeout_s,
                keepalive_interval=30,
            ),
            timeout_s + 1,
        )
    except (asyncssh.HostKeyNotVerifiable, asyncssh.KeyExchangeFailed) as exc:
        if pinned:
            raise host_key_changed(where) from exc
        raise SshError(f"SSH to root@{where} failed: {_reason(exc)}") from exc
    except asyncssh.PermissionDenied as exc:
        raise SshError(f"SSH to root@{where}: the server refused our key") from exc
    except ConnectionRefusedError as exc:
        raise SshError(f"SSH to root@{where}: connection refused") from exc
    except (TimeoutError, asyncssh.ConnectionLost) as exc:
        raise SshError(f"SSH to root@{where}: no answer within {timeout_s:g}s") from exc
    except (asyncssh.Error, OSError) as exc:
        raise SshError(f"SSH to root@{where} failed: {_reason(exc)}") from exc
    server_key = conn.get_server_host_key()
    keys = (host_key_line(server_key),) if server_key is not None else ()
    if pinned and not set(keys) & {" ".join(p.split()[:2]) for p in pinned}:
        conn.close()
        raise host_key_changed(where)
    return PodConnection(conn, endpoint, keys)


def host_key_changed(where: str) -> HostKeyChangedError:
    return HostKeyChangedError(
        f"the SSH host key of {where} is not the one pinned for this pod in the lockfile. "
        "Either the pod was replaced or rebuilt outside podctl (then forget the pin with "
        "`podctl state rm` for that pod, or replace the pod), or someone is intercepting the "
        "connection (a man-in-the-middle): do not go on until you know which."
    )
