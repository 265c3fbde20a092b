"""The endpoint executor against a fake control plane: what it sends, what it records."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from reconciler.backends.runpod_rest.endpoints import create_body, parse_endpoint, update_body
from reconciler.errors import ApiError, TransientApiError
from reconciler.executor.endpoints import execute_endpoints, without_endpoints
from reconciler.model import (
    ActualEndpoint,
    ActualState,
    DesiredState,
    EndpointHealth,
    EndpointRecord,
    EndpointSpec,
    Lockfile,
)
from reconciler.planner import plan
from reconciler.planner.endpoints import endpoint_fingerprint
from reconciler.plans import Action, Change, Outcome
from reconciler.sandbox.rest.api import Problem
from reconciler.sandbox.serverless import endpoints as sandbox
from tests.spec_helpers import load, write

SPEC = """\
version: 1
stack: demo
endpoints:
  scorer:
    image: org/scorer:v1
    gpu: {pools: [ADA_24]}
    workers: {max: 4}
    env: {TOKEN: {from_env: EX_TOKEN}}
"""
SECRET = "tok-executor-55aa"


class FakeApi:
    """RunPod's control plane as the sandbox validates it, in memory; counts the calls."""

    def __init__(self) -> None:
        self.stored: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[str, dict[str, Any] | str]] = []
        self.lose_next_create = False
        self.fail_next_create = False

    def view(self, e: dict[str, Any]) -> ActualEndpoint:
        return parse_endpoint(sandbox.view(e, "http://x/serverless/v2"))

    async def list_endpoints(self) -> dict[str, ActualEndpoint]:
        return {i: self.view(e) for i, e in self.stored.items()}

    async def get_endpoint(self, endpoint_id: str) -> ActualEndpoint | None:
        found = self.stored.get(endpoint_id)
        return self.view(found) if found is not None else None

    async def health(self, endpoint_id: str) -> EndpointHealth | None:
        return None  # the executor never asks

    @property
    def own_requests(self) -> int:
        return 0

    async def create_endpoint(
        self, name: str, spec: EndpointSpec, env: Mapping[str, str]
    ) -> ActualEndpoint:
        body = create_body(name, spec, env)
        self.calls.append(("create", body))
        if self.fail_next_create:
            self.fail_next_create = False
            raise ApiError("RunPod CreateEndpoint: HTTP 400: no")
        made = sandbox.create(body)
        self.stored[made["id"]] = made
        if self.lose_next_create:
            self.lose_next_create = False
            raise TransientApiError("connection reset", maybe_processed=True)
        return self.view(made)

    async def update_endpoint(
        self,
        endpoint_id: str,
        name: str,
        spec: EndpointSpec,
        env: Mapping[str, str],
        *,
        container: bool,
    ) -> ActualEndpoint:
        body = update_body(name, spec, env, container=container)
        self.calls.append(("update", body))
        try:
            self.stored[endpoint_id] = sandbox.update(self.stored[endpoint_id], body)
        except Problem as exc:  # pragma: no cover - a body the sandbox refuses fails the test
            raise AssertionError(exc) from None
        return self.view(self.stored[endpoint_id])

    async def delete_endpoint(self, endpoint_id: str) -> bool:
        self.calls.append(("delete", endpoint_id))
        return self.stored.pop(endpoint_id, None) is not None


class MemoryJournal:
    def __init__(self, lockfile: Lockfile | None = None) -> None:
        self.lockfile = lockfile or Lockfile(stack="demo")
        self.writes = 0

    def endpoint_recorded(self, name: str, record: EndpointRecord) -> None:
        self.lockfile = dataclasses.replace(
            self.lockfile, endpoints={**self.lockfile.endpoints, name: record}
        )
        self.writes += 1

    def endpoint_forgotten(self, name: str, endpoint_id: str | None) -> None:
        kept = {k: v for k, v in self.lockfile.endpoints.items() if k != name}
        self.lockfile = dataclasses.replace(self.lockfile, endpoints=kept)
        self.writes += 1


@pytest.fixture(autouse=True)
def _token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EX_TOKEN", SECRET)


def desired(tmp_path: Path, text: str = SPEC) -> DesiredState:
    return load([write(tmp_path, text)])


async def converge(d: DesiredState, api: FakeApi, journal: MemoryJournal, destroy: bool = False):
    actual = ActualState(pods={}, endpoints=await api.list_endpoints())
    p = plan(d, actual, journal.lockfile, offers={}, secrets={"EX_TOKEN": SECRET}, destroy=destroy)
    results = await execute_endpoints(
        p, d, api, journal, secrets={"EX_TOKEN": SECRET}, actual=actual, destroy=destroy
    )
    return p, results


