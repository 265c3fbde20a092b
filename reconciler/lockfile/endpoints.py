"""Endpoint records in the lockfile: their JSON shape and the pure record helpers."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from reconciler.model import EndpointRecord, Lockfile

if TYPE_CHECKING:
    from reconciler.lockfile.codec import _Reader


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def dump_endpoints(lockfile: Lockfile) -> dict[str, Any]:
    """`{"endpoints": {...}}` when the stack has endpoint records, else nothing (a lockfile
    without endpoints is written exactly as before they existed)."""
    if not lockfile.endpoints:
        return {}
    return {
        "endpoints": {
            name: {
                "endpoint_id": r.endpoint_id,
                "fingerprint": r.fingerprint,
                "workers_max": r.workers_max,
                "created_at": _time(r.created_at),
                "applied_at": _time(r.applied_at),
                **({"secret_env": sorted(r.secret_env)} if r.secret_env else {}),
            }
            for name, r in sorted(lockfile.endpoints.items())
        }
    }


def load_endpoints(r: _Reader, value: object) -> dict[str, EndpointRecord]:
    """The endpoint records of a parsed lockfile (absent in older lockfiles: none)."""
    out: dict[str, EndpointRecord] = {}
    for name, raw in r.obj(value, "endpoints").items():
        where = f"endpoints.{name}"
        e = r.obj(raw, where)
        out[r.str_(name, "an endpoint name")] = EndpointRecord(
            endpoint_id=r.str_(e.get("endpoint_id"), f"{where}.endpoint_id"),
            fingerprint=r.str_(e.get("fingerprint", ""), f"{where}.fingerprint"),
            workers_max=r.int_(e.get("workers_max"), f"{where}.workers_max", optional=True),
            created_at=r.time(e.get("created_at"), f"{where}.created_at"),
            applied_at=r.time(e.get("applied_at"), f"{where}.applied_at"),
            secret_env=r.names(e.get("secret_env", []), f"{where}.secret_env"),
        )
    return out


def record_endpoint(lockfile: Lockfile, name: str, record: EndpointRecord) -> Lockfile:
    """After a create, update, adopt or import: the endpoint's record."""
    return replace(lockfile, endpoints={**lockfile.endpoints, name: record})


def forget_endpoint(lockfile: Lockfile, name: str) -> Lockfile:
    """After a delete (or `state rm`): drop the endpoint's record."""
    return replace(lockfile, endpoints={k: v for k, v in lockfile.endpoints.items() if k != name})


def with_endpoint_secrets(record: EndpointRecord, keys: Iterable[str]) -> EndpointRecord:
    names = tuple(sorted({*record.secret_env, *keys}))
    return record if names == record.secret_env else replace(record, secret_env=names)
