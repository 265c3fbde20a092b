"""The pod API contract: the executor's fake, the sandbox over GraphQL and over REST v2 agree.

Every test runs on the three stand-ins (`backend` is parametrised), so none can drift from the
others: a fake kinder than RunPod would let executor tests pass that fail on the real API.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest

from reconciler.backends.runpod_graphql import RunPodClient
from reconciler.backends.runpod_rest import RestClient
from reconciler.errors import (
    ApiError,
    CapacityError,
    ResumeCapacityError,
    TransientApiError,
    UsageError,
)
from reconciler.executor.ports import PodBackend
from reconciler.model import ActualPod, CloudType, PodMarkers, PodStatus
from reconciler.podops import PodCreate, PodEdit
from tests.executor_fakes import FakeApi
from tests.sandbox.conftest import Sandbox, module_sandbox, sb

__all__ = ["module_sandbox", "sb"]

MARKERS = PodMarkers("contract", "box", "uid-contract-1")
GPU = "NVIDIA RTX A4000"


@dataclass
class Backend:
    """One stand-in: its client, how to exhaust a GPU type, and the other API (sandbox only)."""

    name: str
    api: PodBackend
    exhaust: Callable[[str], None]
    lose_create: Callable[[], None]  # the next create is applied, then its answer is lost
    take_gpu: Callable[[str], None]  # resuming this pod finds its host's GPU taken
    other: PodBackend | None = None


Factory = Callable[[], AbstractAsyncContextManager[Backend]]


@pytest.fixture(params=["fake", "graphql", "rest"])
def backend(request: pytest.FixtureRequest) -> Factory:
    if request.param == "fake":

        @asynccontextmanager
        async def fake() -> AsyncIterator[Backend]:
            api = FakeApi()

            def lose() -> None:
                api.lose_answers += 1

            yield Backend("fake", api, api.exhausted.add, lose, api.gpu_taken.add)

        return fake
    sb: Sandbox = request.getfixturevalue("sb")

    def exhaust(gpu: str) -> None:
        sb.faults({"exhaust": [gpu]})

    def lose() -> None:
        sb.faults({"lose_responses": {"count": 1, "operations": ["create", "rest:createPod"]}})

    def take_gpu(pod_id: str) -> None:
        sb.faults({"gpu_taken": [pod_id]})

    @asynccontextmanager
    async def sandbox() -> AsyncIterator[Backend]:
        async with (
            RunPodClient(sb.key, api_url=sb.url) as gql,
            RestClient(sb.key, api_url=sb.url) as rest,
        ):
            if request.param == "graphql":
                yield Backend("graphql", gql, exhaust, lose, take_gpu, rest)
            else:
                yield Backend("rest", rest, exhaust, lose, take_gpu, gql)

    return sandbox


def run(factory: Factory, body: Callable[[Backend], Awaitable[None]]) -> None:
    async def main() -> None:
        async with factory() as backend:
            await body(backend)

    asyncio.run(main())


def request(**kw: Any) -> PodCreate:
    values: dict[str, Any] = {
        "name": "contract-box",
        "image": "img:1",
        "gpu_type_id": GPU,
        "gpu_count": 1,
        "cloud": CloudType.SECURE,
        "env": {**MARKERS.as_env(), "MODE": "a", "EQ": "x=y"},
        "ports": ("22/tcp", "8888/http"),
        "container_disk_gb": 7,
        "volume_gb": 20,
        "volume_mount": "/workspace",
    }
    values.update(kw)
    return PodCreate(**values)


async def ready(api: Any, pod_id: str) -> ActualPod:
    """Poll the pod's list (bounded) until its runtime shows with SSH, as the executor does."""
    for _ in range(400):
        pod: ActualPod | None = (await api.list_pods()).pods.get(pod_id)
        assert pod is not None
        if pod.runtime_ready and pod.ssh is not None:
            return pod
        await asyncio.sleep(0.025)
    raise AssertionError(f"pod {pod_id} never became ready")


def shape(pod: ActualPod) -> dict[str, Any]:
    """What a create must carry through to the pod as listed."""
    return {
        "name": pod.name,
        "image": pod.image,
        "gpu_type_id": pod.gpu_type_id,
        "gpu_count": pod.gpu_count,
        "cloud": pod.cloud,
        "env": dict(pod.env),
        "markers": pod.markers,
        "ports": sorted(pod.ports),
        "container_disk_gb": pod.container_disk_gb,
        "volume_gb": pod.volume_gb,
        "volume_mount": pod.volume_mount,
    }


