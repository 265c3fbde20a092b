"""run(): asyncio.run without Python 3.11's repr of the result on the way out."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class _Box:
    """Holds the coroutine's result; its repr is short, whatever the result is."""

    value: Any = None

    def __repr__(self) -> str:
        return "<result>"


def run(coro: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(coro)`, returning its result.

    Python 3.11's Runner checks its SIGINT handler on exit and, through a failed enum lookup,
    formats the main task with the full repr of its result: tens of milliseconds for a plan
    of 1,000 pods or a listing of 1,000 pods. The task here returns None.
    """
    box = _Box()

    async def main() -> None:
        box.value = await coro

    asyncio.run(main())
    return box.value  # type: ignore[no-any-return]
