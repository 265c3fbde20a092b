"""quiet_orphan_reads: asyncssh's orphaned parallel-read errors are dropped, nothing else."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncssh

from reconciler.ssh import quiet_orphan_reads


class _SFTPParallelIO:  # named as asyncssh's own class, whose tasks it leaves behind
    async def _start_task(self) -> None:
        raise asyncssh.sftp.SFTPEOFError("")


async def _other() -> None:
    raise ValueError("a real bug")


def test_only_asyncssh_parallel_read_errors_are_dropped() -> None:
    shown: list[dict[str, Any]] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop.default_exception_handler = shown.append  # type: ignore[method-assign,assignment]
        for coro in (_SFTPParallelIO()._start_task(), _other()):
            task = asyncio.ensure_future(coro)
            await asyncio.gather(task, return_exceptions=True)
            context = {"message": "Task exception was never retrieved", "future": task,
                       "exception": task.exception()}  # fmt: skip
            quiet_orphan_reads(loop, context)

    asyncio.run(main())
    assert [type(c["exception"]).__name__ for c in shown] == ["ValueError"]
