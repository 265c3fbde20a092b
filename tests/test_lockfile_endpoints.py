"""Endpoint records in the lockfile: older lockfiles read as before, new ones round-trip."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from reconciler.errors import LockfileError
from reconciler.lockfile import dumps, loads
from reconciler.model import EndpointRecord, Lockfile, PodRecord

OLD = """{
  "format_version": 1, "lineage": "l-1", "serial": 3, "stack": "demo",
  "pods": {"box": {"pod_id": "p1", "uid": "u1", "fingerprint": "f", "gpu_type_id": null,
                   "cloud": null, "created_at": null, "applied_at": null}},
  "jobs": {}, "intents": [], "host_keys": {}
}"""


def test_a_lockfile_from_before_endpoints_reads_with_none() -> None:
    lockfile = loads(OLD)
    assert lockfile.endpoints == {} and lockfile.pods["box"].pod_id == "p1"


def test_a_lockfile_without_endpoints_is_written_as_before() -> None:
    lockfile = Lockfile(stack="demo", pods={"box": PodRecord("p1", "u1", "f")})
    assert "endpoints" not in json.loads(dumps(lockfile))


def test_endpoint_records_round_trip() -> None:
    when = datetime(2026, 12, 7, 16, 0, tzinfo=UTC)
    record = EndpointRecord("ep1", "sha256:ab", 5, when, when, ("TOKEN",))
    lockfile = Lockfile(stack="demo", serial=2, endpoints={"scorer": record})
    text = dumps(lockfile)
    assert json.loads(text)["endpoints"]["scorer"] == {
        "endpoint_id": "ep1",
        "fingerprint": "sha256:ab",
        "workers_max": 5,
        "created_at": "2026-12-07T16:00:00+00:00",
        "applied_at": "2026-12-07T16:00:00+00:00",
        "secret_env": ["TOKEN"],
    }
    assert loads(text) == lockfile
    assert not lockfile.same_content(Lockfile(stack="demo", serial=2))


def test_a_broken_endpoint_record_is_refused_with_its_path() -> None:
    data = json.loads(OLD)
    data["endpoints"] = {"scorer": {"endpoint_id": 7}}
    with pytest.raises(LockfileError, match=r"endpoints\.scorer\.endpoint_id is not a string"):
        loads(json.dumps(data))
