"""The PostgreSQL store beyond the contract: schema versions, lock keys, a lost connection."""

from __future__ import annotations

from dataclasses import replace

import pytest

from reconciler.errors import LockfileError, UsageError
from reconciler.model import Lockfile
from reconciler.state import StateLost, StateSettings, open_store
from reconciler.state.postgres import SCHEMA_VERSION, PostgresStore, StateConnectionLost, lock_key
from tests.postgres import PASSWORD, PgServer, pg_server, pg_url

__all__ = ["pg_server", "pg_url"]


def test_the_schema_is_created_and_versioned(pg_url: str, pg_server: PgServer) -> None:
    name = pg_url.rpartition("/")[2]
    assert PostgresStore(pg_url, "s").read() == Lockfile()
    assert pg_server.sql("SELECT version FROM podctl_schema", database=name) == [(SCHEMA_VERSION,)]
    tables = pg_server.sql(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1",
        database=name,
    )
    assert [t for (t,) in tables] == ["holders", "podctl_schema", "stacks"]


def test_a_newer_schema_is_refused_and_left_alone(pg_url: str, pg_server: PgServer) -> None:
    name = pg_url.rpartition("/")[2]
    PostgresStore(pg_url, "s").read()
    pg_server.sql("UPDATE podctl_schema SET version = %s", SCHEMA_VERSION + 1, database=name)
    with pytest.raises(LockfileError) as info:
        PostgresStore(pg_url, "s").read()
    message = str(info.value)
    assert f"schema version {SCHEMA_VERSION + 1}" in message and "upgrade podctl" in message
    assert PASSWORD not in message
    assert pg_server.sql("SELECT version FROM podctl_schema", database=name) == [
        (SCHEMA_VERSION + 1,)
    ]


def test_stacks_lock_apart_and_their_keys_differ(pg_url: str) -> None:
    assert lock_key("a") != lock_key("b") and lock_key("a") == lock_key("a")
    assert -(2**63) <= lock_key("a") < 2**63
    first, second = PostgresStore(pg_url, "a"), PostgresStore(pg_url, "b")
    with first.lock(), second.lock():  # one stack's apply never waits for another's
        first.write(replace(first.read(), stack="a"))
        second.write(replace(second.read(), stack="b"))
    assert PostgresStore(pg_url, "a").read().stack == "a"
    assert PostgresStore(pg_url, "b").read().stack == "b"


def test_a_lost_connection_stops_every_further_write(pg_url: str, pg_server: PgServer) -> None:
    store = PostgresStore(pg_url, "s")
    with store.lock():
        first = store.write(replace(store.read(), stack="s"))
        assert store.backend_pid is not None
        pg_server.sql("SELECT pg_terminate_backend(%s)", store.backend_pid)
        with pytest.raises(StateLost) as info:  # not a PodctlError: it stops the whole run
            store.write(replace(first, host_keys={"p": ("k",)}))
        assert "the state store connection was lost; no further change was made; run apply " in (
            str(info.value).lower()
        )
        assert PASSWORD not in str(info.value)
        with pytest.raises(StateConnectionLost):  # and it never reconnects behind the lock
            store.read()
    assert PostgresStore(pg_url, "s").read().serial == first.serial


def test_a_postgres_store_needs_the_stack(pg_url: str) -> None:
    with pytest.raises(UsageError, match="pass -f SPEC"):
        open_store(StateSettings(pg_url))
