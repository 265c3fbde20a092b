"""Log bytes as lines in bounded memory: `\\n`, `\\r\\n` or a lone `\\r` ends one; each is capped.

Progress bars (tqdm) redraw with `\\r` and may never print a newline, so a log can be one
line of hundreds of MB: each line keeps at most LINE_CAP bytes, and the rest is counted.
"""

from __future__ import annotations

import re
from collections.abc import Callable

LINE_CAP = 1 << 16  # bytes kept of one line; the rest becomes `…[truncated N bytes]`
TAIL_MAX = 8 << 20  # the most bytes read from the end of a log for `--tail`
_BREAK = re.compile(rb"\r\n|\r|\n")


def capped(line: bytes, dropped: int = 0) -> str:
    """A line's text: its first LINE_CAP bytes, then how many more there were."""
    if len(line) > LINE_CAP:
        line, dropped = line[:LINE_CAP], dropped + len(line) - LINE_CAP
    text = line.decode("utf-8", "replace")
    return text + f"…[truncated {dropped} bytes]" if dropped else text


class LineSplitter:
    """Feed log bytes in chunks; each complete line goes to `on_line` as text.

    Holds at most one capped line between chunks. A lone `\\r` ending an empty line (a
    progress bar's redraw right after a newline) makes no line; `\\r\\n` is one line end,
    even when a chunk ends between the two bytes.
    """

    def __init__(self, on_line: Callable[[str], None]) -> None:
        self._on_line = on_line
        self._pending = bytearray()
        self._dropped = 0
        self._cr = False  # the last chunk ended with `\r`: a `\n` next belongs to it

    def _take(self, piece: bytes | memoryview) -> None:
        room = LINE_CAP - len(self._pending)
        if room > 0:
            self._pending += piece[:room]
        self._dropped += max(0, len(piece) - max(room, 0))

    def _end(self, lone_cr: bool) -> None:
        if not (lone_cr and not self._pending and not self._dropped):
            self._on_line(capped(bytes(self._pending), self._dropped))
        self._pending.clear()
        self._dropped = 0

    def feed(self, data: bytes) -> None:
        view = memoryview(data)
        start = 0
        if self._cr:
            self._cr = False
            if data[:1] == b"\n":
                start = 1
                self._end(lone_cr=False)
            elif data:
                self._end(lone_cr=True)
            else:
                self._cr = True
                return
        end = len(data)
        if data.endswith(b"\r") and end > start:
            end -= 1  # decide with the next chunk whether a `\n` follows
            trailing_cr = True
        else:
            trailing_cr = False
        for match in _BREAK.finditer(data, start, end):
            self._take(view[start : match.start()])
            self._end(lone_cr=match.group() == b"\r")
            start = match.end()
        self._take(view[start:end])
        self._cr = trailing_cr

    def close(self) -> None:
        """The log ended: a last line without a line end is still a line."""
        if self._cr:
            self._cr = False
            self._end(lone_cr=True)
        elif self._pending or self._dropped:
            self._end(lone_cr=False)


def split_lines(data: bytes) -> list[str]:
    """All lines of `data` (a whole, bounded piece of log), as LineSplitter makes them."""
    lines: list[str] = []
    splitter = LineSplitter(lines.append)
    splitter.feed(data)
    splitter.close()
    return lines


def tail_window(count: int) -> int:
    """Bytes to read from a log's end for its last `count` lines: room for `count` capped
    lines, at most TAIL_MAX (then the log's lines that long show fewer)."""
    return min(max(count, 1) * (LINE_CAP + 2), TAIL_MAX)


def last_lines(data: bytes, count: int, *, clipped: bool) -> list[str]:
    """The last `count` lines of the end of a log; `clipped`: `data` starts mid-log, so its
    first line may be the tail of a longer one (dropped when there are enough others)."""
    lines = split_lines(data)
    if clipped and len(lines) > count:
        lines = lines[1:]
    return lines[-count:] if count > 0 else []