EXPECTED = {
    "name": "contract-box",
    "image": "img:1",
    "gpu_type_id": GPU,
    "gpu_count": 1,
    "cloud": CloudType.SECURE,
    "env": {**MARKERS.as_env(), "MODE": "a", "EQ": "x=y"},
    "markers": MARKERS,
    "ports": ["22/tcp", "8888/http"],
    "container_disk_gb": 7,
    "volume_gb": 20,
    "volume_mount": "/workspace",
}


def test_an_empty_account_lists_no_pods(backend: Factory) -> None:
    async def body(b: Backend) -> None:
        assert (await b.api.list_pods()).pods == {}

    run(backend, body)


def test_a_create_carries_markers_env_ports_disk_gpu_and_cloud(backend: Factory) -> None:
    async def body(b: Backend) -> None:
        made = await b.api.create_pod(request())
        assert made.desired_status is PodStatus.RUNNING
        assert made.markers == MARKERS
        listed = (await b.api.list_pods()).pods
        assert list(listed) == [made.pod_id]
        assert shape(listed[made.pod_id]) == EXPECTED
        got = await b.api.get_pod(made.pod_id)
        assert got is not None and shape(got) == EXPECTED

    run(backend, body)


def test_a_community_pod_with_two_gpus_and_no_volume(backend: Factory) -> None:
    async def body(b: Backend) -> None:
        made = await b.api.create_pod(
            request(cloud=CloudType.COMMUNITY, gpu_count=2, volume_gb=0, ports=("22/tcp",))
        )
        pod = (await b.api.list_pods()).pods[made.pod_id]
        assert (pod.cloud, pod.gpu_count, pod.volume_gb, pod.volume_mount) == (
            CloudType.COMMUNITY,
            2,
            0,
            None,
        )

    run(backend, body)


def test_a_cpu_pod_has_its_vcpus_no_gpu_and_no_volume_disk(backend: Factory) -> None:
    async def body(b: Backend) -> None:
        made = await b.api.create_pod(
            request(gpu_type_id="cpu5c", gpu_count=0, cpu_flavor="cpu5c", vcpu_count=4)
        )
        pod = await ready(b.api, made.pod_id)
        assert (pod.gpu_type_id, pod.gpu_count, pod.vcpu_count, pod.cloud) == (
            None,
            0,
            4,
            CloudType.SECURE,
        )
        assert (pod.volume_gb, pod.volume_mount, pod.markers) == (0, None, MARKERS)
        # GraphQL's pod names no flavor; REST v2 (and the fake, as it) does
        assert pod.cpu_flavor == (None if b.name == "graphql" else "cpu5c")

    run(backend, body)


def test_an_unknown_pod_is_none_on_get_and_false_on_terminate(backend: Factory) -> None:
    async def body(b: Backend) -> None:
        assert await b.api.get_pod("nosuchpod0001") is None
        assert await b.api.terminate_pod("nosuchpod0001") is False

    run(backend, body)


def test_a_running_pod_with_22_tcp_gets_an_ssh_endpoint(backend: Factory) -> None:
    async def body(b: Backend) -> None:
        made = await b.api.create_pod(request())
        pod = await ready(b.api, made.pod_id)
        assert pod.desired_status is PodStatus.RUNNING
        assert pod.ssh is not None and pod.ssh.port > 0 and pod.ssh.host

    run(backend, body)


def test_a_pod_without_22_tcp_never_gets_an_ssh_endpoint(backend: Factory) -> None:
    async def body(b: Backend) -> None:
        made = await b.api.create_pod(request(ports=("8888/http",)))
        for _ in range(400):
            pod = (await b.api.list_pods()).pods[made.pod_id]
            if pod.runtime_ready:
                break
            await asyncio.sleep(0.025)
        assert pod.runtime_ready and pod.ssh is None

    run(backend, body)


