"""`endpoints:` in the spec: defaults filled, and each mistake reported at its file:line:col."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.model import CpuFlavor, EndpointState, Flashboot, SecretRef
from tests.spec_helpers import load, problems_of, write

HEAD = """\
version: 1
stack: demo
endpoints:
  scorer:
"""


def test_an_endpoint_gets_podctls_explicit_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, HEAD + "    image: org/scorer:v1\n    gpu: {pools: [ADA_24]}\n")
    spec = load([path]).endpoints["scorer"]
    assert spec.image == "org/scorer:v1"
    assert spec.gpu_pools == ("ADA_24",) and spec.gpu_count == 1
    assert (spec.workers_min, spec.workers_max) == (0, 3)
    assert spec.idle_timeout_s == 5 and spec.queue_delay_s == 4.0 and spec.request_count is None
    assert spec.execution_timeout_s == 600
    assert spec.flashboot is Flashboot.OFF
    assert spec.state is EndpointState.PRESENT and not spec.protect
    assert spec.disk_gb == 20 and spec.address == "endpoint.scorer"


def test_every_field_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", "tok-123456")
    path = write(
        tmp_path,
        HEAD
        + """\
    image: org/scorer:v2
    cpu: [{flavor: cpu3c, vcpu: 4}]
    workers: {min: 1, max: 7}
    scaling: {request_count: 3}
    execution_timeout: 1h
    flashboot: priority
    env: {MODE: fast, HF_TOKEN: {from_env: HF_TOKEN}}
    network_volumes: [vol1]
    data_centers: [US-KS-2, EU-RO-1]
    disk_gb: 40
    state: absent
    protect: true
""",
    )
    spec = load([path]).endpoints["scorer"]
    assert spec.cpu == (CpuFlavor("cpu3c", 4),) and spec.is_cpu
    assert (spec.workers_min, spec.workers_max) == (1, 7)
    assert spec.request_count == 3 and spec.queue_delay_s is None and spec.idle_timeout_s is None
    assert spec.execution_timeout_s == 3600
    assert spec.flashboot is Flashboot.PRIORITY
    assert spec.env == {"MODE": "fast", "HF_TOKEN": SecretRef("HF_TOKEN")}
    assert spec.network_volumes == ("vol1",) and spec.data_centers == ("US-KS-2", "EU-RO-1")
    assert spec.state is EndpointState.ABSENT and spec.protect


@pytest.mark.parametrize(
    ("body", "where", "path", "message"),
    [
        (
            "    gpu: {pools: [ADA_24]}\n",
            "4:3",
            "endpoints.scorer",
            "endpoint 'scorer' has no image",
        ),
        (
            "    image: a:1\n",
            "4:3",
            "endpoints.scorer",
            "endpoint 'scorer' sets neither gpu nor cpu",
        ),
        (
            "    image: a:1\n    gpu: {pools: [ADA_24]}\n    cpu: [{flavor: c, vcpu: 2}]\n",
            "4:3",
            "endpoints.scorer",
            "endpoint 'scorer' sets both gpu and cpu",
        ),
        (
            "    image: a:1\n    gpu: {pools: [ADA_24]}\n    workers: {min: 4, max: 2}\n",
            "7:20",
            "endpoints.scorer.workers.min",
            "workers.min (4) is more than workers.max (2)",
        ),
        (
            "    image: a:1\n    gpu: {pools: [ADA_24]}\n    idle_timeout: 2h\n",
            "7:19",
            "endpoints.scorer.idle_timeout",
            "idle_timeout '2h' is outside 1s to 1h, RunPod's range",
        ),
        (
            "    image: a:1\n    gpu: {pools: [ADA_24]}\n    execution_timeout: 2s\n",
            "7:24",
            "endpoints.scorer.execution_timeout",
            "execution_timeout '2s' is outside 5s to 7d, RunPod's range",
        ),
        (
            "    image: a:1\n    cpu: [{flavor: c, vcpu: 6}]\n",
            "6:29",
            "endpoints.scorer.cpu[0].vcpu",
            "vcpu 6 is not a power of two (2, 4, 8...)",
        ),
        (
            "    image: a:1\n    gpu: {pools: [ADA_24]}\n    idle_timeout: 5s\n"
            "    scaling: {request_count: 2}\n",
            "7:5",
            "endpoints.scorer.idle_timeout",
            "idle_timeout does not apply with `scaling: {request_count}`: RunPod refuses it on "
            "queue endpoints scaling on request count",
        ),
        (
            "    image: a:1\n    gpu: {pools: [ADA_24]}\n    env: {PODCTL_ENDPOINT: x}\n",
            "7:11",
            "endpoints.scorer.env.PODCTL_ENDPOINT",
            "'PODCTL_ENDPOINT' uses the prefix PODCTL_, reserved for podctl",
        ),
        (
            "    image: a:1\n    gpu: {pools: [ADA_25]}\n",
            "6:19",
            "endpoints.scorer.gpu.pools[0]",
            None,
        ),
        (
            "    image: a:1\n    gpu: {pools: [ADA_24]}\n    workers: {maximum: 2}\n",
            "7:15",
            "endpoints.scorer.workers.maximum",
            "unknown key 'maximum'",
        ),
    ],
)
def test_each_mistake_is_reported_where_it_is(
    tmp_path: Path, body: str, where: str, path: str, message: str | None
) -> None:
    spec = write(tmp_path, HEAD + body)
    problems = [p for p in problems_of([spec]) if p.severity == "error"]
    assert len(problems) == 1, problems
    problem = problems[0]
    assert f"{problem.line}:{problem.col}" == where
    assert problem.path == path
    if message is not None:
        assert problem.message == message


def test_an_unset_from_env_of_an_endpoint_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NOPE_SECRET", raising=False)
    spec = write(
        tmp_path,
        HEAD + "    image: a:1\n    gpu: {pools: [ADA_24]}\n"
        "    env: {T: {from_env: NOPE_SECRET}}\n",
    )
    (problem,) = problems_of([spec])
    assert problem.path == "endpoints.scorer.env.T.from_env"
    assert problem.message == "the environment variable NOPE_SECRET is not set"


def test_an_endpoint_declared_in_two_files_is_an_error(tmp_path: Path) -> None:
    body = HEAD + "    image: a:1\n    gpu: {pools: [ADA_24]}\n"
    first, second = write(tmp_path, body, "a.yaml"), write(tmp_path, body, "b.yaml")
    problems = problems_of([first, second])
    assert any("endpoint 'scorer' is declared twice" in p.message for p in problems)
