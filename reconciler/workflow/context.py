"""What every use case needs first: spec paths, desired state, secrets, and the wired-in ports.

The ports (pod backend, state store) come from the composition root (reconciler.cli.wiring)
through `Connection.ports`: the workflow builds no client of its own.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from reconciler.errors import LockfileError, PodctlError, UsageError
from reconciler.model import DesiredState, Lockfile, SecretRef
from reconciler.state import (
    LocalState,
    StateLost,
    StateSettings,
    StateStore,
    is_postgres_url,
    open_store,
)

if TYPE_CHECKING:
    from reconciler.executor.endpoint_jobs import JobApiPort
    from reconciler.executor.ports import BackendSession, BillingBackend, EndpointBackend

    ApiClient = BackendSession
    OpenEndpoints = Callable[
        ["Connection", ApiClient, Iterable[str]], AbstractAsyncContextManager[EndpointBackend]
    ]

LOCKFILE_SUFFIX = ".podctl.lock"  # <stack>.podctl.lock: several stacks can share a folder
DEFAULT_SPEC_FILE = Path("podctl.yaml")
DEFAULT_SPEC_DIR = Path("specs")


@dataclass(frozen=True)
class Ports:
    """How to open each port, as the composition root chose (reconciler.cli.wiring.PORTS)."""

    backend: Callable[[Connection], ApiClient]
    store: Callable[[StateSettings], StateStore] = open_store
    # the serverless control plane beside `backend` (REST v2 only); None: not wired
    endpoints: (
        Callable[
            [Connection, ApiClient, Iterable[str]], AbstractAsyncContextManager[EndpointBackend]
        ]
        | None
    ) = None
    # the serverless data plane (the job API: /run, /status...); None: not wired
    job_api: Callable[[Connection], JobApiPort] | None = None
    # RunPod's billing (REST v2 only) beside `backend`; None: not wired
    billing: (
        Callable[[Connection, ApiClient], AbstractAsyncContextManager[BillingBackend]] | None
    ) = None


@dataclass(frozen=True)
class Connection:
    """How to reach RunPod (or the sandbox) and where the recorded state lives."""

    lockfile: Path | None = None
    state: str | None = None  # a postgresql:// URL (--state); a lockfile path goes in lockfile
    sandbox: bool = False
    api_url: str | None = None
    insecure_http: bool = False  # allow plain http:// to a host that is not loopback
    lock_timeout: float = 0.0
    command: str = "podctl"
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    on_notice: Callable[[str], None] | None = None  # e.g. "retrying in 2s" lines, to stderr
    ssh_key: Path | None = None  # default: <stack>.podctl.id_ed25519 beside the lockfile
    api: str = ""  # "graphql" or "rest" (`--api`); "" reads PODCTL_API, else graphql
    ports: Ports | None = None  # None: no pod backend (the state store is the default one)


def default_spec_paths(cwd: Path | None = None) -> tuple[Path, ...]:
    """`-f` when none is given: ./podctl.yaml if it exists, else ./specs/ if it exists."""
    base = cwd or Path()
    for candidate in (DEFAULT_SPEC_FILE, DEFAULT_SPEC_DIR):
        if (base / candidate).exists():
            return (base / candidate,)
    raise UsageError(
        "No spec given and none found: pass -f PATH (a spec file or a folder of them); "
        "without -f podctl reads ./podctl.yaml, else ./specs/."
    )


def load_desired(paths: Sequence[Path]) -> DesiredState:
    from reconciler.spec import load_spec

    return load_spec(paths or default_spec_paths(), strict_env=True)


def secret_uses(desired: DesiredState) -> dict[str, list[str]]:
    """from_env NAME -> where it is used (`pods.trainer.env.HF_TOKEN`), in spec order."""
    uses: dict[str, list[str]] = {}
    sections = [("pods", p.name, p.env) for p in desired.pods.values()]
    sections += [("jobs", j.name, j.env) for j in desired.jobs.values()]
    sections += [("endpoints", e.name, e.env) for e in desired.endpoints.values()]
    for kind, name, env in sections:
        for key, value in env.items():
            if isinstance(value, SecretRef):
                uses.setdefault(value.from_env, []).append(f"{kind}.{name}.env.{key}")
    return uses


def resolve_secrets(desired: DesiredState, env: Mapping[str, str]) -> dict[str, str]:
    """Every from_env value; one error naming each missing variable and where it is used."""
    uses = secret_uses(desired)
    missing = [name for name in uses if not env.get(name)]
    if missing:
        lines = [f"  {name} (used by {', '.join(uses[name])})" for name in missing]
        raise PodctlError(
            "These environment variables are not set, and the spec reads them (from_env):\n"
            + "\n".join(lines)
            + "\nExport them and run again; their values are never written anywhere."
        )
    return {name: env[name] for name in uses}


def secret_env_keys(desired: DesiredState) -> dict[str, tuple[str, ...]]:
    """Pod name -> the env keys its spec fills from from_env (what the lockfile records)."""
    return {
        pod.name: tuple(sorted(k for k, v in pod.env.items() if isinstance(v, SecretRef)))
        for pod in desired.pods.values()
    }


def check_secrets_unshown(desired: DesiredState, secrets: Mapping[str, str]) -> None:
    """Refuse, before anything changes, a from_env value that is also a plain env value.

    A plan shows plain env values; one equal to a secret would print the secret. Compared with
    env values only, by equality (no field of another kind, no substring: no chance matches).
    """
    from reconciler.workflow.journal import MIN_GUARDED_SECRET

    names = {v: n for n, v in secrets.items() if len(v) >= MIN_GUARDED_SECRET}
    sections = [("pods", p.name, p.env) for p in desired.pods.values()]
    sections += [("jobs", j.name, j.env) for j in desired.jobs.values()]
    sections += [("endpoints", e.name, e.env) for e in desired.endpoints.values()]
    clashes = [
        f"  {kind}.{name}.env.{key} holds the value of from_env {names[value]}"
        for kind, name, env in sections
        for key, value in sorted(env.items())
        if isinstance(value, str) and value in names
    ]
    if clashes:
        raise PodctlError(
            "A secret is also written in the spec as a plain value, which plans would print:\n"
            + "\n".join(clashes)
            + "\nUse {from_env: NAME} there too (or another value); nothing was changed."
        )


def lockfile_path(connection: Connection, desired: DesiredState | None) -> Path:
    """`--lockfile`, else `<stack>.podctl.lock` beside the first spec file (or in `.`).

    Named by stack so that a folder holding several stacks' specs (as `specs/` does) gives
    each its own lockfile instead of one that the second stack would be refused.
    """
    if connection.lockfile is not None:
        return connection.lockfile
    if desired is None:
        return Path("podctl.lock")
    name = desired.stack + LOCKFILE_SUFFIX
    if desired.files:
        return Path(desired.files[0]).resolve().parent / name
    return Path(name)


def state_settings(connection: Connection, desired: DesiredState | None) -> StateSettings:
    """Where the state lives: `--state`/PODCTL_STATE (a postgresql:// URL or a lockfile path),
    else `--lockfile`, else the spec's `state: {url_from_env: NAME}`, else the lockfile
    `lockfile_path` names (beside the spec)."""
    location: str | Path
    if connection.state is not None and is_postgres_url(connection.state):
        location = connection.state
    elif connection.lockfile is None and desired is not None and desired.state_url_env:
        location = spec_state_url(connection, desired, desired.state_url_env)
    else:
        location = lockfile_path(connection, desired)
    return StateSettings(
        location,
        stack=desired.stack if desired is not None else "",
        lock_timeout=connection.lock_timeout,
        command=connection.command,
    )


def spec_state_url(connection: Connection, desired: DesiredState, name: str) -> str:
    """The value of the variable `state: {url_from_env: NAME}` names: a postgresql:// URL."""
    where = f"{desired.files[0]}: " if desired.files else ""
    value = connection.env.get(name, "").strip()
    if not value:
        raise UsageError(
            f"{where}state: {{url_from_env: {name}}} names the variable {name}, which is not set: "
            f"export it with the postgresql:// URL of the team's state store, or pass --state "
            "URL (or --lockfile PATH) to use another store for this command."
        )
    if not is_postgres_url(value):
        raise UsageError(
            f"{where}state: {{url_from_env: {name}}}: {name} must hold a postgresql:// URL "
            "(its value is not shown; it may hold a password)."
        )
    return value


def open_state(connection: Connection, desired: DesiredState | None) -> StateStore:
    """The state store the wiring opens for these settings (by default `state.open_store`)."""
    opener = connection.ports.store if connection.ports is not None else open_store
    return opener(state_settings(connection, desired))


@contextlib.contextmanager
def stop_on_lost() -> Iterator[None]:
    """Report a store that lost its lock (or was written behind it) as a LockfileError."""
    try:
        yield
    except StateLost as exc:
        raise LockfileError(str(exc)) from None


def local_state(connection: Connection, desired: DesiredState) -> LocalState:
    """Where this runner keeps the stack's SSH key and job logs (never in a shared store).

    Beside the lockfile for a lockfile store (as always); beside the first spec file for a
    PostgreSQL store, whose runners each keep their own.
    """
    settings = state_settings(connection, desired)
    if isinstance(settings.location, Path):
        return LocalState.beside(settings.location)
    folder = Path(desired.files[0]).resolve().parent if desired.files else Path()
    return LocalState(folder, desired.stack + LOCKFILE_SUFFIX.removesuffix(".lock"), shared=True)


def check_stack(recorded: Lockfile, desired: DesiredState, where: str | Path) -> None:
    if recorded.stack and recorded.stack != desired.stack:
        raise LockfileError(
            f"The lockfile {where} belongs to stack {recorded.stack!r}, not {desired.stack!r}. "
            "Pass --lockfile with another path for this stack."
        )


API_ENV = "PODCTL_API"
APIS = ("graphql", "rest")


def api_of(connection: Connection) -> str:
    """Which RunPod API to speak: `--api`, else $PODCTL_API, else graphql."""
    chosen = (connection.api or connection.env.get(API_ENV, "") or "graphql").strip().lower()
    if chosen not in APIS:
        source = "--api" if connection.api else API_ENV
        raise UsageError(
            f"{source} {chosen[:40]!r} is no RunPod API podctl speaks: use graphql or rest."
        )
    return chosen


def connect(connection: Connection) -> ApiClient:
    """The pod backend the composition root wired in (`--api`, RunPod or the sandbox)."""
    if connection.ports is None:
        raise PodctlError(
            "No pod backend is wired into this Connection: build it with "
            "reconciler.cli.wiring.PORTS (a bug in the caller)."
        )
    return connection.ports.backend(connection)


def key_path(connection: Connection, desired: DesiredState, local: LocalState) -> Path:
    """The SSH key for jobs: `--ssh-key`, else the spec's `ssh_key:`, else the stack's own.

    With a shared store the key must already exist: a runner that made its own would give
    new pods a key the other runners lack, and could not reach the pods the others made.
    """
    if connection.ssh_key is not None:
        chosen, source = connection.ssh_key, "--ssh-key"
    elif desired.ssh_key:
        chosen, source = Path(desired.ssh_key), "the spec's ssh_key:"
    else:
        chosen, source = local.ssh_key, ""
    if local.shared and not chosen.exists():
        named = f"{source} names {chosen}, which does not exist" if source else "no job SSH key"
        raise UsageError(
            f"The stack's state is shared (PostgreSQL) and {named}. Every runner of the "
            "stack must use the same key, so podctl does not make one per runner: make it "
            f"once (`ssh-keygen -t ed25519 -N '' -f {chosen.name}`), give it to every runner "
            "(e.g. a CI secret file, mode 0600) and pass --ssh-key PATH (env PODCTL_SSH_KEY) "
            "or set ssh_key: in the spec."
        )
    return chosen
