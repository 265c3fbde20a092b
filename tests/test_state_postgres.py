"""The PostgreSQL store beyond the contract: schema versions, lock keys, a lost connection."""

from __future__ import annotations

import json
import time
from dataclasses import replace

import pytest

from reconciler.errors import LockfileError, UsageError
from reconciler.lockfile import dumps
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
    assert [t for (t,) in tables] == ["entries", "holders", "podctl_schema", "stacks"]


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


def _rows(pg: PgServer, database: str) -> dict[tuple[str, str], str]:
    """(kind, key) -> the row version (xmin): a row a write did not touch keeps its own."""
    rows = pg.sql("SELECT kind, key, xmin::text FROM entries ORDER BY 1, 2", database=database)
    return {(kind, key): xmin for kind, key, xmin in rows}


def test_a_write_stores_only_the_records_that_changed(pg_url: str, pg_server: PgServer) -> None:
    from datetime import UTC, datetime

    from reconciler.lockfile import record_job, record_pod
    from reconciler.model import CreateIntent, JobRecord, JobStatus, PodRecord

    when = datetime(2026, 1, 2, tzinfo=UTC)
    database = pg_url.rpartition("/")[2]
    store = PostgresStore(pg_url, "s")
    with store.lock():
        state = replace(store.read(), stack="s")
        for n in range(50):
            state = record_pod(
                state, f"p{n}", PodRecord(pod_id=f"id{n}", uid=f"u{n}", fingerprint="x")
            )
        state = store.write(state)
        before = _rows(pg_server, database)
        assert len(before) == 50
        job = JobRecord(fingerprint="f", pod_id="id3", status=JobStatus.RUNNING, started_at=when)
        state = store.write(record_job(state, "train", job))
        after = _rows(pg_server, database)
        assert set(after) - set(before) == {("jobs", "train")}  # one new row...
        assert {k: after[k] for k in before} == before  # ...and no other row rewritten
        intent = CreateIntent(stack="s", pod="p9", uid="u9b", since=when)
        state = store.write(replace(state, intents=(intent,)))
        state = store.write(replace(state, intents=()))
        assert set(_rows(pg_server, database)) == set(after)  # the intent came and went
    again = PostgresStore(pg_url, "s").read()
    assert dumps(again) == dumps(state) and again.jobs["train"].status is JobStatus.RUNNING


def test_a_schema_1_document_is_split_into_rows(pg_url: str, pg_server: PgServer) -> None:
    from reconciler.state.postgres import MIGRATIONS

    database = pg_url.rpartition("/")[2]
    for statement in MIGRATIONS[0]:
        pg_server.sql(statement, database=database)
    pg_server.sql("CREATE TABLE podctl_schema (version integer NOT NULL)", database=database)
    pg_server.sql("INSERT INTO podctl_schema VALUES (1)", database=database)
    document = {
        "format_version": 1, "lineage": "L", "serial": 4, "stack": "s",
        "pods": {"a": {"pod_id": "P", "uid": "U", "fingerprint": "F", "gpu_type_id": None,
                       "cloud": None, "created_at": None, "applied_at": None}},
        "jobs": {}, "host_keys": {"P": ["ssh-ed25519 K"]},
        "intents": [{"stack": "s", "pod": "b", "uid": "u2", "since": "2026-01-02T00:00:00+00:00"},
                    {"stack": "s", "pod": "c", "uid": "u3", "since": "2026-01-01T00:00:00+00:00"}],
    }  # fmt: skip
    pg_server.sql(
        "INSERT INTO stacks (stack, lineage, serial, document) VALUES ('s', 'L', 4, %s::jsonb)",
        json.dumps(document),
        database=database,
    )
    state = PostgresStore(pg_url, "s").read()
    assert pg_server.sql("SELECT version FROM podctl_schema", database=database) == [(2,)]
    assert (state.lineage, state.serial, state.pods["a"].pod_id) == ("L", 4, "P")
    assert [i.pod for i in state.intents] == ["b", "c"]  # their order is kept
    assert state.host_keys == {"P": ("ssh-ed25519 K",)}
    ((head,),) = pg_server.sql("SELECT document FROM stacks", database=database)
    assert sorted(head) == ["format_version", "lineage", "serial", "stack"]
    assert len(_rows(pg_server, database)) == 4


def test_a_server_gone_right_after_connecting_is_a_clear_error(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import psycopg

    def gone(self: PostgresStore, conn: object) -> None:
        raise psycopg.OperationalError(f"server closed the connection ({PASSWORD})")

    monkeypatch.setattr(PostgresStore, "_migrate", gone)
    with pytest.raises(LockfileError) as info:
        PostgresStore(pg_url, "s").read()
    assert "failed: server closed the connection (***)" in str(info.value)
    assert PASSWORD not in str(info.value)


def test_the_reconcile_lock_is_its_own_and_a_lost_leader_knows_it(
    pg_url: str, pg_server: PgServer
) -> None:
    from reconciler.state import open_leadership

    settings = StateSettings(pg_url, stack="s", command="podctl reconcile")
    first, second = open_leadership(settings), open_leadership(settings)
    assert first.try_lead() is None and first.leading
    holder = second.try_lead()
    assert holder is not None and holder["command"] == "podctl reconcile"
    with PostgresStore(pg_url, "s").lock():  # the state lock stays free for rounds and plans
        pass
    backend = first.store.backend_pid  # type: ignore[attr-defined]
    pg_server.sql("SELECT pg_terminate_backend(%s)", backend)
    assert not first.leading  # it notices before its next round, and acts no more
    for _ in range(100):  # the server frees the lock with the session; bounded
        if second.try_lead() is None:
            break
        time.sleep(0.05)
    assert second.leading and first.try_lead() is not None
    second.release()