def test_create_records_then_nothing_more(tmp_path: Path) -> None:
    d, api, journal = desired(tmp_path), FakeApi(), MemoryJournal()
    _, results = asyncio.run(converge(d, api, journal))
    assert [(r.action, r.outcome) for r in results] == [(Action.CREATE, Outcome.DONE)]
    (only,) = api.stored.values()
    assert only["env"]["TOKEN"] == SECRET and only["env"]["PODCTL_ENDPOINT"] == "scorer"
    record = journal.lockfile.endpoints["scorer"]
    assert record.endpoint_id == only["id"] and record.workers_max == 4
    assert record.fingerprint == endpoint_fingerprint(d.endpoints["scorer"])
    assert record.secret_env == ("TOKEN",)
    calls, writes = len(api.calls), journal.writes
    second, results = asyncio.run(converge(d, api, journal))
    assert not second.has_changes and results == []
    assert (len(api.calls), journal.writes) == (calls, writes)  # no mutation, no write


def test_restoring_workers_max_sends_no_container_field(tmp_path: Path) -> None:
    d, api, journal = desired(tmp_path), FakeApi(), MemoryJournal()
    asyncio.run(converge(d, api, journal))
    (made,) = api.stored.values()
    api.stored[made["id"]] = sandbox.idle_scale_down(made, 3)
    p, _ = asyncio.run(converge(d, api, journal))
    assert [c.action for c in p.actionable] == [Action.UPDATE]
    kind, body = api.calls[-1]
    assert kind == "update" and isinstance(body, dict)
    assert body["workers"] == {"min": 0, "max": 4, "idleTimeout": 5}
    assert not {"image", "env", "disk", "args", "registry", "ports"} & set(body)
    assert api.stored[made["id"]]["workers"]["max"] == 4


def test_an_image_change_sends_the_container_with_the_markers(tmp_path: Path) -> None:
    api, journal = FakeApi(), MemoryJournal()
    asyncio.run(converge(desired(tmp_path), api, journal))
    asyncio.run(converge(desired(tmp_path, SPEC.replace(":v1", ":v2")), api, journal))
    kind, body = api.calls[-1]
    assert kind == "update" and isinstance(body, dict) and body["image"] == "org/scorer:v2"
    assert body["env"] == {"TOKEN": SECRET, "PODCTL_STACK": "demo", "PODCTL_ENDPOINT": "scorer"}


def test_a_lost_create_answer_is_found_by_markers_and_recorded(tmp_path: Path) -> None:
    d, api, journal = desired(tmp_path), FakeApi(), MemoryJournal()
    api.lose_next_create = True
    _, results = asyncio.run(converge(d, api, journal))
    assert [r.outcome for r in results] == [Outcome.DONE]
    assert [k for k, _ in api.calls] == ["create"]  # not sent twice
    assert journal.lockfile.endpoints["scorer"].endpoint_id == next(iter(api.stored))


def test_destroy_deletes_and_forgets(tmp_path: Path) -> None:
    d, api, journal = desired(tmp_path), FakeApi(), MemoryJournal()
    asyncio.run(converge(d, api, journal))
    _, results = asyncio.run(converge(d, api, journal, destroy=True))
    assert [(r.action, r.outcome) for r in results] == [(Action.DELETE, Outcome.DONE)]
    assert api.stored == {} and journal.lockfile.endpoints == {}


def test_a_record_of_an_endpoint_gone_and_unwanted_is_forgotten(tmp_path: Path) -> None:
    empty = desired(tmp_path, "version: 1\nstack: demo\n")
    record = EndpointRecord(endpoint_id="gone1", fingerprint="x")
    journal = MemoryJournal(Lockfile(stack="demo", endpoints={"old": record}))
    asyncio.run(converge(empty, FakeApi(), journal))
    assert journal.lockfile.endpoints == {}


def test_a_failed_endpoint_skips_what_needs_it(tmp_path: Path) -> None:
    d, api, journal = desired(tmp_path), FakeApi(), MemoryJournal()
    api.fail_next_create = True
    p, results = asyncio.run(converge(d, api, journal))
    assert [(r.outcome, r.message) for r in results] == [
        (Outcome.FAILED, "RunPod CreateEndpoint: HTTP 400: no")
    ]
    assert "scorer" not in journal.lockfile.endpoints
    job = Change("job.batch", Action.RUN_JOB, "new", pod="", depends_on=("endpoint.scorer",))
    after = Change("job.after", Action.RUN_JOB, "new", pod="", depends_on=("job.batch",))
    other = Change("job.other", Action.RUN_JOB, "new", pod="")
    extended = dataclasses.replace(p, changes=(*p.changes, job, after, other))
    rest, skipped = without_endpoints(extended, ["endpoint.scorer"])
    assert [c.address for c in rest.changes] == ["job.other"]
    assert [c.address for c in skipped] == ["job.batch", "job.after"]
