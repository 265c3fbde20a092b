"""SFTP uploads and downloads a hostile pod cannot turn against the local disk.

A download walks the remote tree itself (lstat/readdir, bounded), fetches each regular file
into a fresh staging folder opened by directory fd with O_NOFOLLOW, keeps only the links whose
real path stays inside that folder, then renames each file into place: nothing is ever
written, moved or deleted through a symlink, and nothing the download does not bring is
touched. Like `cp -r` / `rsync` without `--delete`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import posixpath
import shutil
import stat
import tempfile
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import asyncssh

from reconciler.errors import TransferError
from reconciler.filehash import file_sha256

TIMEOUT_S = 3600.0  # a whole transfer; a pod cannot hold apply longer
MAX_ENTRIES = 100_000  # names in one remote tree
MAX_DEPTH = 64
MAX_WARNINGS = 50
CHUNK = 1 << 20
PARALLEL = 8
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_STAGE_PREFIX = ".podctl-download-"
T = TypeVar("T")


@dataclass(frozen=True)
class TransferStats:
    """What an upload or download moved: files sent, their bytes, files skipped as unchanged.

    `warnings` are one line each (a skipped link, FIFO...); `landed` is where a download's
    results are on the local disk.
    """

    files: int
    bytes: int
    skipped: int
    warnings: tuple[str, ...] = ()
    landed: str = ""


def shown(name: str | bytes) -> str:
    """A remote or local name fit for a terminal: control characters escaped."""
    text = os.fsdecode(name) if isinstance(name, bytes) else name
    out = []
    for ch in text:
        if ch.isprintable():
            out.append(ch)
        elif 0xDC80 <= ord(ch) <= 0xDCFF:  # an undecodable byte (surrogateescape)
            out.append(f"\\x{ord(ch) - 0xDC00:02x}")
        else:
            out.append(ch.encode("unicode_escape").decode("ascii"))
    return "".join(out)


@dataclass
class _Warnings:
    lines: list[str] = field(default_factory=list)
    dropped: int = 0

    def add(self, line: str) -> None:
        if len(self.lines) < MAX_WARNINGS:
            self.lines.append(line)
        else:
            self.dropped += 1

    def result(self) -> tuple[str, ...]:
        more = (f"... and {self.dropped} more warning(s)",) if self.dropped else ()
        return (*self.lines, *more)


# --- download --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Entry:
    """One remote name to bring: its path under the root, kind, size, mode, link target."""

    parts: tuple[bytes, ...]
    kind: str  # "dir" | "file" | "link"
    size: int = 0
    mode: int = 0o644
    target: bytes = b""

    @property
    def rel(self) -> str:
        return shown(b"/".join(self.parts))


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "dir"
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISLNK(mode):
        return "link"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def _bad_name(name: bytes) -> str:
    if not name or name in (b".", b".."):
        return "an empty or dot name"
    if b"/" in name or b"\0" in name:
        return "a name with '/' or NUL"
    if b"\\" in name:
        return "a name with a backslash"
    return ""


def file_mode(mode: int) -> int:
    """Executables keep their r/x bits (0o755 at most), other files are 0o644."""
    return mode & 0o755 if mode & 0o111 else 0o644


def dir_mode(mode: int) -> int:
    return (mode & 0o755) | 0o700  # podctl must be able to place files in it


async def _walk_remote(sftp: asyncssh.SFTPClient, root: bytes, warn: _Warnings) -> list[_Entry]:
    """Every name under `root`, breadth first; names that cannot be brought are warned about."""
    entries: list[_Entry] = []
    queue: deque[tuple[tuple[bytes, ...], bytes]] = deque([((), root)])
    count = 0
    while queue:
        parts, path = queue.popleft()
        seen: set[bytes] = set()
        async for item in sftp.scandir(path):
            name = item.filename if isinstance(item.filename, bytes) else os.fsencode(item.filename)
            if name in (b".", b".."):
                continue
            count += 1
            if count > MAX_ENTRIES:
                raise TransferError(f"more than {MAX_ENTRIES} names under {shown(root)}")
            here = (*parts, name)
            rel = shown(b"/".join(here))
            why = _bad_name(name)
            if why:
                warn.add(f"skipped '{rel}': {why}")
                continue
            if name in seen:
                warn.add(f"skipped '{rel}': listed twice by the pod")
                continue
            seen.add(name)
            full = posixpath.join(path, name)
            attrs = item.attrs
            if attrs.permissions is None:
                attrs = await sftp.lstat(full)
            mode = attrs.permissions or 0
            kind = _kind(mode)
            if kind == "dir":
                if len(here) >= MAX_DEPTH:
                    warn.add(f"skipped '{rel}': deeper than {MAX_DEPTH} folders")
                    continue
                entries.append(_Entry(here, "dir", mode=stat.S_IMODE(mode)))
                queue.append((here, full))
            elif kind == "file":
                entries.append(_Entry(here, "file", attrs.size or 0, stat.S_IMODE(mode)))
            elif kind == "link":
                target = await sftp.readlink(full)
                target = target if isinstance(target, bytes) else os.fsencode(target)
                entries.append(_Entry(here, "link", target=target))
            else:
                warn.add(f"skipped '{rel}': {kind}")
    return entries


async def _fetch(
    sftp: asyncssh.SFTPClient, remote: bytes, fd: int, size: int, rel: str, warn: _Warnings
) -> int:
    """Copy at most `size` bytes (what lstat said) of `remote` into `fd`; the bytes written."""
    got = 0
    async with sftp.open(remote, "rb") as f:
        while got < size:
            data = await f.read(min(CHUNK, size - got), got)
            if not data:
                warn.add(f"'{rel}' shrank while downloading: kept its first {got} bytes")
                break
            assert isinstance(data, bytes)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            got += len(data)
        if got == size and await f.read(1, size):
            warn.add(f"'{rel}' grew while downloading: kept its first {size} bytes")
    return got


class _Blocked(Exception):
    """Something other than a folder is where a folder must be."""

    def __init__(self, parts: tuple[bytes, ...], what: str) -> None:
        super().__init__(f"{shown(b'/'.join(parts))} is {what} locally")
        self.parts = parts


class _Tree:
    """Folders under a root opened by fd, never through a symlink; creates missing ones."""

    def __init__(self, root_fd: int) -> None:
        self.fds: dict[tuple[bytes, ...], int] = {(): root_fd}

    def folder(self, parts: tuple[bytes, ...], mode: int = 0o755) -> int:
        """The fd of the folder `parts`; OSError (ELOOP, ENOTDIR) when something else is there."""
        fd = self.fds.get(parts)
        if fd is not None:
            return fd
        parent = self.folder(parts[:-1])
        name = parts[-1]
        try:
            fd = os.open(name, _DIR_FLAGS, dir_fd=parent)
        except FileNotFoundError:
            os.mkdir(name, mode, dir_fd=parent)
            fd = os.open(name, _DIR_FLAGS, dir_fd=parent)
            os.fchmod(fd, mode)  # not the umask's idea of it
        except OSError:
            there = os.stat(name, dir_fd=parent, follow_symlinks=False)
            what = "a symlink" if stat.S_ISLNK(there.st_mode) else "not a folder"
            raise _Blocked(parts, what) from None
        self.fds[parts] = fd
        return fd

    def close(self) -> None:
        for fd in self.fds.values():
            with contextlib.suppress(OSError):
                os.close(fd)


def _inside(path: bytes, root: bytes) -> bool:
    return path == root or path.startswith(root + b"/")


def _link_escapes(
    stage: bytes, links: list[_Entry], tree: _Tree, warn: _Warnings
) -> set[tuple[bytes, ...]]:
    """Remove the staged links whose real path leaves the staging folder, until none does.

    Checked only once every link exists: a link can lead out through another one (a chain
    `esc -> d1/.../up/../..` with `up -> ../..` passes any textual check).
    """
    removed: set[tuple[bytes, ...]] = set()
    changed = True
    while changed:
        changed = False
        for entry in links:
            if entry.parts in removed:
                continue
            real = os.path.realpath(os.path.join(stage, *entry.parts))
            if _inside(real, stage):
                continue
            os.unlink(entry.parts[-1], dir_fd=tree.folder(entry.parts[:-1]))
            warn.add(f"skipped the link '{entry.rel}': it leads outside the download")
            removed.add(entry.parts)
            changed = True
    return removed


def _existing_folder(path: Path) -> tuple[bytes, str]:
    """The real path of the longest existing prefix of `path` and a note when it went
    through a symlink (a user's own `results -> /data/results`, there before this download)."""
    absolute = os.path.abspath(path)
    probe = absolute
    while not os.path.lexists(probe):
        probe = os.path.dirname(probe)
    real = os.path.realpath(probe)
    note = ""
    if real != probe:
        note = f"{shown(probe)} is a symlink to {shown(real)}: the results go there"
    rest = os.path.relpath(absolute, probe)
    full = real if rest == "." else os.path.join(real, rest)
    return os.fsencode(full), note


@dataclass
class _Placement:
    files: int = 0
    conflicts: list[str] = field(default_factory=list)


def _place(
    entries: list[_Entry],
    staged: _Tree,
    dest: _Tree,
    dropped: set[tuple[bytes, ...]],
    out: _Placement,
) -> None:
    """Rename each staged file and link into `dest` (atomic per file); folders are made.

    Anything in the way that is not the same kind (a local folder where a file comes, a
    symlink where a folder comes) is left as it is and reported.
    """
    blocked: list[tuple[bytes, ...]] = []
    for entry in entries:
        if entry.parts in dropped or any(entry.parts[: len(b)] == b for b in blocked):
            continue
        try:
            if entry.kind == "dir":
                dest.folder(entry.parts, dir_mode(entry.mode))
                continue
            parent = dest.folder(entry.parts[:-1])
        except _Blocked as exc:
            out.conflicts.append(str(exc))
            blocked.append(exc.parts)
            continue
        name = entry.parts[-1]
        try:
            there = os.stat(name, dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError:
            there = None
        if there is not None and stat.S_ISLNK(there.st_mode):
            if entry.kind == "link" and os.readlink(name, dir_fd=parent) == entry.target:
                continue  # brought by an earlier download: the same link
            out.conflicts.append(f"{entry.rel} is a symlink locally")
            continue
        if there is not None and stat.S_ISDIR(there.st_mode):
            out.conflicts.append(f"{entry.rel} is a folder locally")
            continue
        src = staged.folder(entry.parts[:-1])
        os.replace(name, name, src_dir_fd=src, dst_dir_fd=parent)
        out.files += entry.kind == "file"


async def download(
    sftp: asyncssh.SFTPClient, remote_path: str, local: Path | str, where: str
) -> TransferStats:
    """Bring a remote file or folder to `local` (see the module docstring for the rules).

    `local` ending in "/" or naming an existing folder receives the remote file under its own
    name, or the remote folder's contents (merged); otherwise it names the result.
    """
    warn = _Warnings()
    remote = os.fsencode(remote_path)
    text = str(local)
    into = text.endswith(("/", os.sep)) or os.path.isdir(text)
    try:
        top = await sftp.stat(remote)
    except asyncssh.SFTPNoSuchFile:
        raise TransferError(f"cannot download {where}:{remote_path}: it does not exist") from None
    except asyncssh.SFTPError as exc:
        reason = shown(exc.reason or type(exc).__name__)  # the pod's words: escaped
        raise TransferError(f"cannot download {where}:{remote_path}: {reason}") from exc
    kind = _kind(top.permissions or 0)
    name = posixpath.basename(posixpath.normpath(remote)) or b"root"
    if kind == "dir":
        if os.path.lexists(text) and not os.path.isdir(text):
            raise TransferError(
                f"cannot download the folder {where}:{remote_path} to {text}: that is a file "
                "(end `to` with / or name a folder)"
            )
        folder = Path(text)
        entries = await _walk_remote(sftp, remote, warn)
        sources = {e.parts: posixpath.join(remote, *e.parts) for e in entries}
    elif kind == "file":
        folder = Path(text) if into else Path(os.path.dirname(os.path.abspath(text)))
        leaf = name if into else os.fsencode(os.path.basename(os.path.abspath(text)))
        entries = [_Entry((leaf,), "file", top.size or 0, stat.S_IMODE(top.permissions or 0))]
        sources = {(leaf,): remote}
    else:
        raise TransferError(f"cannot download {where}:{remote_path}: it is {kind}")
    real, note = _existing_folder(folder)
    if note:
        warn.add(note)
    os.makedirs(real, exist_ok=True)
    _sweep_stale_stages(real)
    dest = _Tree(os.open(real, _DIR_FLAGS))
    stage = tempfile.mkdtemp(prefix=_STAGE_PREFIX.encode(), dir=real)
    staged = _Tree(os.open(stage, _DIR_FLAGS))
    placed = _Placement()
    try:
        size, links = await _stage(sftp, entries, sources, staged, warn)
        dropped = {e.parts for e in entries if e.kind == "link"} - {e.parts for e in links}
        dropped |= _link_escapes(stage, links, staged, warn)
        _place(entries, staged, dest, dropped, placed)  # no await: a timeout cannot cut it
    finally:
        staged.close()
        dest.close()
        shutil.rmtree(stage, ignore_errors=True)
    if kind == "dir":
        landed = _display(real) + "/"
    else:
        landed = _display(os.path.join(real, entries[0].parts[0]))
    if placed.conflicts:
        listed = "; ".join(placed.conflicts[:5])
        more = f" (and {len(placed.conflicts) - 5} more)" if len(placed.conflicts) > 5 else ""
        raise TransferError(
            f"download of {where}:{remote_path} to {text}: {len(placed.conflicts)} item(s) not "
            f"placed, the local ones were kept: {listed}{more}; move them aside and apply again"
        )
    return TransferStats(placed.files, size, 0, warn.result(), landed)


def _sweep_stale_stages(folder: bytes) -> None:
    """Remove staging folders a killed podctl left here: untouched for twice the longest a
    transfer may last, so none of them belongs to a download still running."""
    cutoff = time.time() - 2 * TIMEOUT_S
    with contextlib.suppress(OSError), os.scandir(folder) as listing:
        for item in listing:
            if not item.name.startswith(_STAGE_PREFIX.encode()):
                continue
            info = item.stat(follow_symlinks=False)
            if stat.S_ISDIR(info.st_mode) and info.st_mtime < cutoff:
                shutil.rmtree(item.path, ignore_errors=True)  # fd-based: never follows a link


async def _stage(
    sftp: asyncssh.SFTPClient,
    entries: list[_Entry],
    sources: dict[tuple[bytes, ...], bytes],
    staged: _Tree,
    warn: _Warnings,
) -> tuple[int, list[_Entry]]:
    """Folders and files into the staging tree (fetched 8 at a time), then the links.

    Returns the bytes fetched and the links made (absolute ones are skipped: a Python venv
    on the pod has them, and they would point into the local machine).
    """
    for entry in entries:
        if entry.kind == "dir":
            staged.folder(entry.parts, 0o700)
    gate = asyncio.Semaphore(PARALLEL)

    async def one(entry: _Entry) -> int:
        async with gate:
            parent = staged.folder(entry.parts[:-1])
            fd = os.open(entry.parts[-1], _NEW_FILE, 0o600, dir_fd=parent)
            try:
                got = await _fetch(sftp, sources[entry.parts], fd, entry.size, entry.rel, warn)
                os.fchmod(fd, file_mode(entry.mode))
            finally:
                os.close(fd)
            return got

    sizes = await _all([one(e) for e in entries if e.kind == "file"])
    made = []
    for entry in entries:
        if entry.kind != "link":
            continue
        target = entry.target
        if not target or target.startswith(b"/") or b"\\" in target or b"\0" in target:
            kind = "it is absolute" if target.startswith(b"/") else "an unusable target"
            warn.add(f"skipped the link '{entry.rel}' -> '{shown(target)}': {kind}")
            continue
        os.symlink(target, entry.parts[-1], dir_fd=staged.folder(entry.parts[:-1]))
        made.append(entry)
    return sum(sizes), made


async def _all(steps: list[Coroutine[object, object, T]]) -> list[T]:
    """gather(), but a failure cancels the other steps and waits for them: none may go on
    writing into a file descriptor the caller is about to close."""
    tasks = [asyncio.ensure_future(step) for step in steps]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


def _display(path: bytes | str) -> str:
    """A local path as the user would write it: relative to the working folder when inside."""
    text = os.fsdecode(path)
    here = os.getcwd()
    if text == here:
        return "."
    if text.startswith(here + os.sep):
        return shown(os.path.relpath(text, here))
    return shown(text)


# --- upload ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class UploadPlan:
    """What an upload sends: files as (remote relative path, local path, mode), folders."""

    base: str
    files: tuple[tuple[str, Path, int], ...]
    dirs: tuple[tuple[str, int], ...]
    warnings: tuple[str, ...]


def plan_upload(local: Path, remote_path: str) -> UploadPlan:
    """A file or folder to send. A symlink inside a folder is sent as what it points to only
    when that stays inside the folder; others, FIFOs and sockets are skipped with a warning."""
    if not local.exists():
        raise TransferError(f"cannot upload {local}: it does not exist")
    warn = _Warnings()
    if local.is_dir():
        base = posixpath.normpath(remote_path) if remote_path.strip("/") else "/"
        files: list[tuple[str, Path, int]] = []
        dirs: list[tuple[str, int]] = []
        root = os.path.realpath(local)
        _walk_local(root, root, "", files, dirs, {root}, warn)
        return UploadPlan(base, tuple(files), tuple(dirs), warn.result())
    if remote_path.endswith("/"):
        base, name = posixpath.normpath(remote_path), local.name
    else:
        base, name = posixpath.split(posixpath.normpath(remote_path))
    mode = stat.S_IMODE(local.stat().st_mode)
    return UploadPlan(base or ".", ((name, local, mode),), (), ())


def _walk_local(
    root: str,
    folder: str,
    rel: str,
    files: list[tuple[str, Path, int]],
    dirs: list[tuple[str, int]],
    visiting: set[str],
    warn: _Warnings,
) -> None:
    with os.scandir(folder) as listing:
        items = sorted(listing, key=lambda e: e.name)
    for item in items:
        here = f"{rel}/{item.name}" if rel else item.name
        path = item.path
        if item.is_symlink():
            real = os.path.realpath(path)
            if not (real == root or real.startswith(root + os.sep)):
                warn.add(f"skipped the link '{shown(here)}': it points outside the upload")
                continue
            if real in visiting:
                warn.add(f"skipped the link '{shown(here)}': it loops back to its own folder")
                continue
            path = real
        info = os.stat(path)
        if stat.S_ISDIR(info.st_mode):
            dirs.append((here, stat.S_IMODE(info.st_mode)))
            _walk_local(root, path, here, files, dirs, visiting | {os.path.realpath(path)}, warn)
        elif stat.S_ISREG(info.st_mode):
            files.append((here, Path(path), stat.S_IMODE(info.st_mode)))
        else:
            warn.add(f"skipped '{shown(here)}': {_kind(info.st_mode)}")


def local_hashes(plan: UploadPlan) -> dict[str, str]:
    return {rel: file_sha256(path) for rel, path, _ in plan.files}


async def upload(
    sftp: asyncssh.SFTPClient, plan: UploadPlan, same: Callable[[str], bool]
) -> TransferStats:
    """Send the plan's files for which `same(rel)` is false; the others only get their mode.

    Bytes are counted as they are sent, not as the files were sized when planned.
    """
    base = plan.base
    send = [f for f in plan.files if not same(f[0])]
    kept = [f for f in plan.files if same(f[0])]
    parents = {base} | {posixpath.dirname(posixpath.join(base, rel)) for rel, *_ in send}
    for folder in sorted(parents | {posixpath.join(base, d) for d, _ in plan.dirs}):
        await sftp.makedirs(folder, exist_ok=True)
    gate = asyncio.Semaphore(PARALLEL)
    sent: dict[str, int] = {}

    def progress(rel: str) -> Callable[[bytes, bytes, int, int], None]:
        def note(_src: bytes, _dst: bytes, copied: int, _total: int) -> None:
            sent[rel] = copied

        return note

    async def gated(step: Awaitable[object]) -> None:
        async with gate:
            await step

    await _all(
        [
            gated(
                sftp.put(
                    str(path),
                    posixpath.join(base, rel),
                    preserve=True,
                    progress_handler=progress(rel),
                )
            )
            for rel, path, _ in send
        ]
        + [gated(sftp.chmod(posixpath.join(base, rel), mode)) for rel, _, mode in kept]
    )
    for rel_dir, mode in plan.dirs:
        await sftp.chmod(posixpath.join(base, rel_dir), mode)
    return TransferStats(len(send), sum(sent.values()), len(kept), plan.warnings)
