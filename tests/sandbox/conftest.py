"""Fixtures: one sandbox server process per test module (start delay 0), reset per test."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from reconciler.sandbox import control


@dataclass
class Sandbox:
    info: control.SandboxInfo

    @property
    def url(self) -> str:
        return self.info.url

    @property
    def key(self) -> str:
        return self.info.api_key

    @property
    def data_dir(self) -> Path:
        return self.info.data_dir

    def post(
        self, query: str, variables: dict[str, Any] | None = None, key: str | None = None
    ) -> httpx.Response:
        body: dict[str, Any] = {"query": query}
        if variables is not None:
            body["variables"] = variables
        return httpx.post(
            self.url + "/graphql",
            json=body,
            headers={"Authorization": f"Bearer {key or self.key}"},
            timeout=10,
        )

    def gql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """POST a document that must succeed; returns `data`."""
        resp = self.post(query, variables)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert "errors" not in body, body
        data: dict[str, Any] = body["data"]
        return data

    def faults(self, spec: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = control.faults(self.data_dir, spec)
        return result

    def create(self, **fields: Any) -> dict[str, Any]:
        inp = {"name": "t", "imageName": "img", "gpuTypeId": "NVIDIA RTX A4000", "gpuCount": 1}
        inp.update(fields)
        data = self.gql(
            "mutation($input: PodFindAndDeployOnDemandInput!) {"
            " podFindAndDeployOnDemand(input: $input) { id desiredStatus } }",
            {"input": inp},
        )
        pod: dict[str, Any] = data["podFindAndDeployOnDemand"]
        return pod

    def pod(self, pod_id: str) -> dict[str, Any] | None:
        data = self.gql(
            "query($id: String!) { pod(input: {podId: $id}) { id desiredStatus env"
            " runtime { ports { ip isIpPublic privatePort publicPort type } } } }",
            {"id": pod_id},
        )
        pod: dict[str, Any] | None = data["pod"]
        return pod

    def ssh_port(self, pod_id: str) -> int:
        pod = self.pod(pod_id)
        assert pod is not None and pod["runtime"] is not None
        return int(next(p["publicPort"] for p in pod["runtime"]["ports"] if p["privatePort"] == 22))


def start_sandbox(data_dir: Path) -> Sandbox:
    return Sandbox(control.start_detached(data_dir, start_delay=0))


@pytest.fixture(scope="module")
def module_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    data_dir = tmp_path_factory.mktemp("sandbox")
    sb = start_sandbox(data_dir)
    try:
        yield sb
    finally:
        control.reset(data_dir)  # kills pod processes
        control.stop(data_dir)


@pytest.fixture
def sb(module_sandbox: Sandbox) -> Sandbox:
    control.reset(module_sandbox.data_dir)
    return module_sandbox


@pytest.fixture(scope="session")
def client_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """(private key path, public key line) for SSH tests."""
    path = tmp_path_factory.mktemp("keys") / "id_ed25519"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "podctl-test", "-f", str(path)],
        check=True,
    )
    return path, path.with_suffix(".pub").read_text().strip()
