"""The core loads no backend: importing every core package pulls in neither httpx nor
reconciler.backends (import-linter checks the import graph; this checks what Python loads)."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

from reconciler.errors import PodctlError

CORE = (
    "reconciler.model",
    "reconciler.podops",
    "reconciler.plans",
    "reconciler.planner",
    "reconciler.render",
    "reconciler.spec",
    "reconciler.lockfile",
    "reconciler.state",
    "reconciler.jobs",
    "reconciler.executor",
    "reconciler.executor.ports",
    "reconciler.executor.run",
    "reconciler.executor.steps",
    "reconciler.workflow",
    "reconciler.workflow.pods",
    "reconciler.workflow.logs",
    "reconciler.workflow.reconcile",
)


def test_importing_the_core_loads_no_backend_and_no_httpx() -> None:
    code = (
        "import importlib, sys\n"
        f"for name in {CORE!r}:\n"
        "    importlib.import_module(name)\n"
        "print(sorted(m for m in sys.modules if m == 'httpx' or m.startswith(('httpx.', "
        "'reconciler.backends'))))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "[]\n"


def test_the_cli_wiring_is_where_a_backend_is_picked() -> None:
    from reconciler.backends.runpod_graphql import RunPodClient
    from reconciler.backends.runpod_rest import RestClient
    from reconciler.cli.wiring import PORTS
    from reconciler.workflow.context import Connection, connect

    env = {"RUNPOD_API_KEY": "k" * 20}
    for api, kind in (("graphql", RunPodClient), ("rest", RestClient)):
        backend = connect(Connection(api=api, env=env, ports=PORTS))
        assert type(backend) is kind and backend.api_name == api
        asyncio.run(backend.aclose())
    with pytest.raises(PodctlError, match="No pod backend is wired"):
        connect(Connection(env=env))
