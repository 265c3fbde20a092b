"""A throwaway PostgreSQL server for the tests (session-scoped), and a fresh database per test.

Started as an unprivileged user when the tests run as root (postgres refuses root), in a temp
folder, on a free loopback port. Without PostgreSQL installed, the tests that need it skip,
saying how to install it.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

SKIP_REASON = (
    "PostgreSQL is not installed: `apt-get install postgresql` (Debian) to run the PostgreSQL "
    "state store tests"
)
PASSWORD = "pg-Secret-9xq"  # in every URL; trust auth ignores it, so a leak of it shows


def _bin_dir() -> Path | None:
    for initdb in sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True):
        return Path(initdb).parent
    found = shutil.which("initdb")
    return Path(found).resolve().parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PgServer:
    port: int
    folder: Path
    bin_dir: Path

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://podctl:{PASSWORD}@127.0.0.1:{self.port}/{database}"

    def sql(self, statement: str, *params: Any, database: str = "postgres") -> list[Any]:
        import psycopg

        with psycopg.connect(self.url(database), autocommit=True) as conn:
            cursor = conn.execute(statement, params or None)
            return list(cursor.fetchall()) if cursor.description else []


def _as_user() -> dict[str, Any]:
    """Popen arguments that run postgres as `nobody` when we are root."""
    if os.geteuid() != 0:
        return {}
    return {"user": "nobody", "group": "nogroup" if _has_group("nogroup") else "nobody"}


def _has_group(name: str) -> bool:
    import grp

    try:
        grp.getgrnam(name)
    except KeyError:
        return False
    return True


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    bin_dir = _bin_dir()
    if bin_dir is None or not (bin_dir / "pg_ctl").exists():
        pytest.skip(SKIP_REASON)
    folder = Path(tempfile.mkdtemp(prefix="podctl-pg-"))
    user = _as_user()
    if user:
        shutil.chown(folder, user["user"], user["group"])
    data, log = folder / "data", folder / "log"
    env = {**os.environ, "LC_ALL": "C"}
    run = {"check": True, "capture_output": True, "env": env, "cwd": folder, **user}
    subprocess.run(
        [str(bin_dir / "initdb"), "-D", str(data), "-U", "podctl", "-A", "trust", "-E", "UTF8"],
        **run,
    )
    port = _free_port()
    options = f"-k {folder} -p {port} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(
        [str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-o", options, "start"],
        **run,
    )
    try:
        yield PgServer(port, folder, bin_dir)
    finally:
        subprocess.run(
            [str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            **{**run, "check": False},
        )
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def pg_url(pg_server: PgServer) -> str:
    """A fresh, empty database for this test."""
    name = "t_" + uuid.uuid4().hex[:12]
    pg_server.sql(f"CREATE DATABASE {name}")
    return pg_server.url(name)
