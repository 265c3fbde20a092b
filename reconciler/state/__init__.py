"""The recorded state's port: StateStore, open_store(settings), and the runner's local folder.

The lockfile (reconciler.lockfile) is the first store; PostgreSQL (reconciler.state.postgres)
is the team store. What is stored is always the lockfile codec's document.
"""

from __future__ import annotations

from reconciler.state.leader import Leadership
from reconciler.state.open import is_postgres_url, open_leadership, open_store
from reconciler.state.port import LocalState, LockMode, StateLost, StateSettings, StateStore

__all__ = [
    "Leadership",
    "LocalState",
    "LockMode",
    "StateLost",
    "StateSettings",
    "StateStore",
    "is_postgres_url",
    "open_leadership",
    "open_store",
]