def test_an_edit_replaces_the_env_and_keeps_the_markers(backend: Factory) -> None:
    async def body(b: Backend) -> None:
        made = await b.api.create_pod(request())
        await ready(b.api, made.pod_id)
        env = {**MARKERS.as_env(), "NEW": "1"}
        edited = await b.api.edit_pod(
            made.pod_id,
            PodEdit(
                image="img:2",
                container_disk_gb=7,
                volume_gb=20,
                volume_mount="/workspace",
                env=env,
                ports=("22/tcp", "8888/http"),
            ),
        )
        assert edited.pod_id == made.pod_id
        pod = (await b.api.list_pods()).pods[made.pod_id]
        assert dict(pod.env) == env  # MODE and EQ are gone
        assert pod.markers == MARKERS and pod.image == "img:2"
        assert (await ready(b.api, made.pod_id)).ssh is not None

    run(backend, body)


def test_stop_then_resume_keeps_the_pod(backend: Factory) -> None:
    async def body(b: Backend) -> None:
        made = await b.api.create_pod(request())
        await ready(b.api, made.pod_id)
        assert await b.api.stop_pod(made.pod_id) is PodStatus.EXITED
        stopped = (await b.api.list_pods()).pods[made.pod_id]
        assert stopped.desired_status is PodStatus.EXITED
        assert (stopped.runtime_ready, stopped.ssh) == (False, None)
        assert stopped.markers == MARKERS and stopped.volume_gb == 20
        assert await b.api.stop_pod(made.pod_id) is PodStatus.EXITED  # again: no error
        resumed = await b.api.resume_pod(made.pod_id, 1)
        assert resumed.pod_id == made.pod_id and resumed.desired_status is PodStatus.RUNNING
        pod = await ready(b.api, made.pod_id)
        assert pod.markers == MARKERS and dict(pod.env) == EXPECTED["env"]

    run(backend, body)


def test_terminate_removes_the_pod_once(backend: Factory) -> None:
    async def body(b: Backend) -> None:
        made = await b.api.create_pod(request())
        assert await b.api.terminate_pod(made.pod_id) is True
        assert made.pod_id not in (await b.api.list_pods()).pods
        assert await b.api.get_pod(made.pod_id) is None
        assert await b.api.terminate_pod(made.pod_id) is False

    run(backend, body)


def test_no_capacity_is_a_capacity_error_and_makes_no_pod(backend: Factory) -> None:
    async def body(b: Backend) -> None:
        b.exhaust(GPU)
        with pytest.raises(CapacityError) as caught:
            await b.api.create_pod(request())
        assert "no longer any instances available" in str(caught.value)
        assert (await b.api.list_pods()).pods == {}
        made = await b.api.create_pod(request(gpu_type_id="NVIDIA RTX A5000"))
        assert made.gpu_type_id == "NVIDIA RTX A5000"

    run(backend, body)


def test_a_pod_made_over_one_api_reads_the_same_over_the_other(backend: Factory) -> None:
    async def body(b: Backend) -> None:
        if b.other is None:
            pytest.skip("the fake speaks one API")
        made = await b.api.create_pod(request())
        await ready(b.api, made.pod_id)
        mine = (await b.api.list_pods()).pods[made.pod_id]
        theirs = (await b.other.list_pods()).pods[made.pod_id]
        assert shape(theirs) == shape(mine) == EXPECTED
        assert (theirs.ssh, theirs.runtime_ready) == (mine.ssh, mine.runtime_ready)
        await b.other.stop_pod(made.pod_id)
        seen = await b.api.get_pod(made.pod_id)
        assert seen is not None and seen.desired_status is PodStatus.EXITED
        assert await b.other.terminate_pod(made.pod_id) is True
        assert await b.api.get_pod(made.pod_id) is None

    run(backend, body)


def test_stop_resume_and_edit_of_an_unknown_pod_are_api_errors(backend: Factory) -> None:
    async def body(b: Backend) -> None:
        with pytest.raises(ApiError, match="not found"):
            await b.api.stop_pod("nosuchpod0001")
        with pytest.raises(ApiError, match="not found"):
            await b.api.resume_pod("nosuchpod0001", 1)
        with pytest.raises(ApiError, match="not found"):
            await b.api.edit_pod(
                "nosuchpod0001",
                PodEdit(
                    image="img:2",
                    container_disk_gb=7,
                    volume_gb=20,
                    volume_mount="/workspace",
                    env=MARKERS.as_env(),
                    ports=("22/tcp",),
                ),
            )

    run(backend, body)


