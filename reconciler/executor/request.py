"""A desired pod -> the PodCreate a backend is asked for, per fallback placement (FIELDS)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from reconciler.errors import PodctlError
from reconciler.model import MARKER_CREATED, CloudType, PodMarkers, PodSpec, SecretRef
from reconciler.planner.fields import create_input
from reconciler.plans import Placement
from reconciler.podops import PodCreate

PUBLIC_KEY_ENV = "PUBLIC_KEY"  # RunPod images add this to root's authorized_keys


def resolve_env(spec: PodSpec, secrets: Mapping[str, str]) -> dict[str, str]:
    """The pod's env with each `from_env` replaced by its value (the caller checked they exist)."""
    env: dict[str, str] = {}
    for key, value in spec.env.items():
        if isinstance(value, SecretRef):
            if value.from_env not in secrets:
                raise PodctlError(
                    f"{spec.address}: env {key} reads ${value.from_env}, which is not set; "
                    f"export {value.from_env} and run again."
                )
            env[key] = secrets[value.from_env]
        else:
            env[key] = value
    return env


def pod_env(
    spec: PodSpec,
    *,
    stack: str,
    uid: str,
    secrets: Mapping[str, str],
    public_key: str | None = None,
    created: str | None = None,
) -> dict[str, str]:
    """The env a podctl pod carries: the spec's, plus the ownership markers (and PUBLIC_KEY)."""
    env = resolve_env(spec, secrets)
    env.update(PodMarkers(stack=stack, pod=spec.name, uid=uid).as_env())
    if created:
        env[MARKER_CREATED] = created
    if public_key:
        env[PUBLIC_KEY_ENV] = public_key
    return env


def default_placements(spec: PodSpec) -> tuple[Placement, ...]:
    """The fallback chain when the plan has none: each type on the first cloud, then community."""
    clouds = {
        CloudType.SECURE: (CloudType.SECURE,),
        CloudType.COMMUNITY: (CloudType.COMMUNITY,),
        CloudType.ALL: (CloudType.SECURE, CloudType.COMMUNITY),
    }[spec.cloud]
    if spec.cpu_flavor is not None:  # a CPU pod: its flavor, on secure cloud
        return (Placement(spec.cpu_flavor, CloudType.SECURE),)
    return tuple(Placement(gpu, cloud) for cloud in clouds for gpu in spec.gpu_types)


def create_request(
    spec: PodSpec,
    placement: Placement,
    *,
    stack: str,
    uid: str,
    secrets: Mapping[str, str],
    public_key: str | None = None,
    now: datetime,
) -> PodCreate:
    """What to ask RunPod for: name `<stack>-<pod>`, markers, spot bid...

    `terminateAfter` is sent for `max_lifetime`, but RunPod accepts it and never acts on it
    (runpodctl PR #330): nothing may rely on it.
    """
    terminate_after = (
        now + timedelta(seconds=spec.max_lifetime_s) if spec.max_lifetime_s is not None else None
    )
    return PodCreate(
        name=f"{stack}-{spec.name}",
        gpu_type_id=placement.gpu_type_id,
        cloud=placement.cloud,
        env=pod_env(
            spec,
            stack=stack,
            uid=uid,
            secrets=secrets,
            public_key=public_key,
            created=now.isoformat(timespec="seconds"),
        ),
        terminate_after=terminate_after,
        **create_input(spec),
    )
