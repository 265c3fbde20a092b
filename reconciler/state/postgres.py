"""PostgresStore: the team store, a row set per stack in PostgreSQL (psycopg's one home).

A `stacks` row holds the head of the lockfile codec's document (format, lineage, serial,
stack); an `entries` row holds each pod record, job record, create intent and pod's host
keys, so a write stores only what changed (a job's record is one small row, not the whole
document). Every write is one transaction fenced by a compare-and-swap on the serial. The lock
is a session advisory lock per stack (the server drops it when the holder's connection dies);
the `holders` row says who took it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, Self

import psycopg

from reconciler.errors import LockfileError, LockHeldError
from reconciler.lockfile import dumps, loads, next_version
from reconciler.model import LOCKFILE_FORMAT_VERSION, Lockfile
from reconciler.state.port import LockMode, StateLost
from reconciler.urls import scrub_url, url_secrets

SCHEMA_VERSION = 2
COLLECTIONS = ("pods", "jobs", "intents", "host_keys")  # the document's parts kept as rows


def _split(kind: str) -> str:
    """v1 -> v2: copy one collection of every well-formed document into `entries`."""
    if kind == "intents":
        return """INSERT INTO entries (stack, kind, key, ord, value)
            SELECT s.stack, 'intents', lpad((e.ord - 1)::text, 9, '0'), e.ord - 1, e.value
            FROM stacks s, jsonb_array_elements(s.document->'intents') WITH ORDINALITY e(value, ord)
            WHERE jsonb_typeof(s.document->'intents') = 'array'"""
    return f"""INSERT INTO entries (stack, kind, key, value)
        SELECT s.stack, '{kind}', e.key, e.value FROM stacks s, jsonb_each(s.document->'{kind}') e
        WHERE jsonb_typeof(s.document->'{kind}') = 'object'"""


# each step brings the schema from the version before it to its index + 1
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE stacks (
            stack text PRIMARY KEY,
            lineage text NOT NULL,
            serial bigint NOT NULL,
            document jsonb NOT NULL,
            updated_at timestamptz NOT NULL DEFAULT now()
        )""",
        """CREATE TABLE holders (
            stack text PRIMARY KEY,
            pid integer NOT NULL,
            host text NOT NULL,
            command text NOT NULL,
            mode text NOT NULL,
            since timestamptz NOT NULL
        )""",
    ),
    (
        """CREATE TABLE entries (
            stack text NOT NULL,
            kind text NOT NULL,
            key text NOT NULL,
            ord bigint NOT NULL DEFAULT 0,
            value jsonb NOT NULL,
            PRIMARY KEY (stack, kind, key)
        )""",
        *(_split(kind) for kind in COLLECTIONS),
        # a document whose parts were not all of the right type stays whole (and is reported
        # corrupt on read, as before), its copied rows dropped
        """DELETE FROM entries e USING stacks s WHERE e.stack = s.stack AND NOT (
            jsonb_typeof(s.document->'pods') = 'object' AND jsonb_typeof(s.document->'jobs')
            = 'object' AND jsonb_typeof(s.document->'intents') = 'array'
            AND jsonb_typeof(s.document->'host_keys') = 'object')""",
        """UPDATE stacks SET document = document - 'pods' - 'jobs' - 'intents' - 'host_keys'
            WHERE jsonb_typeof(document->'pods') = 'object'
            AND jsonb_typeof(document->'jobs') = 'object'
            AND jsonb_typeof(document->'intents') = 'array'
            AND jsonb_typeof(document->'host_keys') = 'object'""",
    ),
)
LOCK_NAMESPACE = b"podctl/stack-lock/"  # advisory keys of other applications never collide
MIGRATION_KEY = -0x706F_6463_746C  # "podctl": held only while a migration runs
CONNECT_TIMEOUT_S = 10
KEEPALIVES = (
    "SELECT set_config('tcp_keepalives_idle', '10', false),"
    " set_config('tcp_keepalives_interval', '5', false),"
    " set_config('tcp_keepalives_count', '3', false)"
)
LOST = "The state store connection was lost; no further change was made; run apply again ({where})."


class StateConnectionLost(LockfileError):
    """The connection to the state store broke: its lock is gone, so nothing more is written."""


