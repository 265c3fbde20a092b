"""reconciler.jobs.loglines: log bytes to lines (\\n, \\r\\n, \\r), capped, in any chunking."""

from __future__ import annotations

import random

import pytest

from reconciler.jobs.loglines import (
    LINE_CAP,
    TAIL_MAX,
    LineSplitter,
    last_lines,
    split_lines,
    tail_window,
)


@pytest.mark.parametrize(
    ("data", "lines"),
    [
        (b"a\nb\n", ["a", "b"]),
        (b"a\nb", ["a", "b"]),  # a last line without a newline is still a line
        (b"a\r\nb\r\n", ["a", "b"]),
        (b"10%\r20%\r30%\n", ["10%", "20%", "30%"]),
        (b"\r10%\r20%", ["10%", "20%"]),  # a redraw on an empty line makes no line
        (b"a\n\nb\n", ["a", "", "b"]),
        (b"a\r\n\r\nb", ["a", "", "b"]),
        (b"", []),
        (b"\xff\xfe\n", ["\ufffd\ufffd"]),
    ],
)
def test_lines_are_split_on_newlines_and_carriage_returns(data: bytes, lines: list[str]) -> None:
    assert split_lines(data) == lines


def test_any_chunking_gives_the_same_lines() -> None:
    rng = random.Random(7)
    alphabet = [b"a", b"\xc3\xa9", b"\r", b"\n", b"\r\n", b"x" * 50]
    for _ in range(200):
        data = b"".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 60)))
        got: list[str] = []
        splitter = LineSplitter(got.append)
        at = 0
        while at < len(data):
            step = rng.randrange(1, 8)
            splitter.feed(data[at : at + step])
            at += step
        splitter.close()
        assert got == split_lines(data), data


def test_a_long_line_is_capped_and_counted_and_never_held_whole() -> None:
    got: list[str] = []
    splitter = LineSplitter(got.append)
    for _ in range(100):
        splitter.feed(b"y" * 100_000)
        assert len(splitter._pending) <= LINE_CAP
    splitter.feed(b"\nnext\n")
    assert got == ["y" * LINE_CAP + f"…[truncated {10_000_000 - LINE_CAP} bytes]", "next"]


def test_last_lines_drops_a_clipped_first_line_when_there_are_enough() -> None:
    data = b"ail of a line\none\ntwo\nthree\n"
    assert last_lines(data, 2, clipped=True) == ["two", "three"]
    assert last_lines(data, 3, clipped=True) == ["one", "two", "three"]
    assert last_lines(data, 4, clipped=False) == ["ail of a line", "one", "two", "three"]
    assert last_lines(b"a\nb\n", 0, clipped=False) == []
    assert tail_window(5) == 5 * (LINE_CAP + 2) and tail_window(10**9) == TAIL_MAX
