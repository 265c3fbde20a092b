"""An SSH server whose SFTP lies, as a pod's root could: a virtual tree of links, FIFOs,
endless and hanging files, names that change kind; for tests and benchmarks/hostile_pod.py."""

from __future__ import annotations

import asyncio
import contextlib
import posixpath
import stat
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncssh

from reconciler.model import SshEndpoint
from reconciler.ssh import StackKey, ensure_stack_key


@dataclass
class Node:
    """One name the server shows. `kind` is what lstat/readdir say; the rest is how it acts.

    - "file": `data`, or endless (`endless`: any read returns bytes), or `hang` (open never
      answers); `size` is what lstat claims (default: len(data)).
    - "dir": `children` in listing order; a name may be listed twice (`twice`: then as a
      "dir" with `second`'s children).
    - "link": `target`.  "fifo", "socket", "device": only listed.
    """

    kind: str
    data: bytes = b""
    size: int | None = None
    mode: int | None = None
    endless: bool = False
    hang: bool = False
    fail: str = ""  # open answers this error text
    target: bytes = b""
    children: dict[bytes, Node] = field(default_factory=dict)
    twice: dict[bytes, Node] = field(default_factory=dict)  # listed again after the first


def file(data: bytes | str = b"", **kw: object) -> Node:
    return Node("file", data.encode() if isinstance(data, str) else data, **kw)  # type: ignore[arg-type]


def folder(children: dict[str, Node] | None = None, **twice: Node) -> Node:
    return Node(
        "dir",
        children={k.encode(): v for k, v in (children or {}).items()},
        twice={k.encode(): v for k, v in twice.items()},
    )


def link(target: str) -> Node:
    return Node("link", target=target.encode())


_TYPE = {
    "file": stat.S_IFREG,
    "dir": stat.S_IFDIR,
    "link": stat.S_IFLNK,
    "fifo": stat.S_IFIFO,
    "socket": stat.S_IFSOCK,
    "device": stat.S_IFCHR,
}


def attrs(node: Node) -> asyncssh.SFTPAttrs:
    mode = node.mode if node.mode is not None else (0o755 if node.kind == "dir" else 0o644)
    size = node.size if node.size is not None else len(node.data)
    return asyncssh.SFTPAttrs(permissions=_TYPE[node.kind] | mode, size=size)


class LyingSFTP(asyncssh.SFTPServer):
    """Serves `root` (a dir Node) at `/`; follows its own links when asked to stat or open."""

    def __init__(self, chan: asyncssh.SSHServerChannel[bytes], root: Node) -> None:
        super().__init__(chan)
        self.root = root

    def _find(self, path: bytes, follow: bool, hops: int = 0) -> Node:
        node = self.root
        parts = [p for p in posixpath.normpath(path).split(b"/") if p and p != b"."]
        for i, part in enumerate(parts):
            if node.kind == "link" and hops < 20:
                node = self._find(node.target, True, hops + 1)
            child = node.children.get(part) or node.twice.get(part)
            if child is None:
                raise asyncssh.SFTPNoSuchFile("no such file")
            last = i == len(parts) - 1
            if child.kind == "link" and (follow or not last) and hops < 20:
                base = b"/" + b"/".join(parts[:i])
                child = self._find(posixpath.join(base, child.target), True, hops + 1)
            node = child
        return node

    def stat(self, path: bytes) -> asyncssh.SFTPAttrs:
        return attrs(self._find(path, True))

    def lstat(self, path: bytes) -> asyncssh.SFTPAttrs:
        return attrs(self._find(path, False))

    async def scandir(self, path: bytes) -> AsyncIterator[asyncssh.SFTPName]:
        node = self._find(path, True)
        if node.kind != "dir":
            raise asyncssh.SFTPNoSuchFile("not a folder")
        for group in (node.children, node.twice):
            for name, child in group.items():
                yield asyncssh.SFTPName(name, attrs=attrs(child))

    def readlink(self, path: bytes) -> bytes:
        node = self._find(path, False)
        if node.kind != "link":
            raise asyncssh.SFTPNoSuchFile("not a link")
        return node.target

    async def open(self, path: bytes, pflags: int, attrs: asyncssh.SFTPAttrs) -> object:
        node = self._find(path, True)
        if node.hang or node.kind == "fifo":
            await asyncio.Event().wait()  # like opening a FIFO nobody writes to
        if node.fail:
            raise asyncssh.SFTPFailure(node.fail)
        if node.kind != "file":
            raise asyncssh.SFTPFailure("not a file")
        return node

    def read(self, file_obj: object, offset: int, size: int) -> bytes:
        assert isinstance(file_obj, Node)
        if file_obj.endless:
            return b"z" * size
        return file_obj.data[offset : offset + size]

    def close(self, file_obj: object) -> None:
        return None


@contextlib.asynccontextmanager
async def lying_server(root: Node, key: StackKey) -> AsyncIterator[SshEndpoint]:
    """An SSH server on loopback accepting `key` for any user, serving `root` over SFTP."""
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    server = await asyncssh.listen(
        "127.0.0.1",
        0,
        server_host_keys=[host_key],
        authorized_client_keys=asyncssh.import_authorized_keys(key.public_text),
        sftp_factory=lambda chan: LyingSFTP(chan, root),
        allow_scp=False,
    )
    port = server.sockets[0].getsockname()[1]
    try:
        yield SshEndpoint("127.0.0.1", port)
    finally:
        server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 5)


def stack_key(folder: Path) -> StackKey:
    return ensure_stack_key(folder / "hostile.podctl.id_ed25519")


def chain_tree(victim: Path, depth: int = 30) -> Node:
    """`d1/.../dN/up -> ../..` and `esc -> d1/.../dN/up/../../<enough ..>/<victim>/`, then
    `esc` listed again as a folder holding `precious.txt` and `new.txt` (a client that writes
    through the link it just made lands them in victim)."""
    inner = folder({"up": link("../..")})
    for i in range(depth, 1, -1):
        inner = folder({f"d{i}": inner})
    ups = "/".join([".."] * (depth + 40))
    target = "/".join(f"d{i}" for i in range(1, depth + 1)) + f"/up/../../{ups}{victim}"
    pwn = folder({"precious.txt": file("pwned"), "new.txt": file("planted")})
    return folder({"d1": inner, "esc": link(target), "ok.txt": file("ok\n")}, esc=pwn)


def iter_files(folder_path: Path) -> Iterator[Path]:
    yield from (p for p in sorted(folder_path.rglob("*")) if p.is_file() or p.is_symlink())
