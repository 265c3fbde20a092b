"""Abuse of the sandbox: strangers' bodies, oversized bodies, health without the key, a FIFO."""

from __future__ import annotations

import asyncio
import os
import socket
from pathlib import Path

import asyncssh
import httpx
import pytest

from reconciler.sandbox import layout
from reconciler.sandbox.app import MAX_BODY_BYTES
from tests.sandbox.conftest import Sandbox


def _raw_request(sb: Sandbox, head: bytes, body: bytes = b"") -> bytes:
    """Send `head` (and `body`) over a plain socket; the status line the sandbox answers."""
    host, port = sb.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head + body)
        answer = b""
        while b"\r\n" not in answer:
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
    return answer.split(b"\r\n", 1)[0]


def test_a_request_without_the_key_is_refused_before_its_body_is_sent(sb: Sandbox) -> None:
    # headers promise 100 MB that never come: the sandbox answers 401 at once, reading nothing
    head = (
        b"POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 100000000\r\n\r\n"
    )
    assert _raw_request(sb, head) == b"HTTP/1.1 401 Unauthorized"
    assert sb.gql("query { myself { id } }")["myself"]["id"]  # still serving


def test_a_body_over_the_cap_is_refused_with_413(sb: Sandbox) -> None:
    head = (
        f"POST /graphql HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {sb.key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {MAX_BODY_BYTES + 1}\r\n\r\n"
    ).encode()
    assert _raw_request(sb, head) == b"HTTP/1.1 413 Request Entity Too Large"
    # chunked, so no length is announced: the cap holds as the chunks come in
    chunk = b"x" * 65536
    # one byte over in all, so that the sandbox has read every byte sent when it answers
    chunked = (b"%x\r\n" % len(chunk) + chunk + b"\r\n") * (MAX_BODY_BYTES // len(chunk))
    chunked += b"1\r\nx\r\n"
    head = (
        f"POST /graphql HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {sb.key}\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    ).encode()
    assert (
        _raw_request(sb, head, chunked + b"0\r\n\r\n") == b"HTTP/1.1 413 Request Entity Too Large"
    )
    assert sb.gql("query { myself { id } }")["myself"]["id"]


def test_health_needs_the_key(sb: Sandbox) -> None:
    stranger = httpx.get(sb.url + "/_sandbox/health", timeout=10)
    assert stranger.status_code == 401
    assert "pid" not in stranger.text
    known = httpx.get(
        sb.url + "/_sandbox/health", headers={"Authorization": f"Bearer {sb.key}"}, timeout=10
    )
    assert known.status_code == 200 and known.json()["pid"] == sb.info.pid


async def _sftp_get(port: int, key: Path, path: str) -> str:
    async with (
        asyncssh.connect(
            "127.0.0.1", port, username="root", client_keys=[str(key)], known_hosts=None
        ) as conn,
        conn.start_sftp_client() as sftp,
    ):
        try:
            async with sftp.open(path, "rb") as f:
                await f.read()
        except asyncssh.SFTPError as exc:
            return exc.reason
    return "read"


def test_a_fifo_in_a_pod_folder_does_not_freeze_the_sandbox(
    sb: Sandbox, client_key: tuple[Path, str]
) -> None:
    key, pub = client_key
    pod = sb.create(ports="22/tcp", env=[{"key": "PUBLIC_KEY", "value": pub}])
    os.mkfifo(layout.volume_dir(sb.data_dir, pod["id"]) / "out.fifo")
    port = sb.ssh_port(pod["id"])
    reason = asyncio.run(asyncio.wait_for(_sftp_get(port, key, "/workspace/out.fifo"), 20))
    assert reason == "/workspace/out.fifo is not a regular file"
    assert sb.gql("query { myself { id } }")["myself"]["id"]  # the API still answers


@pytest.mark.parametrize(
    "body",
    [
        '{"start_delay": NaN}',
        '{"start_delay": -5}',
        '{"latency_ms": Infinity}',
        '{"latency_ms": -1}',
    ],
)
def test_fault_values_that_would_hang_or_mean_nothing_are_refused(sb: Sandbox, body: str) -> None:
    before = httpx.get(
        sb.url + "/_sandbox/faults", headers={"Authorization": f"Bearer {sb.key}"}, timeout=10
    ).json()
    resp = httpx.post(
        sb.url + "/_sandbox/faults",
        content=body,
        headers={"Authorization": f"Bearer {sb.key}"},
        timeout=10,
    )
    assert resp.status_code == 400
    assert "must be a finite number >= 0" in resp.json()["errors"][0]["message"]
    after = httpx.get(
        sb.url + "/_sandbox/faults", headers={"Authorization": f"Bearer {sb.key}"}, timeout=10
    ).json()
    assert after == before


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('{"stock": {"NVIDIA RTX A4000": -1}}', "stock of NVIDIA RTX A4000 must be a count >= 0"),
        ('{"stock": {"NVIDIA RTX A4000": 1.5}}', "stock of NVIDIA RTX A4000 must be a count >= 0"),
    ],
)
def test_a_negative_or_fractional_stock_is_refused(sb: Sandbox, body: str, message: str) -> None:
    resp = httpx.post(
        sb.url + "/_sandbox/faults",
        content=body,
        headers={"Authorization": f"Bearer {sb.key}"},
        timeout=10,
    )
    assert resp.status_code == 400 and message in resp.json()["errors"][0]["message"]
