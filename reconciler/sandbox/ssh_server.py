"""The asyncssh side of pod SSH: key parsing, host keys, the SFTP view of a pod's disks.

Imported only when a pod actually needs an SSH server, so the sandbox starts without asyncssh.
"""

from __future__ import annotations

import asyncio
import logging
import os
import posixpath
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncssh

from reconciler.sandbox import layout

if TYPE_CHECKING:
    from reconciler.sandbox.ssh import PodServer

log = logging.getLogger("podctl.sandbox.ssh")


def parse_keys(text: str) -> asyncssh.SSHAuthorizedKeys | None:
    """authorized_keys from `PUBLIC_KEY`-style text; malformed lines are skipped."""
    good = []
    for line in text.replace("\\n", "\n").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            asyncssh.import_authorized_keys(line)
        except (ValueError, asyncssh.KeyImportError):
            log.warning("ignoring a malformed public key")
            continue
        good.append(line)
    return asyncssh.import_authorized_keys("\n".join(good)) if good else None


def load_host_key(path: Path) -> asyncssh.SSHKey:
    """The pod's host key, created on first use and kept for the pod's whole life."""
    if path.exists():
        return asyncssh.read_private_key(str(path))
    key = asyncssh.generate_private_key("ssh-ed25519")
    path.parent.mkdir(parents=True, exist_ok=True)
    layout.atomic_write(path, key.export_private_key())
    return key


class PodSFTP(asyncssh.SFTPServer):
    """SFTP as seen inside the pod: the mount path is the volume, `/root` the container disk."""

    def __init__(
        self, chan: asyncssh.SSHServerChannel[bytes], volume: Path, mount: str, container: Path
    ) -> None:
        super().__init__(chan)
        self._maps = [
            (posixpath.normpath(mount).encode(), os.fsencode(volume)),
            (b"/root", os.fsencode(container)),
        ]

    def map_path(self, path: bytes) -> bytes:
        full = posixpath.normpath(posixpath.join(b"/root", path))
        for inside, outside in self._maps:
            if full == inside or full.startswith(inside + b"/"):
                return outside + full[len(inside) :]
        return full

    # in a worker thread: a FIFO swapped in after the check then blocks it, not the event loop
    async def open(self, path: bytes, pflags: int, attrs: asyncssh.SFTPAttrs) -> Any:
        self._refuse_special(path)
        return await asyncio.to_thread(super().open, path, pflags, attrs)

    async def open56(
        self, path: bytes, desired_access: int, flags: int, attrs: asyncssh.SFTPAttrs
    ) -> Any:
        self._refuse_special(path)
        return await asyncio.to_thread(super().open56, path, desired_access, flags, attrs)

    def _refuse_special(self, path: bytes) -> None:
        """A FIFO, device or socket is refused: opening one blocks the whole event loop."""
        try:
            mode = os.stat(self.map_path(path)).st_mode
        except OSError:
            return  # missing: asyncssh creates it or answers the error
        if not stat.S_ISREG(mode) and not stat.S_ISDIR(mode):
            shown = path.decode(errors="replace")
            raise asyncssh.SFTPPermissionDenied(f"{shown} is not a regular file")

    def reverse_map_path(self, path: bytes) -> bytes:
        for inside, outside in self._maps:
            if path == outside or path.startswith(outside + b"/"):
                return inside + path[len(outside) :]
        return path


class ConnTracker(asyncssh.SSHServer):
    def __init__(self, owner: PodServer) -> None:
        self.owner = owner
        self.conn: asyncssh.SSHServerConnection | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self.conn = conn
        self.owner.conns.add(conn)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.conn is not None:
            self.owner.conns.discard(self.conn)
