"""BodyReader's caps and encodings; scrub_url, url_secrets and is_loopback."""

from __future__ import annotations

import gzip
import zlib

import pytest

from reconciler.backends.body import BadEncodingError, BodyReader, BodyTooLargeError
from reconciler.backends.config import (
    is_loopback,
    resolve_graphql_url,
    scrub_url,
    url_secrets,
)


def feed(reader: BodyReader, data: bytes, size: int = 4096) -> bytes:
    for start in range(0, len(data), size):
        reader.feed(data[start : start + size])
    return reader.finish()


@pytest.mark.parametrize(
    ("encoding", "pack"),
    [
        (None, lambda b: b),
        ("identity", lambda b: b),
        ("gzip", gzip.compress),
        ("GZip ", gzip.compress),
        ("deflate", zlib.compress),
    ],
)
def test_each_encoding_podctl_asks_for_reads_back(encoding: str | None, pack: object) -> None:
    body = b'{"data": {}}' * 1000
    assert callable(pack)
    assert feed(BodyReader(encoding), pack(body)) == body


def test_a_bomb_stops_at_the_cap_not_in_memory() -> None:
    bomb = gzip.compress(b" " * (8 * 1024 * 1024))  # 8 MiB of spaces in ~8 KiB
    reader = BodyReader("gzip", limit=1024 * 1024)
    with pytest.raises(BodyTooLargeError, match="larger than 1 MiB once decompressed"):
        feed(reader, bomb)
    assert reader._size <= 1024 * 1024 + 1  # never more than one byte past the cap


def test_the_wire_size_is_capped_too() -> None:
    with pytest.raises(BodyTooLargeError, match="larger than 1 MiB on the wire"):
        feed(BodyReader(None, limit=1024 * 1024), b"x" * (1024 * 1024 + 1))


@pytest.mark.parametrize("encoding", ["br", "gzip, gzip", "zstd", "compress"])
def test_an_encoding_podctl_did_not_ask_for_is_refused(encoding: str) -> None:
    with pytest.raises(BadEncodingError, match="did not ask for"):
        BodyReader(encoding)


def test_corrupt_gzip_is_a_bad_encoding() -> None:
    with pytest.raises(BadEncodingError, match="corrupt"):
        feed(BodyReader("gzip"), b"\x1f\x8b not gzip at all")


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://api.runpod.io/graphql", "https://api.runpod.io/graphql"),
        ("https://u:p@h:1/x?api_key=k&debug", "https://***@h:1/x?api_key=***&debug"),
        ("https://h/#token", "https://h/#***"),
        ("http://[::1", "http://<unparseable URL>"),
        ("api.runpod.io?api_key=k", "api.runpod.io?api_key=***"),
    ],
)
def test_scrub_url(url: str, shown: str) -> None:
    assert scrub_url(url) == shown


def test_url_secrets_cover_the_password_its_basic_auth_and_query_values() -> None:
    found = url_secrets("https://user:p%40ss@h/?api_key=k3y-val&x=1")
    assert {"p%40ss", "p@ss", "user:p@ss", "dXNlcjpwQHNz", "k3y-val"} <= set(found)
    assert "1" not in found  # too short to mask without mangling every message


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("[::1]", True),
        ("::1", True),
        ("localhost", True),
        ("LOCALHOST.", True),
        ("api.localhost", True),
        ("0.0.0.0", False),
        ("10.0.0.1", False),
        ("localhost.evil.example", False),
        ("api.runpod.io", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


@pytest.mark.parametrize(
    ("base", "url"),
    [
        ("https://h/?api_key=k", "https://h/graphql?api_key=k"),
        ("https://h/v2/graphql/?x=1", "https://h/v2/graphql?x=1"),
        ("https://h#frag", "https://h/graphql"),
    ],
)
def test_the_graphql_path_keeps_a_query_string_after_it(base: str, url: str) -> None:
    assert resolve_graphql_url(base, {}) == url
