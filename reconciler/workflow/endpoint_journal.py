"""The append-only journal file of an endpoint job's per-line ledger, beside the state.

`<stem>.endpoint-jobs/<job>.jsonl` (0600, in a 0700 folder). One JSON object per line; a
batch of 10,000 lines appends records instead of rewriting the state 10,000 times. Appends
are grouped: every record written while one fsync runs goes out with the next one, so 32
requests in flight cost about one fsync per round, and a record is durable when `append`
returns. A torn last line (a crash mid-write) is skipped when read back.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

MAX_JOURNAL_BYTES = 1 << 30  # a journal read back is bounded


def journal_folder(folder: Path, stem: str) -> Path:
    return folder / f"{stem}.endpoint-jobs"


def journal_path(folder: Path, stem: str, job: str) -> Path:
    return journal_folder(folder, stem) / f"{job}.jsonl"


def read_records(path: Path) -> list[dict[str, Any]]:
    """Every whole record of the file (none when it does not exist)."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_JOURNAL_BYTES)
    except FileNotFoundError:
        return []
    out: list[dict[str, Any]] = []
    for line in raw.split(b"\n"):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            continue  # a torn last line
        if isinstance(rec, dict):
            out.append(rec)
    return out


class EndpointJournal:
    """Appends to one job's journal; `records` is what was there when it was opened."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.records = read_records(path)
        self._fd: int | None = None
        self._pending: list[tuple[bytes, asyncio.Future[None]]] = []
        self._flushing: asyncio.Task[None] | None = None
        self.appended = 0
        self.fsyncs = 0

    def _open(self) -> int:
        if self._fd is None:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
            self._fd = os.open(self.path, flags, 0o600)
            os.fchmod(self._fd, 0o600)  # outputs live here: owner only, even if made otherwise
            # a torn last line from a crash: start the next record on its own line
            size = os.fstat(self._fd).st_size
            if size:
                with open(self.path, "rb") as fh:
                    fh.seek(size - 1)
                    if fh.read(1) != b"\n":
                        os.write(self._fd, b"\n")
        return self._fd

    def _write(self, data: bytes) -> None:
        fd = self._open()
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
        self.fsyncs += 1

    async def append(self, *records: Mapping[str, Any], durable: bool = True) -> None:
        """Append records; when `durable`, return once they are on disk."""
        stamp = round(time.time(), 3)
        data = b"".join(
            json.dumps({**r, "t": stamp}, separators=(",", ":"), ensure_ascii=False).encode(
                "utf-8", "surrogatepass"
            )
            + b"\n"
            for r in records
        )
        self.appended += len(records)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((data, future))
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.create_task(self._flush())
        if durable:
            await asyncio.shield(future)

    async def _flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            data = b"".join(d for d, _ in batch)
            try:
                await asyncio.to_thread(self._write, data)
            except OSError as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for _, future in batch:
                if not future.done():
                    future.set_result(None)

    async def aclose(self) -> None:
        if self._flushing is not None:
            await asyncio.shield(self._flushing)
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
