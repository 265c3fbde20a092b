"""open_store: the StateStore a location names (a lockfile path, or a `postgresql://` URL)."""

from __future__ import annotations

import time
from pathlib import Path

from reconciler.errors import UsageError
from reconciler.state.leader import LEADER_SUFFIX, Leadership
from reconciler.state.port import StateSettings, StateStore

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def is_postgres_url(location: str | Path) -> bool:
    return isinstance(location, str) and location.lower().startswith(POSTGRES_SCHEMES)


def open_store(settings: StateSettings) -> StateStore:
    """The store for `settings.location`; nothing is opened or locked until it is used."""
    sleep = settings.sleep or time.sleep
    if is_postgres_url(settings.location):
        from reconciler.state.postgres import PostgresStore

        if not settings.stack:
            raise UsageError(
                "A PostgreSQL state store holds many stacks: pass -f SPEC so podctl knows which."
            )
        return PostgresStore(
            str(settings.location),
            settings.stack,
            lock_timeout=settings.lock_timeout,
            command=settings.command,
            poll_interval=settings.poll_interval,
            sleep=sleep,
        )
    if isinstance(settings.location, str) and "://" in settings.location:
        scheme = settings.location.partition("://")[0]
        raise UsageError(
            f"--state {scheme}://... is not a state store podctl knows: give a lockfile path "
            "or a postgresql:// URL."
        )
    from reconciler.lockfile import LockfileStore

    return LockfileStore(
        Path(settings.location),
        lock_timeout=settings.lock_timeout,
        command=settings.command,
        poll_interval=settings.poll_interval,
        sleep=sleep,
    )


def open_leadership(settings: StateSettings) -> Leadership:
    """The stack's reconcile lock, in the store `settings.location` names."""
    if is_postgres_url(settings.location):
        from reconciler.state.postgres import PostgresStore

        store = PostgresStore(
            str(settings.location),
            settings.stack + LEADER_SUFFIX,
            command=settings.command,
            poll_interval=settings.poll_interval,
        )
        return Leadership(store, store.alive)
    from reconciler.lockfile import LockfileStore

    path = Path(settings.location)
    flock = LockfileStore(
        path.with_name(path.name.removesuffix(".lock") + LEADER_SUFFIX), command=settings.command
    )
    return Leadership(flock, lambda: True)  # a flock lives as long as its process
