"""stale_reasons(): why a saved plan may no longer be applied, one sentence per reason."""

from __future__ import annotations

from reconciler.planner.spend import reached_note
from reconciler.plans import Change, Plan


def _kind(change: Change) -> str:
    return "endpoint" if change.address.startswith("endpoint.") else "pod"


def _status(change: Change) -> str:
    o = change.observed
    if o is None or o.pod_id is None:
        return f"no {_kind(change)}"
    return f"{_kind(change)} {o.pod_id}" + (f" ({o.status})" if o.status else "")


def stale_reasons(saved: Plan, fresh: Plan) -> tuple[str, ...]:
    """Empty when the saved plan may be applied; else why not (lockfile, spec, pods moved)."""
    reasons: list[str] = []
    if saved.lineage != fresh.lineage:
        reasons.append(
            f"the lockfile's lineage changed since the plan was made "
            f"({saved.lineage or 'none'} -> {fresh.lineage or 'none'})"
        )
    elif saved.serial != fresh.serial:
        reasons.append(
            f"the lockfile changed since the plan was made (serial {saved.serial} -> "
            f"{fresh.serial})"
        )
    if saved.stack != fresh.stack:
        reasons.append(f"the plan is for stack {saved.stack}, the spec is stack {fresh.stack}")
    if saved.spec_digest != fresh.spec_digest:
        reasons.append("the spec (or a from_env value) changed since the plan was made")
    if saved.targets != fresh.targets:
        reasons.append(
            f"the plan was made for targets {list(saved.targets) or 'all'}, "
            f"not {list(fresh.targets) or 'all'}"
        )
    reached = reached_note(fresh.notes)
    if reached and not reached_note(saved.notes):
        reasons.append(f"{reached} since the plan was made")
    by_address = {c.address: c for c in fresh.changes}
    for change in saved.actionable:
        now = by_address.get(change.address)
        if now is None:
            reasons.append(f"{change.address}: the plan would no longer touch it")
        elif change.fingerprint is not None and now.fingerprint != change.fingerprint:
            reasons.append(
                f"{change.address}: the job changed since the plan was made (its command, "
                "env, workdir, uploaded files or image)"
            )
        elif now.observed != change.observed:
            before, after = _status(change), _status(now)
            what = f"{before} -> {after}" if before != after else f"{after} was modified"
            reasons.append(
                f"{change.address}: the {_kind(change)} changed since the plan was made ({what})"
            )
    saved_set = {(c.address, c.action) for c in saved.actionable}
    fresh_set = {(c.address, c.action) for c in fresh.actionable}
    if saved_set != fresh_set:
        added = sorted(f"{a.value} {addr}" for addr, a in fresh_set - saved_set)
        dropped = sorted(f"{a.value} {addr}" for addr, a in saved_set - fresh_set)
        parts = ([f"it would now also {', '.join(added)}"] if added else []) + (
            [f"it would no longer {', '.join(dropped)}"] if dropped else []
        )
        reasons.append("a fresh plan differs: " + "; ".join(parts))
    return tuple(reasons)
