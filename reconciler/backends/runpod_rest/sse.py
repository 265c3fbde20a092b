"""Server-sent events of `GET /v2/pods/{id}/logs`: `id: ...`, `data: {"line": ...}`, blank line.

Pure and bounded: a line longer than MAX_LINE (no newline in sight) is a ValueError, never an
ever-growing buffer.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

MAX_LINE = 1 << 20  # bytes of one SSE line


@dataclass(frozen=True)
class LogEvent:
    id: str | None
    line: str


class EventParser:
    """Feed raw bytes in order; each complete event comes out once."""

    def __init__(self) -> None:
        self._buffer = b""
        self._id: str | None = None
        self._data: list[str] = []

    def feed(self, chunk: bytes) -> Iterator[LogEvent]:
        self._buffer += chunk
        while True:
            end = self._buffer.find(b"\n")
            if end < 0:
                if len(self._buffer) > MAX_LINE:
                    raise ValueError(f"a log stream line is longer than {MAX_LINE} bytes")
                return
            raw, self._buffer = self._buffer[:end], self._buffer[end + 1 :]
            line = raw.rstrip(b"\r").decode("utf-8", errors="replace")
            if not line:
                event = self._dispatch()
                if event is not None:
                    yield event
                continue
            if line.startswith(":"):
                continue  # a comment (keep-alive)
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "id":
                self._id = value
            elif field == "data":
                self._data.append(value)

    def _dispatch(self) -> LogEvent | None:
        if not self._data:
            return None
        data, self._data = "\n".join(self._data), []
        try:
            payload = json.loads(data)
        except ValueError:
            payload = None
        line = payload.get("line") if isinstance(payload, dict) else None
        return LogEvent(self._id, line if isinstance(line, str) else data)
