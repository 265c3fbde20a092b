"""The lockfile's JSON format: dumps, and loads that validates every field. Pure, stdlib only."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from reconciler.errors import LockfileError
from reconciler.lockfile.endpoints import dump_endpoints, load_endpoints
from reconciler.model import (
    LOCKFILE_FORMAT_VERSION,
    CloudType,
    CreateIntent,
    JobRecord,
    JobStatus,
    Lockfile,
    PodRecord,
    WatchdogArming,
)

RECOVERY_HINT = (
    "podctl will not overwrite it. To recover, run `podctl state rebuild -f SPEC`: it moves the "
    "file aside and rebuilds it from the PODCTL_* markers on the pods (podctl adopts them again); "
    "or restore it from version control or a backup."
)


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _pod(r: PodRecord) -> dict[str, Any]:
    return {
        "pod_id": r.pod_id,
        "uid": r.uid,
        "fingerprint": r.fingerprint,
        "gpu_type_id": r.gpu_type_id,
        "cloud": r.cloud.value if r.cloud else None,
        "created_at": _time(r.created_at),
        "applied_at": _time(r.applied_at),
        **({"secret_env": sorted(r.secret_env)} if r.secret_env else {}),
        **({"stopped_at": _time(r.stopped_at)} if r.stopped_at else {}),
        **(
            {
                "watchdog": {
                    "config": r.watchdog.config,
                    "container_started": _time(r.watchdog.container_started),
                    "status_change": r.watchdog.status_change,
                }
            }
            if r.watchdog
            else {}
        ),
    }


def _job(r: JobRecord) -> dict[str, Any]:
    return {
        "fingerprint": r.fingerprint,
        "pod_id": r.pod_id,
        "status": r.status.value,
        "exit_code": r.exit_code,
        "started_at": _time(r.started_at),
        "finished_at": _time(r.finished_at),
        "inputs": dict(sorted(r.inputs.items())),
        "message": r.message,
    }


class EncodeCache:
    """The JSON line of each record last encoded, reused while the record is the same object.

    A store that rewrites a large lockfile after a few changes encodes only those records.
    """

    def __init__(self) -> None:
        self._lines: dict[tuple[str, str], tuple[object, str]] = {}

    def line(self, section: str, name: str, record: object, encode: Any) -> str:
        key = (section, name)
        hit = self._lines.get(key)
        if hit is not None and hit[0] is record:
            return hit[1]
        text = f"    {_encode(name)}: {_encode(encode(record))}"
        self._lines[key] = (record, text)
        return text

    def keep_only(self, keys: set[tuple[str, str]]) -> None:
        for key in [k for k in self._lines if k not in keys]:
            del self._lines[key]


_encode = json.JSONEncoder(ensure_ascii=True).encode  # the C encoder (no indent)


def _section(
    section: str, records: dict[str, Any], encode: Any, cache: EncodeCache
) -> tuple[str, list[tuple[str, str]]]:
    keys = [(section, name) for name in sorted(records)]
    lines = [cache.line(section, name, records[name], encode) for _, name in keys]
    body = "{\n" + ",\n".join(lines) + "\n  }" if lines else "{}"
    return f"  {_encode(section)}: {body}", keys


def dumps(lockfile: Lockfile, cache: EncodeCache | None = None) -> str:
    """The lockfile's JSON text: stable key order and one line per record, so diffs in version
    control stay small; encoded in C, and with `cache` only the records that changed."""
    cache = cache if cache is not None else EncodeCache()
    pods, pod_keys = _section("pods", dict(lockfile.pods), _pod, cache)
    jobs, job_keys = _section("jobs", dict(lockfile.jobs), _job, cache)
    cache.keep_only({*pod_keys, *job_keys})
    intents = [
        "    " + _encode({"stack": i.stack, "pod": i.pod, "uid": i.uid, "since": _time(i.since)})
        for i in lockfile.intents
    ]
    keys = [
        f"    {_encode(pod_id)}: {_encode(list(keys))}"
        for pod_id, keys in sorted(lockfile.host_keys.items())
    ]
    parts = [
        f'  "format_version": {_encode(lockfile.format_version)}',
        f'  "lineage": {_encode(lockfile.lineage)}',
        f'  "serial": {_encode(lockfile.serial)}',
        f'  "stack": {_encode(lockfile.stack)}',
        pods,
        jobs,
        '  "intents": ' + ("[\n" + ",\n".join(intents) + "\n  ]" if intents else "[]"),
        '  "host_keys": ' + ("{\n" + ",\n".join(keys) + "\n  }" if keys else "{}"),
    ]
    endpoints = dump_endpoints(lockfile).get("endpoints")
    if endpoints:  # absent without endpoint records: such a lockfile reads as before them
        lines = [f"    {_encode(name)}: {_encode(record)}" for name, record in endpoints.items()]
        parts.append('  "endpoints": {\n' + ",\n".join(lines) + "\n  }")
    return "{\n" + ",\n".join(parts) + "\n}\n"


class _Reader:
    """Typed access to the parsed JSON; every mismatch is a LockfileError with the path."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, what: str) -> LockfileError:
        return LockfileError(
            f"The lockfile {self.source} is corrupt: {where} {what}. {RECOVERY_HINT}"
        )

    def obj(self, value: object, where: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(where, "is not an object")
        return value

    def str_(self, value: object, where: str, *, optional: bool = False) -> Any:
        if value is None and optional:
            return None
        if not isinstance(value, str):
            raise self.fail(where, "is not a string")
        return value

    def int_(self, value: object, where: str, *, optional: bool = False) -> Any:
        if value is None and optional:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(where, "is not an integer")
        return value

    def names(self, value: object, where: str) -> tuple[str, ...]:
        if not isinstance(value, list):
            raise self.fail(where, "is not a list")
        return tuple(sorted({self.str_(v, f"{where}[]") for v in value}))

    def time(self, value: object, where: str, *, optional: bool = True) -> datetime | None:
        text = self.str_(value, where, optional=optional)
        if text is None:
            return None
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise self.fail(where, "is not an ISO 8601 time") from None
        # podctl writes UTC; a hand-edited time without a zone is read as UTC, so that times
        # with and without one still compare
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed

    def enum(self, enum_type: Any, value: object, where: str, *, optional: bool = False) -> Any:
        text = self.str_(value, where, optional=optional)
        if text is None:
            return None
        try:
            return enum_type(text)
        except ValueError:
            raise self.fail(where, f"has an unknown value {text!r}") from None


def _watchdog(r: _Reader, value: object, where: str) -> WatchdogArming | None:
    if value is None:
        return None
    w = r.obj(value, where)
    started = r.time(w.get("container_started"), f"{where}.container_started", optional=False)
    assert started is not None
    config = r.str_(w.get("config"), f"{where}.config")
    change = r.str_(w.get("status_change", ""), f"{where}.status_change")
    return WatchdogArming(config=config, container_started=started, status_change=change)


def loads(text: str, source: str = "lockfile") -> Lockfile:
    """Parse and validate a lockfile's JSON text; LockfileError (with a recovery hint) if bad."""
    r = _Reader(source)
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise r.fail("its JSON", f"does not parse ({exc})") from None
    except RecursionError:
        raise r.fail("its JSON", "is nested too deeply to be a lockfile") from None
    top = r.obj(raw, "the document")
    version = top.get("format_version")
    if version != LOCKFILE_FORMAT_VERSION:
        newer = isinstance(version, int) and version > LOCKFILE_FORMAT_VERSION
        why = "was written by a newer podctl: upgrade podctl" if newer else "has no known format"
        raise LockfileError(
            f"The lockfile {source} has format_version {version!r}, which this podctl "
            f"(format {LOCKFILE_FORMAT_VERSION}) cannot read; it {why}. It was left untouched."
        )
    pods = {
        r.str_(name, "a pod name"): PodRecord(
            pod_id=r.str_(p.get("pod_id"), f"pods.{name}.pod_id"),
            uid=r.str_(p.get("uid"), f"pods.{name}.uid"),
            fingerprint=r.str_(p.get("fingerprint"), f"pods.{name}.fingerprint"),
            gpu_type_id=r.str_(p.get("gpu_type_id"), f"pods.{name}.gpu_type_id", optional=True),
            cloud=r.enum(CloudType, p.get("cloud"), f"pods.{name}.cloud", optional=True),
            created_at=r.time(p.get("created_at"), f"pods.{name}.created_at"),
            applied_at=r.time(p.get("applied_at"), f"pods.{name}.applied_at"),
            secret_env=r.names(p.get("secret_env", []), f"pods.{name}.secret_env"),
            stopped_at=r.time(p.get("stopped_at"), f"pods.{name}.stopped_at"),
            watchdog=_watchdog(r, p.get("watchdog"), f"pods.{name}.watchdog"),
        )
        for name, value in r.obj(top.get("pods", {}), "pods").items()
        for p in [r.obj(value, f"pods.{name}")]
    }
    jobs = {
        r.str_(name, "a job name"): JobRecord(
            fingerprint=r.str_(j.get("fingerprint"), f"jobs.{name}.fingerprint"),
            pod_id=r.str_(j.get("pod_id"), f"jobs.{name}.pod_id"),
            status=r.enum(JobStatus, j.get("status"), f"jobs.{name}.status"),
            exit_code=r.int_(j.get("exit_code"), f"jobs.{name}.exit_code", optional=True),
            started_at=r.time(j.get("started_at"), f"jobs.{name}.started_at"),
            finished_at=r.time(j.get("finished_at"), f"jobs.{name}.finished_at"),
            inputs={
                r.str_(k, f"jobs.{name}.inputs"): r.str_(v, f"jobs.{name}.inputs.{k}")
                for k, v in r.obj(j.get("inputs", {}), f"jobs.{name}.inputs").items()
            },
            message=r.str_(j.get("message", ""), f"jobs.{name}.message"),
        )
        for name, value in r.obj(top.get("jobs", {}), "jobs").items()
        for j in [r.obj(value, f"jobs.{name}")]
    }
    raw_intents = top.get("intents", [])
    if not isinstance(raw_intents, list):
        raise r.fail("intents", "is not a list")
    intents = []
    for index, value in enumerate(raw_intents):
        i = r.obj(value, f"intents[{index}]")
        since = r.time(i.get("since"), f"intents[{index}].since", optional=False)
        assert since is not None
        intents.append(
            CreateIntent(
                stack=r.str_(i.get("stack"), f"intents[{index}].stack"),
                pod=r.str_(i.get("pod"), f"intents[{index}].pod"),
                uid=r.str_(i.get("uid"), f"intents[{index}].uid"),
                since=since,
            )
        )
    host_keys: dict[str, tuple[str, ...]] = {}
    for pod_id, keys in r.obj(top.get("host_keys", {}), "host_keys").items():
        if not isinstance(keys, list):
            raise r.fail(f"host_keys.{pod_id}", "is not a list")
        host_keys[pod_id] = tuple(r.str_(k, f"host_keys.{pod_id}[]") for k in keys)
    return Lockfile(
        stack=r.str_(top.get("stack", ""), "stack"),
        lineage=r.str_(top.get("lineage", ""), "lineage"),
        serial=r.int_(top.get("serial", 0), "serial"),
        format_version=version,
        pods=pods,
        jobs=jobs,
        intents=tuple(intents),
        host_keys=host_keys,
        endpoints=load_endpoints(r, top.get("endpoints", {})),
    )
