"""Both clients read the same sandbox pods as the same ActualPod in every field podctl compares.

Pods are made over GraphQL and over REST v2 with varied shapes (volume or none, clouds, ports,
env with `=` and newlines, stopped), then listed by RunPodClient and RestClient.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from reconciler.backends.runpod_graphql import RunPodClient
from reconciler.backends.runpod_rest import RestClient
from reconciler.model import ActualPod, ActualState
from reconciler.planner.fields import actual_view
from tests.sandbox.conftest import Sandbox

COMPARED = ("pod_id", "desired_status", "markers", "ssh", "runtime_ready", "env")
MARKERS = {"PODCTL_STACK": "s", "PODCTL_POD": "p", "PODCTL_UID": "u"}


def both(sb: Sandbox) -> tuple[ActualState, ActualState]:
    async def read() -> tuple[ActualState, ActualState]:
        async with (
            RunPodClient(sb.key, api_url=sb.url) as gql,
            RestClient(sb.key, api_url=sb.url) as rest,
        ):
            return await gql.list_pods(), await rest.list_pods()

    return asyncio.run(read())


def same(graphql: ActualPod, rest: ActualPod) -> None:
    assert actual_view(rest) == actual_view(graphql)
    for name in COMPARED:
        assert getattr(rest, name) == getattr(graphql, name), name
    if graphql.runtime_ready:  # v2 bills 0 while stopped; GraphQL shows the running rate
        assert rest.cost_per_hr == graphql.cost_per_hr


def rest_create(sb: Sandbox, body: dict[str, Any]) -> str:
    made = httpx.post(
        sb.url + "/v2/pods", json=body, headers={"Authorization": f"Bearer {sb.key}"}, timeout=10
    )
    assert made.status_code == 201, made.text
    pod_id: str = made.json()["id"]
    return pod_id


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"volumeInGb": 0, "containerDiskInGb": 5, "ports": "22/tcp"},
        {"volumeInGb": 40, "volumeMountPath": "/data", "cloudType": "COMMUNITY"},
        {"gpuCount": 2, "ports": "8888/http,22/tcp", "dockerArgs": "sleep infinity"},
    ],
)
def test_a_graphql_pod_reads_the_same_over_rest(sb: Sandbox, fields: dict[str, Any]) -> None:
    env = {**MARKERS, "EQ": "a=b", "MULTI": "l1\nl2"}
    pod_id = sb.create(env=[{"key": k, "value": v} for k, v in env.items()], **fields)["id"]
    sb.ssh_port(pod_id) if "22/tcp" in str(fields.get("ports", "")) else None
    graphql, rest = both(sb)
    same(graphql.pods[pod_id], rest.pods[pod_id])
    sb.gql("mutation($id: String!) { podStop(input: {podId: $id}) { id } }", {"id": pod_id})
    graphql, rest = both(sb)
    same(graphql.pods[pod_id], rest.pods[pod_id])


@pytest.mark.parametrize(
    "body",
    [
        {"ports": ["22/tcp"], "mounts": {"persistent": {"size": 20, "path": "/workspace"}}},
        {"ports": ["8888/http"], "cloud": "COMMUNITY", "disk": 7, "args": "x y"},
    ],
)
def test_a_rest_pod_reads_the_same_over_graphql(sb: Sandbox, body: dict[str, Any]) -> None:
    pod_id = rest_create(
        sb, {"name": "r", "image": "img", "gpu": {"id": "NVIDIA RTX A4000"}, "env": MARKERS, **body}
    )
    graphql, rest = both(sb)
    same(graphql.pods[pod_id], rest.pods[pod_id])