def lock_key(stack: str) -> int:
    """The stack's 64-bit advisory lock key: a namespaced hash, so stacks never share one."""
    digest = hashlib.sha256(LOCK_NAMESPACE + stack.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class PostgresStore:
    """One stack's state in a PostgreSQL database; a StateStore.

    Connects on `acquire` (or for one `read` outside a lock) and closes on `release`. Any
    connection error while locked raises StateConnectionLost and the store stays unusable:
    the server has dropped the lock, so a reconnect could write over another holder.
    """

    def __init__(
        self,
        url: str,
        stack: str,
        *,
        lock_timeout: float = 0.0,
        command: str | None = None,
        poll_interval: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.url = url
        self.stack = stack
        self.lock_timeout = lock_timeout
        self.command = command if command is not None else " ".join(sys.argv[:2])
        self.poll_interval = poll_interval
        self._clock = clock
        self._sleep = sleep
        self._conn: psycopg.Connection[Any] | None = None
        self._mode: LockMode | None = None
        self._lost = False
        self._known: Lockfile | None = None

    def __repr__(self) -> str:
        return f"PostgresStore({self.where!r}, locked={self._mode!r})"

    @property
    def where(self) -> str:
        return f"{scrub_url(self.url)} (stack {self.stack})"

    @property
    def mode(self) -> LockMode | None:
        return self._mode

    @property
    def backend_pid(self) -> int | None:
        """The server process serving this store's connection (tests watch it go)."""
        return None if self._conn is None else self._conn.info.backend_pid

    # --- connecting -----------------------------------------------------------------------------

    def _hidden(self, text: str) -> str:
        for secret in url_secrets(self.url):
            text = text.replace(secret, "***")
        return text

    def _connect(self) -> psycopg.Connection[Any]:
        try:
            conn = psycopg.connect(
                self.url,
                autocommit=True,
                connect_timeout=CONNECT_TIMEOUT_S,
                # and the client notices a server that vanished, instead of waiting on it
                keepalives=1,
                keepalives_idle=10,
                keepalives_interval=5,
                keepalives_count=3,
            )
        except psycopg.Error as exc:
            detail = self._hidden(" ".join(str(exc).split()))
            raise LockfileError(
                f"Cannot connect to the state store {scrub_url(self.url)}: {detail}"
            ) from None
        try:
            self._migrate(conn)
        except psycopg.Error as exc:  # the server went away right after it answered
            conn.close()
            detail = self._hidden(" ".join(str(exc).split()))
            raise LockfileError(f"The state store {self.where} failed: {detail}") from None
        except BaseException:
            conn.close()
            raise
        return conn

    def _migrate(self, conn: psycopg.Connection[Any]) -> None:
        """Bring the schema to SCHEMA_VERSION; refuse one a newer podctl wrote."""
        version = self._schema_version(conn)
        if version == SCHEMA_VERSION:
            return
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_KEY,))
            conn.execute("CREATE TABLE IF NOT EXISTS podctl_schema (version integer NOT NULL)")
            version = self._schema_version(conn)
            self._refuse_newer(version)
            for step in range(version, SCHEMA_VERSION):
                for statement in MIGRATIONS[step]:
                    conn.execute(statement)
            conn.execute("DELETE FROM podctl_schema")
            conn.execute("INSERT INTO podctl_schema (version) VALUES (%s)", (SCHEMA_VERSION,))

    def _schema_version(self, conn: psycopg.Connection[Any]) -> int:
        exists = conn.execute("SELECT to_regclass('podctl_schema') IS NOT NULL").fetchone()
        if not exists or not exists[0]:
            return 0
        row = conn.execute("SELECT max(version) FROM podctl_schema").fetchone()
        version = int(row[0]) if row and row[0] is not None else 0
        self._refuse_newer(version)
        return version

    def _refuse_newer(self, version: int) -> None:
        if version > SCHEMA_VERSION:
            raise LockfileError(
                f"The state store {scrub_url(self.url)} has schema version {version}, which this "
                f"podctl (schema {SCHEMA_VERSION}) cannot use; it was written by a newer podctl: "
                "upgrade podctl. Nothing was changed."
            )

    @contextlib.contextmanager
    def _session(self) -> Iterator[psycopg.Connection[Any]]:
        """The locked connection, or a short-lived one for a read outside a lock."""
        if self._lost:
            raise StateConnectionLost(LOST.format(where=self.where))
        if self._conn is not None:
            try:
                yield self._conn
            except (psycopg.OperationalError, psycopg.InterfaceError):
                self._lost = True
                raise StateConnectionLost(LOST.format(where=self.where)) from None
            return
        conn = self._connect()
        try:
            yield conn
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            detail = self._hidden(" ".join(str(exc).split()))
            raise LockfileError(f"The state store {self.where} failed: {detail}") from None
        finally:
            conn.close()

    @contextlib.contextmanager
    def _fenced(self) -> Iterator[psycopg.Connection[Any]]:
        """The locked connection for a write; any loss of it stops the run (StateLost)."""
        if self._lost or self._conn is None:
            raise StateLost(LOST.format(where=self.where))
        try:
            yield self._conn
        except (psycopg.OperationalError, psycopg.InterfaceError):
            self._lost = True
            raise StateLost(LOST.format(where=self.where)) from None

    # --- locking --------------------------------------------------------------------------------

    @contextlib.contextmanager
    def lock(self, *, shared: bool = False, timeout: float | None = None) -> Iterator[Self]:
        """Hold the shared (plan) or exclusive (apply) lock for the `with` block."""
        self.acquire(shared=shared, timeout=timeout)
        try:
            yield self
        finally:
            self.release()

    def __enter__(self) -> Self:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def acquire(self, *, shared: bool = False, timeout: float | None = None) -> None:
        if self._conn is not None:
            raise LockfileError(f"{self.where}: this store already holds the {self._mode} lock")
        timeout = self.lock_timeout if timeout is None else timeout
        conn = self._connect()
        take = "pg_try_advisory_lock_shared" if shared else "pg_try_advisory_lock"
        deadline = self._clock() + max(timeout, 0.0)
        try:
            while True:
                row = conn.execute(f"SELECT {take}(%s)", (lock_key(self.stack),)).fetchone()
                if row and row[0]:
                    break
                if self._clock() >= deadline:
                    raise self._held_error(conn, timeout)
                self._sleep(min(self.poll_interval, max(deadline - self._clock(), 0.0)))
            self._mode = "shared" if shared else "exclusive"
            # the server notices a holder whose host vanished (no FIN) within ~25 s, not hours
            conn.execute(KEEPALIVES)
            self._write_holder(conn)
        except psycopg.OperationalError as exc:
            conn.close()
            self._mode = None
            detail = self._hidden(" ".join(str(exc).split()))
            raise LockfileError(f"The state store {self.where} failed: {detail}") from None
        except BaseException:
            conn.close()
            self._mode = None
            raise
        self._conn = conn
        self._lost = False

    def alive(self) -> bool:
        """Whether the locked connection still answers (so the server still holds the lock)."""
        if self._conn is None or self._lost:
            return False
        try:
            self._conn.execute("SELECT 1")
        except psycopg.Error:
            self._lost = True
            return False
        return True

    def release(self) -> None:
        conn, self._conn, self._mode = self._conn, None, None
        if conn is not None:
            conn.close()  # the server drops the session's advisory lock with it

    def _write_holder(self, conn: psycopg.Connection[Any]) -> None:
        conn.execute(
            """INSERT INTO holders (stack, pid, host, command, mode, since)
               VALUES (%s, %s, %s, %s, %s, now())
               ON CONFLICT (stack) DO UPDATE SET pid = EXCLUDED.pid, host = EXCLUDED.host,
                 command = EXCLUDED.command, mode = EXCLUDED.mode, since = EXCLUDED.since""",
            (self.stack, os.getpid(), socket.gethostname(), self.command, self._mode),
        )

    def _holder_row(self, conn: psycopg.Connection[Any]) -> dict[str, object]:
        row = conn.execute(
            "SELECT pid, host, command, mode, since FROM holders WHERE stack = %s", (self.stack,)
        ).fetchone()
        if row is None:
            return {}
        pid, host, command, mode, since = row
        return {
            "pid": pid,
            "host": host,
            "command": command,
            "mode": mode,
            "since": since.astimezone(UTC).isoformat(timespec="seconds"),
        }

    def holder(self) -> dict[str, object]:
        """Who last took the stack's lock ({} when unknown)."""
        with self._session() as conn:
            return self._holder_row(conn)

    def _held_error(self, conn: psycopg.Connection[Any], timeout: float) -> LockHeldError:
        holder = self._holder_row(conn)
        who = (
            f"pid {holder.get('pid', '?')} on {holder.get('host', '?')} "
            f"({holder.get('command') or 'unknown command'}, {holder.get('mode', '?')} lock) "
            f"since {holder.get('since', '?')}"
            if holder
            else "another process"
        )
        waited = f" after waiting {timeout:g}s" if timeout > 0 else ""
        return LockHeldError(
            f"The state {self.where} is locked by {who}{waited}. Wait for it to finish, "
            "or pass --lock-timeout SECONDS to wait for it.",
            holder=holder,
        )

    # --- reading and writing --------------------------------------------------------------------

    def _row(self, conn: psycopg.Connection[Any]) -> str | None:
        """The stack's whole document as JSON text: its head with its rows put back in."""
        row = conn.execute(
            "SELECT document::text FROM stacks WHERE stack = %s", (self.stack,)
        ).fetchone()
        if row is None:
            return None
        head = _text(row[0])
        try:
            kept = json.loads(head)
        except (ValueError, RecursionError):
            return head  # reported corrupt by the codec
        if not isinstance(kept, dict):
            return head
        parts: dict[str, list[str]] = {kind: [] for kind in COLLECTIONS}
        rows = conn.execute(
            "SELECT kind, key, value::text FROM entries WHERE stack = %s ORDER BY kind, ord, key",
            (self.stack,),
        )
        for kind, key, value in rows:
            if kind in parts:
                text = _text(value)
                parts[kind].append(text if kind == "intents" else f"{json.dumps(key)}: {text}")
        added = [
            f'"{kind}": '
            + ("[" + ", ".join(items) + "]" if kind == "intents" else "{" + ", ".join(items) + "}")
            for kind, items in parts.items()
            if kind not in kept  # a document kept whole (from schema 1) wins
        ]
        if not added:
            return head
        body = head.rstrip()[:-1].rstrip()
        return body + ("" if body.endswith("{") else ", ") + ", ".join(added) + "}"

    def exists(self) -> bool:
        with self._session() as conn:
            return self._row(conn) is not None

    def newer_format(self) -> bool:
        with self._session() as conn:
            text = self._row(conn)
        try:
            version = json.loads(text or "{}").get("format_version")
        except (ValueError, AttributeError, RecursionError):
            return False
        return isinstance(version, int) and version > LOCKFILE_FORMAT_VERSION

    def read(self) -> Lockfile:
        """The recorded state; an empty Lockfile when the stack has no row yet."""
        with self._session() as conn:
            text = self._row(conn)
        if text is None:
            return Lockfile()
        lockfile = loads(text, self.where)
        self._known = lockfile
        return lockfile

    def write(self, lockfile: Lockfile, *, forbidden_values: Iterable[str] = ()) -> Lockfile:
        """Compare-and-swap `lockfile` in under the exclusive lock; return what is stored now.

        Same contract as the lockfile's write: lineage minted on the first write, the serial
        bumped only when the content changed, a stale lineage/serial refused.
        """
        if self._mode != "exclusive":
            raise LockfileError(f"{self.where}: writing the state needs the exclusive lock")
        known = self._known
        if known is None or (known.lineage, known.serial) != (lockfile.lineage, lockfile.serial):
            known = self.read()
        stored = bool(known.lineage)  # podctl mints a lineage with the first write
        new = next_version(
            lockfile,
            known,
            stored=stored,
            what=f"state {self.where}",
            forbidden_values=forbidden_values,
        )
        if new is None:
            return known
        with self._fenced() as conn, conn.transaction():
            if stored:
                cursor = conn.execute(
                    """UPDATE stacks SET lineage = %s, serial = %s, document = %s::jsonb,
                         updated_at = now()
                       WHERE stack = %s AND lineage = %s AND serial = %s""",
                    (new.lineage, new.serial, _head(new), self.stack, known.lineage, known.serial),
                )
            else:
                cursor = conn.execute(
                    """INSERT INTO stacks (stack, lineage, serial, document)
                       VALUES (%s, %s, %s, %s::jsonb) ON CONFLICT (stack) DO NOTHING""",
                    (self.stack, new.lineage, new.serial, _head(new)),
                )
            if cursor.rowcount == 1:
                self._write_rows(conn, known if stored else Lockfile(), new)
        if cursor.rowcount != 1:
            self._known = None
            raise StateLost(
                f"The state {self.where} was changed by another writer (its serial is no longer "
                f"{known.serial}); no further change was made; run apply again."
            )
        self._known = new
        return new

    def _write_rows(self, conn: psycopg.Connection[Any], old: Lockfile, new: Lockfile) -> None:
        """Upsert the rows that differ between `old` (what is stored) and `new`; delete the
        rows `new` no longer has. Unchanged records (most, in an apply) are not touched."""
        upserts: list[tuple[str, str, str, int, str]] = []
        deletes: list[tuple[str, str, str]] = []
        for kind in COLLECTIONS:
            before, after = _keyed(old, kind), _keyed(new, kind)
            changed = [k for k, v in after.items() if not _same(before.get(k, _MISSING), v)]
            if changed:
                texts = _entries(new, kind, changed)
                upserts += [(self.stack, kind, k, _ord(kind, k), texts[k]) for k in changed]
            deletes += [(self.stack, kind, k) for k in before if k not in after]
        with conn.cursor() as cursor:
            if upserts:
                cursor.executemany(
                    """INSERT INTO entries (stack, kind, key, ord, value)
                       VALUES (%s, %s, %s, %s, %s::jsonb)
                       ON CONFLICT (stack, kind, key) DO UPDATE
                       SET ord = EXCLUDED.ord, value = EXCLUDED.value""",
                    upserts,
                )
            if deletes:
                cursor.executemany(
                    "DELETE FROM entries WHERE stack = %s AND kind = %s AND key = %s", deletes
                )

    def move_aside(self, now: datetime | None = None) -> str:
        """Rename the stack's unreadable row to `<stack>.corrupt-<UTC time>`; never deletes."""
        if self._mode != "exclusive":
            raise LockfileError(f"{self.where}: moving the state aside needs the exclusive lock")
        stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
        with self._session() as conn:
            target, n = f"{self.stack}.corrupt-{stamp}", 1
            while conn.execute("SELECT 1 FROM stacks WHERE stack = %s", (target,)).fetchone():
                n += 1
                target = f"{self.stack}.corrupt-{stamp}-{n}"
            with conn.transaction():
                conn.execute("UPDATE stacks SET stack = %s WHERE stack = %s", (target, self.stack))
                conn.execute("UPDATE entries SET stack = %s WHERE stack = %s", (target, self.stack))
        self._known = None
        return f"{scrub_url(self.url)} (stack {target})"


