"""BodyReader: an API answer's bytes, decompressed by podctl itself, with a cap on both sizes.

Pure (stdlib zlib only). httpx would decompress a chunk without bound; a gzip bomb of a few
kilobytes would then take gigabytes of memory before any cap could look at it.
"""

from __future__ import annotations

import zlib

MAX_ANSWER_BYTES = 64 * 1024 * 1024  # on the wire, and again after decompression
# what podctl accepts (and asks for): a server sending anything else is refused
ACCEPT_ENCODING = "gzip, deflate"


class BodyTooLargeError(Exception):
    """The answer is larger than the cap (`what`: on the wire, or once decompressed)."""

    def __init__(self, what: str, limit: int) -> None:
        super().__init__(f"the answer is larger than {limit // (1024 * 1024)} MiB {what}")


class BadEncodingError(Exception):
    """The answer's Content-Encoding is one podctl did not ask for, or its data is corrupt."""


class BodyReader:
    """Feed it the raw chunks in order; `finish()` gives the whole decompressed body."""

    def __init__(self, content_encoding: str | None, limit: int = MAX_ANSWER_BYTES) -> None:
        encoding = (content_encoding or "identity").strip().lower()
        self.limit = limit
        self._raw = 0
        self._size = 0
        self._parts: list[bytes] = []
        self._inflate: zlib._Decompress | None
        if encoding in ("identity", ""):
            self._inflate = None
        elif encoding in ("gzip", "x-gzip"):
            self._inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif encoding == "deflate":
            self._inflate = zlib.decompressobj()
        else:
            # "br", "gzip, gzip" (stacked), anything unasked: refuse rather than guess
            raise BadEncodingError(
                f"Content-Encoding {encoding[:40]!r}, which podctl did not ask for"
            )

    def feed(self, chunk: bytes) -> None:
        self._raw += len(chunk)
        if self._raw > self.limit:
            raise BodyTooLargeError("on the wire", self.limit)
        if self._inflate is None:
            self._keep(chunk)
            return
        data = chunk
        try:
            while data:
                # never more than what is left of the cap at once: a bomb stops at the cap
                room = self.limit - self._size + 1
                out = self._inflate.decompress(data, room)
                self._keep(out)
                data = self._inflate.unconsumed_tail
        except zlib.error as exc:
            raise BadEncodingError(f"its compressed data is corrupt ({exc})") from None

    def _keep(self, data: bytes) -> None:
        self._size += len(data)
        if self._size > self.limit:
            raise BodyTooLargeError("once decompressed", self.limit)
        if data:
            self._parts.append(data)

    def finish(self) -> bytes:
        if self._inflate is not None:
            try:
                self._keep(self._inflate.flush())
            except zlib.error as exc:
                raise BadEncodingError(f"its compressed data is corrupt ({exc})") from None
        return b"".join(self._parts)
