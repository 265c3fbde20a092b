"""HostileApi: a RunPod-like GraphQL server on loopback that misbehaves on purpose.

Each `mode` is one way an API server can be broken or malicious: it drips bytes, sends a body
larger than any answer, a gzip bomb, terminal escapes in GraphQL `errors`, a redirect to
another host, echoes the key and the URL it was sent (or a create's env), or answers 503.
`ok` answers like an empty account.
Every request is recorded (path, headers, body) so a test can check what podctl sent.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MiB = 1024 * 1024
HUGE_BYTES = 100 * MiB
ESCAPES = "\x1b]0;pwned\x07\x1b[2J\x1b[31mred\rgone\u202eevil"
MODES = (
    "ok",
    "drip",
    "huge",
    "gzip_bomb",
    "escapes",
    "redirect",
    "echo",
    "echo_create",
    "unavailable",
)

_EMPTY_DATA: dict[str, Any] = {"myself": {"pods": []}, "gpuTypes": []}


def _bomb() -> bytes:
    """~100 MiB of JSON whitespace gzipped to ~100 KiB (a valid, tiny, enormous answer)."""
    text = b'{"data": {"myself": {"pods": []}, "gpuTypes": []}' + b" " * HUGE_BYTES + b"}"
    return gzip.compress(text, compresslevel=9)


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class HostileApi:
    """The server; `url` is its base (http://127.0.0.1:PORT), `mode` may change at any time."""

    mode: str = "ok"
    drip_interval_s: float = 0.2
    seen: list[Seen] = field(default_factory=list)
    url: str = ""
    _server: ThreadingHTTPServer | None = None
    _bomb_bytes: bytes = b""

    def bomb(self) -> bytes:
        if not self._bomb_bytes:
            self._bomb_bytes = _bomb()
        return self._bomb_bytes

    def start(self) -> None:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                api.seen.append(Seen(self.path, dict(self.headers.items()), body))
                # podctl hangs up early (as it should, for most modes)
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    api.answer(self, body)

            do_GET = do_POST

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # --- the answers ----------------------------------------------------------------------------

    def answer(self, h: BaseHTTPRequestHandler, body: bytes) -> None:
        mode = self.mode
        if mode == "ok":
            self._json(h, 200, {"data": _EMPTY_DATA})
        elif mode == "drip":
            h.send_response(200)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(10 * MiB))
            h.end_headers()
            while True:  # one byte at a time: no read timeout ever trips
                h.wfile.write(b" ")
                h.wfile.flush()
                time.sleep(self.drip_interval_s)
        elif mode == "huge":
            h.send_response(200)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(HUGE_BYTES + 2))
            h.end_headers()
            h.wfile.write(b"[")
            chunk = b" " * MiB
            for _ in range(HUGE_BYTES // MiB):
                h.wfile.write(chunk)
            h.wfile.write(b"]")
        elif mode == "gzip_bomb":
            data = self.bomb()
            h.send_response(200)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Encoding", "gzip")
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            h.wfile.write(data)
        elif mode == "escapes":
            self._json(h, 200, {"data": None, "errors": [{"message": f"bad input {ESCAPES}"}]})
        elif mode == "redirect":
            h.send_response(307)
            h.send_header("Location", "http://evil.example/graphql")
            h.send_header("Content-Length", "0")
            h.end_headers()
        elif mode == "echo":
            # a server that quotes back what it was sent: the key and the full URL
            echoed = f"{h.headers.get('Authorization')} at {h.path}"
            self._json(h, 400, {"errors": [{"message": f"cannot parse request: {echoed}"}]})
        elif mode == "echo_create":
            # queries answer like an empty account; a mutation's env comes back in its error
            request = json.loads(body or b"{}")
            fields = (request.get("variables") or {}).get("input") or {}
            if not fields:
                self._json(h, 200, {"data": _EMPTY_DATA})
                return
            env = " ".join(f"{e.get('key')}={e.get('value')}" for e in fields.get("env") or [])
            self._json(h, 200, {"errors": [{"message": f"invalid env: {env}"}]})
        elif mode == "unavailable":
            self._json(h, 503, {"errors": [{"message": f"busy {h.path}"}]}, retry_after="0")
        else:
            raise AssertionError(f"unknown mode {mode!r}")

    def _json(
        self,
        h: BaseHTTPRequestHandler,
        status: int,
        document: object,
        retry_after: str | None = None,
    ) -> None:
        data = json.dumps(document).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        if retry_after is not None:
            h.send_header("Retry-After", retry_after)
        h.end_headers()
        h.wfile.write(data)


@contextmanager
def hostile_api(mode: str = "ok") -> Iterator[HostileApi]:
    api = HostileApi(mode=mode)
    api.start()
    try:
        yield api
    finally:
        api.stop()
