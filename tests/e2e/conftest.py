"""E2E fixtures: the sandbox (from tests/sandbox), a spec folder, and `podctl` run in-process."""

from __future__ import annotations

import json
import os
import textwrap
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from reconciler.backends.runpod_graphql.client import RunPodClient
from reconciler.backends.runpod_rest import RestClient
from reconciler.cli import run
from tests.sandbox.conftest import Sandbox, client_key, module_sandbox, sb

__all__ = ["Podctl", "Sandbox", "client_key", "module_sandbox", "sb"]

SECRET = "tok-e2e-Zq9xVv"  # a from_env value that must never be written or printed

SPEC = """\
version: 1
stack: e2e
pods:
  box:
    image: img:1
    gpu: {{type: [NVIDIA RTX A4000, NVIDIA RTX A5000], count: {count}}}
    ports: [8888/http]
    env:
      MODE: "{mode}"
      TOKEN: {{from_env: E2E_TOKEN}}
    state: {state}
    protect: {protect}
"""

MUTATIONS = {
    "CreatePod",
    "CreateSpotPod",
    "ResumePod",
    "BidResumePod",
    "StopPod",
    "TerminatePod",
    "EditPod",
}


@dataclass
class Result:
    code: int
    out: str
    err: str


@dataclass
class Podctl:
    """Writes the spec, runs `podctl ... --sandbox`, counts requests by GraphQL operation."""

    sb: Sandbox
    folder: Path
    capsys: pytest.CaptureFixture[str]
    api: str = "graphql"  # which API podctl speaks (PODCTL_API)
    operations: Counter[str] = field(default_factory=Counter)
    outputs: list[str] = field(default_factory=list)

    @property
    def spec(self) -> Path:
        return self.folder / "podctl.yaml"

    @property
    def lockfile(self) -> Path:
        return self.folder / "e2e.podctl.lock"

    def write(
        self,
        *,
        count: int = 1,
        mode: str = "a",
        state: str = "running",
        protect: bool = False,
        text: str | None = None,
    ) -> None:
        body = text or SPEC.format(
            count=count, mode=mode, state=state, protect=str(protect).lower()
        )
        self.spec.write_text(textwrap.dedent(body))

    def __call__(self, *args: str, sandbox: bool = True) -> Result:
        self.capsys.readouterr()
        argv = [*(["--sandbox"] if sandbox else []), *args]  # the group takes it for every command
        code = run(argv)
        captured = self.capsys.readouterr()
        self.outputs += [captured.out, captured.err]
        return Result(code, captured.out, captured.err)

    def mutations(self) -> Counter[str]:
        return Counter({k: v for k, v in self.operations.items() if k in MUTATIONS})

    def pods(self) -> list[dict[str, Any]]:
        """The sandbox's live pods (not terminated), oldest first."""
        data = self.sb.gql(
            "query { myself { pods { id name desiredStatus imageName gpuCount env"
            " machine { gpuTypeId } } } }"
        )
        pods: list[dict[str, Any]] = data["myself"]["pods"]
        return [p for p in pods if p["desiredStatus"] != "TERMINATED"]

    def recorded(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.lockfile.read_text())
        return data


APIS = ("graphql", "rest")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "both_apis: an e2e test run on GraphQL and again on REST v2 (`podctl_api`)"
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A `both_apis` test runs once per API; any other runs on $PODCTL_API (else graphql)."""
    if "podctl" in metafunc.fixturenames and metafunc.definition.get_closest_marker("both_apis"):
        metafunc.parametrize("podctl_api", APIS)


@pytest.fixture
def podctl_api() -> str:
    """The API the `podctl` fixture speaks: PODCTL_API=rest runs the whole e2e suite on REST."""
    api = os.environ.get("PODCTL_API", "graphql")
    assert api in APIS, f"PODCTL_API must be one of {APIS}, not {api!r}"
    return api


@pytest.fixture
def podctl(
    sb: Sandbox,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    podctl_api: str,
) -> Iterator[Podctl]:
    monkeypatch.setenv("PODCTL_API", podctl_api)
    monkeypatch.setenv("PODCTL_SANDBOX_DIR", str(sb.data_dir))
    monkeypatch.setenv("PODCTL_POLL_INTERVAL", "0.02")
    monkeypatch.setenv("E2E_TOKEN", SECRET)
    monkeypatch.delenv("RUNPOD_API_KEY", raising=False)
    monkeypatch.delenv("RUNPOD_API_BASE_URL", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "stack"
    folder.mkdir()
    tool = Podctl(sb, folder, capsys, podctl_api)
    original = RunPodClient._post

    async def counting(
        self: RunPodClient, document: str, variables: Any, operation: str, *rest: Any
    ) -> dict[str, object]:
        tool.operations[operation] += 1
        return await original(self, document, variables, operation, *rest)

    monkeypatch.setattr(RunPodClient, "_post", counting)
    if podctl_api == "rest":  # counted by the same operation names as GraphQL's
        rest_trip = RestClient._round_trip

        async def rest_counting(
            self: RestClient, method: str, url: str, body: object, operation: str, ends: float
        ) -> tuple[int, Any, bytes]:
            tool.operations[operation] += 1
            return await rest_trip(self, method, url, body, operation, ends)

        monkeypatch.setattr(RestClient, "_round_trip", rest_counting)
    tool.write()
    yield tool