def test_an_edited_stopped_pod_stays_stopped(backend: Factory) -> None:
    async def body(b: Backend) -> None:
        made = await b.api.create_pod(request())
        await b.api.stop_pod(made.pod_id)
        await b.api.edit_pod(
            made.pod_id,
            PodEdit(
                image="img:2",
                container_disk_gb=7,
                volume_gb=20,
                volume_mount="/workspace",
                env=MARKERS.as_env(),
                ports=("22/tcp",),
            ),
        )
        pod = (await b.api.list_pods()).pods[made.pod_id]
        assert (pod.desired_status, pod.image, pod.ssh) == (PodStatus.EXITED, "img:2", None)

    run(backend, body)


def test_offers_list_each_cloud_and_only_the_types_asked(backend: Factory) -> None:
    async def body(b: Backend) -> None:
        every = await b.api.gpu_offers()
        assert set(every) == {CloudType.SECURE, CloudType.COMMUNITY}
        assert GPU in every[CloudType.SECURE] and GPU in every[CloudType.COMMUNITY]
        offer = every[CloudType.SECURE][GPU]
        assert offer.gpu_type_id == GPU and (offer.on_demand_price or 0) > 0
        asked = await b.api.gpu_offers([GPU, "NVIDIA No Such GPU"])
        assert {cloud: list(offers) for cloud, offers in asked.items()} == {
            CloudType.SECURE: [GPU],
            CloudType.COMMUNITY: [GPU],
        }

    run(backend, body)


def test_a_ready_pods_logs_show_its_container_and_an_unknown_pod_has_none(
    backend: Factory,
) -> None:
    async def body(b: Backend) -> None:
        made = await b.api.create_pod(request())
        await ready(b.api, made.pod_id)
        lines: list[str] = []
        if b.name == "graphql":  # GraphQL has no pod logs: refused before anything is sent
            with pytest.raises(UsageError, match="--api rest"):
                await b.api.pod_logs(made.pod_id, lines.append)
            return
        printed = await b.api.pod_logs(made.pod_id, lines.append)
        assert printed == len(lines) >= 1
        assert any("container running" in line for line in lines)
        with pytest.raises(ApiError, match="not found"):
            await b.api.pod_logs("nosuchpod0001", lines.append)

    run(backend, body)


def test_an_edit_carries_image_disk_ports_and_args_and_keeps_gpu_and_volume(
    backend: Factory,
) -> None:
    async def body(b: Backend) -> None:
        made = await b.api.create_pod(request())
        await ready(b.api, made.pod_id)
        edit = PodEdit(
            image="img:3",
            container_disk_gb=9,
            volume_gb=20,
            volume_mount="/workspace",
            env=MARKERS.as_env(),
            ports=("22/tcp",),
            docker_args="sleep infinity",
        )
        await b.api.edit_pod(made.pod_id, edit)
        pod = await ready(b.api, made.pod_id)
        assert (pod.image, pod.container_disk_gb, sorted(pod.ports), pod.docker_args) == (
            "img:3",
            9,
            ["22/tcp"],
            "sleep infinity",
        )
        assert (pod.gpu_type_id, pod.gpu_count, pod.volume_gb, pod.volume_mount) == (
            GPU,
            1,
            20,
            "/workspace",
        )
        assert dict(pod.env) == MARKERS.as_env()

    run(backend, body)


def test_a_create_whose_answer_is_lost_may_have_happened_and_its_uid_finds_the_pod(
    backend: Factory,
) -> None:
    async def body(b: Backend) -> None:
        b.lose_create()
        with pytest.raises(TransientApiError) as caught:
            await b.api.create_pod(request())
        assert caught.value.maybe_processed  # never re-sent blindly
        found = (await b.api.list_pods()).find_by_uid(MARKERS.uid)
        assert found is not None and found.markers == MARKERS
        assert len((await b.api.list_pods()).pods) == 1  # made once

    run(backend, body)


def test_a_resume_whose_gpu_is_taken_is_a_resume_capacity_error_and_the_pod_stays_stopped(
    backend: Factory,
) -> None:
    async def body(b: Backend) -> None:
        made = await b.api.create_pod(request())
        await ready(b.api, made.pod_id)
        await b.api.stop_pod(made.pod_id)
        b.take_gpu(made.pod_id)
        with pytest.raises(ResumeCapacityError):
            await b.api.resume_pod(made.pod_id, 1)
        pod = await b.api.get_pod(made.pod_id)
        assert pod is not None and pod.desired_status is PodStatus.EXITED

    run(backend, body)