_MISSING = object()


def _text(value: object) -> str:
    """A text column's value (bytes from a SQL_ASCII database)."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _head(lockfile: Lockfile) -> str:
    """The document without its rows: what the `stacks` row holds."""
    bare = replace(lockfile, pods={}, jobs={}, intents=(), host_keys={})
    document = json.loads(dumps(bare))
    return json.dumps({k: v for k, v in document.items() if k not in COLLECTIONS})


def _keyed(lockfile: Lockfile, kind: str) -> Mapping[str, object]:
    """One collection by row key (intents by their place: their order is kept)."""
    if kind == "intents":
        return {_intent_key(i): intent for i, intent in enumerate(lockfile.intents)}
    collection: Mapping[str, object] = getattr(lockfile, kind)
    return collection


def _intent_key(index: int) -> str:
    return f"{index:09d}"


def _ord(kind: str, key: str) -> int:
    return int(key) if kind == "intents" else 0


def _same(a: object, b: object) -> bool:
    return a is b or a == b


def _entries(lockfile: Lockfile, kind: str, keys: list[str]) -> dict[str, str]:
    """The codec's JSON of the named records only (the rest of the document is not encoded)."""
    if kind == "intents":
        part = Lockfile(intents=tuple(lockfile.intents[int(k)] for k in keys))
        items = json.loads(dumps(part))["intents"]
        return {k: json.dumps(item) for k, item in zip(keys, items, strict=True)}
    if kind == "pods":
        part = Lockfile(pods={k: lockfile.pods[k] for k in keys})
    elif kind == "jobs":
        part = Lockfile(jobs={k: lockfile.jobs[k] for k in keys})
    else:
        part = Lockfile(host_keys={k: lockfile.host_keys[k] for k in keys})
    document = json.loads(dumps(part))[kind]
    return {k: json.dumps(document[k]) for k in keys}
