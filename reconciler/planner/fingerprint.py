"""Stable hashes: of a desired pod (fingerprint), of the whole spec (digest), of an actual pod."""

from __future__ import annotations

from collections.abc import Mapping

from reconciler.jobs.fingerprint import env_salted, secret_hash, sha
from reconciler.model import DesiredState, JobSpec, LifetimeAction, PodSpec
from reconciler.planner.fields import fingerprint_shape


def pod_fingerprint(spec: PodSpec) -> str:
    """Stable hash of what a desired pod looks like; secrets by variable name only.

    Only the fields that shape the pod count: changing `state`, `protect`, `after_jobs`,
    `on_resume_failure` or `max_lifetime` does not move it.
    """
    return "sha256:" + sha(fingerprint_shape(spec))[:32]


def _job_shape(job: JobSpec, secrets: Mapping[str, str]) -> dict[str, object]:
    return {
        "pod": job.pod,
        "run": job.run,
        "env": env_salted(job.env, secrets),
        "workdir": job.workdir,
        "upload": [[t.source, t.target] for t in job.upload],
        "download": [[t.source, t.target] for t in job.download],
        "needs": list(job.needs),
        "timeout_s": job.timeout_s,
        "retries": job.retries,
        "rerun": job.rerun.value,
        "parallel": job.parallel,
    }


def spec_digest(desired: DesiredState, secrets: Mapping[str, str]) -> str:
    """Hash of everything the spec asks for; a from_env value enters only as a salted hash."""
    pods: dict[str, object] = {}
    for name, spec in sorted(desired.pods.items()):
        shape = fingerprint_shape(spec)
        shape["env"] = env_salted(spec.env, secrets)
        shape.update(
            state=spec.state.value,
            max_lifetime_s=spec.max_lifetime_s,
            after_jobs=spec.after_jobs.value,
            on_resume_failure=spec.on_resume_failure.value,
            protect=spec.protect,
        )
        if spec.lifetime_action is not LifetimeAction.TERMINATE:  # older digests stay valid
            shape["lifetime_action"] = spec.lifetime_action.value
        pods[name] = shape
    jobs = {name: _job_shape(job, secrets) for name, job in sorted(desired.jobs.items())}
    return "sha256:" + sha({"stack": desired.stack, "pods": pods, "jobs": jobs})[:32]


def view_digest(
    view: Mapping[str, object],
    secret_values: frozenset[str] = frozenset(),
    secret_keys: frozenset[str] = frozenset(),
) -> str:
    """Hash of the actual fields the planner compared (Observed.digest).

    Env values equal to a known from_env value, and those of `secret_keys` (env keys podctl
    once filled from from_env), enter as their salted slow hash, never raw.
    """
    masked = {
        k: {"secret": secret_hash(k, v)}
        if isinstance(v, str) and (v in secret_values or k.removeprefix("env.") in secret_keys)
        else v
        for k, v in view.items()
    }
    return sha(masked)[:16]
