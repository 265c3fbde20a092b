"""A job's fingerprint: one hash per input (run, env, workdir, upload, image) and their sum."""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Mapping

from reconciler.model import EnvValue, JobSpec, PodSpec, SecretRef

# PBKDF2 rounds for a from_env value: a plan or lockfile must not make guessing a weak secret cheap
SECRET_HASH_ROUNDS = 20_000
FINGERPRINT_HEX = 24  # the run folder on the pod is named by it: short, still collision-free
INPUT_NAMES = ("run", "env", "workdir", "upload", "image")


def sha(value: object) -> str:
    """sha256 hex of a JSON-able value (stable key order)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@functools.lru_cache(maxsize=256)
def secret_hash(name: str, value: str) -> str:
    """A from_env value as a slow hash salted by its variable name; the value is never kept."""
    salt = f"podctl-from-env:{name}".encode()
    return hashlib.pbkdf2_hmac("sha256", value.encode(), salt, SECRET_HASH_ROUNDS).hex()[:32]


def env_salted(env: Mapping[str, EnvValue], secrets: Mapping[str, str]) -> dict[str, object]:
    """Env with each from_env value replaced by its variable name and salted hash."""
    out: dict[str, object] = {}
    for key, value in sorted(env.items()):
        if isinstance(value, SecretRef):
            known = secrets.get(value.from_env)
            digest = "" if known is None else secret_hash(value.from_env, known)
            out[key] = {"from_env": value.from_env, "hash": digest}
        else:
            out[key] = value
    return out


def job_inputs(
    job: JobSpec,
    pod: PodSpec | None,
    *,
    secrets: Mapping[str, str],
    upload_digest: str = "",
) -> dict[str, str]:
    """One short hash per input of a job; `upload_digest` hashes the local upload contents."""
    uploads = [[t.source, t.target] for t in job.upload]
    return {
        "run": sha(job.run)[:16],
        "env": sha(env_salted(job.env, secrets))[:16],
        "workdir": sha(job.workdir)[:16],
        "upload": sha([uploads, upload_digest])[:16],
        "image": sha(pod.image if pod is not None else None)[:16],
    }


def job_fingerprint(inputs: Mapping[str, str]) -> str:
    """The job's fingerprint (hex): names its run folder on the pod and its lockfile record."""
    return sha(dict(inputs))[:FINGERPRINT_HEX]


def changed_inputs(before: Mapping[str, str], after: Mapping[str, str]) -> tuple[str, ...]:
    """The inputs whose hash differs, in INPUT_NAMES order (empty when `before` is unknown)."""
    if not before:
        return ()
    return tuple(n for n in INPUT_NAMES if before.get(n) != after.get(n))
