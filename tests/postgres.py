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
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
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

    def _pg_ctl(self, *args: str, check: bool = True) -> None:
        env = {**os.environ, "LC_ALL": "C"}
        data, log = self.folder / "data", self.folder / "log"
        subprocess.run(
            [str(self.bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log), *args],
            check=check,
            capture_output=True,
            env=env,
            cwd=self.folder,
            **_as_user(),
        )

    def start(self) -> None:
        options = f"-k {self.folder} -p {self.port} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._pg_ctl("-w", "-o", options, "start")

    def stop(self, mode: str = "immediate") -> None:
        self._pg_ctl("-m", mode, "stop", check=False)

    def restart(self, pause: float = 0.0) -> None:
        """Stop the server at once (every session dropped, as in a crash) and start it again."""
        self.stop("immediate")
        time.sleep(pause)
        self.start()

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


class NoPostgres(Exception):
    """PostgreSQL is not installed here."""


@contextmanager
def throwaway_server() -> Iterator[PgServer]:
    """A PostgreSQL server in a temp folder on a free loopback port, removed afterwards."""
    bin_dir = _bin_dir()
    if bin_dir is None or not (bin_dir / "pg_ctl").exists():
        raise NoPostgres(SKIP_REASON)
    folder = Path(tempfile.mkdtemp(prefix="podctl-pg-"))
    user = _as_user()
    if user:
        shutil.chown(folder, user["user"], user["group"])
    data = folder / "data"
    env = {**os.environ, "LC_ALL": "C"}
    run = {"check": True, "capture_output": True, "env": env, "cwd": folder, **user}
    subprocess.run(
        [str(bin_dir / "initdb"), "-D", str(data), "-U", "podctl", "-A", "trust", "-E", "UTF8"],
        **run,
    )
    server = PgServer(_free_port(), folder, bin_dir)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    try:
        with throwaway_server() as server:
            yield server
    except NoPostgres as exc:
        pytest.skip(str(exc))


@pytest.fixture
def pg_url(pg_server: PgServer) -> str:
    """A fresh, empty database for this test."""
    name = "t_" + uuid.uuid4().hex[:12]
    pg_server.sql(f"CREATE DATABASE {name}")
    return pg_server.url(name)
