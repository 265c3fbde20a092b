"""The planner against pods as the sandbox's API reports them: a podctl-made pod is a no-op."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from reconciler.backends.runpod_graphql import RunPodClient
from reconciler.model import ActualState, CloudType, GpuOffer, PodMarkers, PodSpec, SecretRef
from reconciler.planner import plan, pod_fingerprint
from reconciler.plans import Action, Plan
from reconciler.podops import PodCreate, PodEdit
from reconciler.sandbox import control
from tests.planner_fixtures import SECRETS, desired, lockfile, record
from tests.sandbox.conftest import Sandbox, start_sandbox

SPEC = PodSpec(
    name="trainer",
    image="runpod/pytorch:2.4",
    gpu_types=("NVIDIA GeForce RTX 4090", "NVIDIA RTX A6000"),
    ports=("8888/http", "22/tcp"),
    env={"WANDB_PROJECT": "eval", "QUOTE": 'a "b" =c', "HF_TOKEN": SecretRef("HF_TOKEN")},
    docker_args="",
    container_disk_gb=30,
    volume_gb=40,
)


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    data_dir: Path = tmp_path_factory.mktemp("sandbox")
    sb = start_sandbox(data_dir)
    try:
        yield sb
    finally:
        control.reset(data_dir)
        control.stop(data_dir)


async def _create_and_observe(
    sb: Sandbox, *, then: str = ""
) -> tuple[str, ActualState, dict[CloudType, dict[str, GpuOffer]]]:
    env = {k: SECRETS[v.from_env] if isinstance(v, SecretRef) else v for k, v in SPEC.env.items()}
    env.update(PodMarkers("demo", "trainer", "u1").as_env())
    env["PUBLIC_KEY"] = "ssh-ed25519 AAAA test"
    async with RunPodClient(sb.key, api_url=sb.url) as api:
        pod = await api.create_pod(
            PodCreate(
                name="demo-trainer",
                image=SPEC.image,
                gpu_type_id=SPEC.gpu_types[0],
                gpu_count=1,
                cloud=CloudType.SECURE,
                env=env,
                ports=SPEC.ports,
                container_disk_gb=SPEC.container_disk_gb,
                volume_gb=SPEC.volume_gb,
                volume_mount=SPEC.volume_mount,
            )
        )
        if then == "edit":
            await api.edit_pod(
                pod.pod_id,
                PodEdit(
                    image="runpod/pytorch:hacked",
                    container_disk_gb=SPEC.container_disk_gb,
                    volume_gb=SPEC.volume_gb,
                    volume_mount=SPEC.volume_mount,
                    env=env,
                    ports=SPEC.ports,
                ),
            )
        elif then == "stop":
            await api.stop_pod(pod.pod_id)
        pods = await api.list_pods()
        offers = {
            CloudType.SECURE: await api.gpu_prices(SPEC.gpu_types, secure=True),
            CloudType.COMMUNITY: await api.gpu_prices(SPEC.gpu_types, secure=False),
        }
    return pod.pod_id, pods, offers


def _plan(sb: Sandbox, then: str = "") -> tuple[str, Plan]:
    control.reset(sb.data_dir)
    pod_id, pods, offers = asyncio.run(_create_and_observe(sb, then=then))
    rec = lockfile(("trainer", record(SPEC, pod_id=pod_id)))
    return pod_id, plan(desired(SPEC), pods, rec, offers=offers, secrets=SECRETS)


def test_a_pod_made_from_the_spec_is_up_to_date(sandbox: Sandbox) -> None:
    pod_id, p = _plan(sandbox)
    (change,) = p.changes
    assert (change.action, change.pod_id, change.fields) == (Action.NOOP, pod_id, ())
    assert p.total_cost_before == p.total_cost_after == 0.69


def test_an_edit_outside_podctl_is_drift(sandbox: Sandbox) -> None:
    _, p = _plan(sandbox, then="edit")
    (change,) = p.changes
    assert change.action is Action.UPDATE
    assert change.reason == "changed outside podctl: image"
    assert [(f.path, f.before, f.after, f.drift) for f in change.fields] == [
        ("image", "runpod/pytorch:hacked", "runpod/pytorch:2.4", True)
    ]


def test_a_stopped_pod_resumes_at_its_price(sandbox: Sandbox) -> None:
    _, p = _plan(sandbox, then="stop")
    (change,) = p.changes
    assert (change.action, change.fields, change.cost_before, change.cost_after) == (
        Action.RESUME,
        (),
        0.0,
        0.69,
    )


def test_fingerprint_is_what_the_record_holds() -> None:
    assert record(SPEC).fingerprint == pod_fingerprint(replace(SPEC, protect=True))
