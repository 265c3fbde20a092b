"""The reconcile loop: rounds of `apply -y` (the same code path), status per round, backoff.

Several loops may run for one stack (replicas on other hosts): only the one holding the
stack's reconcile lock (the leader) acts; the others wait as standbys and try to take the
lock once per interval, so one takes over within an interval of the leader's death.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Literal

from reconciler.errors import LockfileError, PodctlError, SpecError
from reconciler.plans import Outcome, Plan
from reconciler.state import Leadership, open_leadership
from reconciler.workflow.context import Connection, load_desired, state_settings
from reconciler.workflow.pods import (
    ApplyRequest,
    OnEvent,
    PlanRefusedError,
    PlanRequest,
    apply,
)

RoundOutcome = Literal["converged", "changed", "failed", "error", "standby"]
Role = Literal["leader", "standby"]
BACKOFF_CAP_S = 300.0  # errors back off up to 5 minutes (or the interval, if longer)
BACKOFF_BASE_S = 5.0  # the first retry after an error: this, or the interval if shorter
DEADLINE_SLACK_S = 0.5  # wake just after a max_lifetime deadline, so the round sees it passed


@dataclass(frozen=True)
class LoopOptions:
    """How `podctl reconcile` loops."""

    interval_s: float = 60.0
    once: bool = False
    max_rounds: int | None = None  # tests: stop after this many rounds


@dataclass(frozen=True)
class Round:
    """One round's status line: what it did, and when the next one starts."""

    number: int
    ts: str
    outcome: RoundOutcome
    pods: int = 0
    requests: int | None = None  # None when the round failed before it could count
    changes: int = 0
    done: int = 0
    failed: int = 0
    skipped: int = 0
    error: str | None = None
    next_in_s: float | None = None
    deadline_in_s: float | None = None  # the nearest max_lifetime, to wake up in time for it
    role: Role = "leader"  # standby: another loop holds the stack's reconcile lock
    leader: str | None = None  # a standby's view of who leads (`pid 12 on host-a ...`)

    @property
    def ok(self) -> bool:
        return self.outcome in ("converged", "changed")

    def text(self) -> str:
        """`round 3: converged (2 pods, 1 request)`, `round 4: 2 changes: 2 done, 0 failed`..."""
        head = f"round {self.number} ({self.role}): "
        if self.outcome == "standby":
            line = head + f"waiting: {self.leader or 'another podctl reconcile'} leads"
        elif self.outcome == "converged":
            reqs = "" if self.requests is None else f", {_n(self.requests, 'request')}"
            line = head + f"converged ({_n(self.pods, 'pod')}{reqs})"
        elif self.outcome == "error":
            line = head + f"error: {self.error}"
        else:
            line = head + f"{_n(self.changes, 'change')}: {self.done} done, {self.failed} failed"
            if self.skipped:
                line += f", {self.skipped} skipped"
        if self.next_in_s is not None and not self.ok:
            line = line.rstrip(".") + f"; next try in {_seconds(self.next_in_s)}"
        return line

    def as_dict(self) -> dict[str, object]:
        return {
            "round": self.number,
            "ts": self.ts,
            "role": self.role,
            "leader": self.leader,
            "outcome": self.outcome,
            "counts": {
                "pods": self.pods,
                "requests": self.requests,
                "changes": self.changes,
                "done": self.done,
                "failed": self.failed,
                "skipped": self.skipped,
            },
            "error": self.error,
            "next_in_s": None if self.next_in_s is None else round(self.next_in_s, 3),
        }


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _seconds(value: float) -> str:
    return f"{value:.0f}s" if value >= 10 else f"{value:.1f}s"


@dataclass
class Backoff:
    """Bounded exponential backoff with jitter: base * 2^(n-1), capped, times [0.5, 1)."""

    interval_s: float
    rng: random.Random = field(default_factory=random.Random)

    @property
    def cap_s(self) -> float:
        return max(BACKOFF_CAP_S, self.interval_s)

    def delay(self, failures: int) -> float:
        base = min(BACKOFF_BASE_S, self.interval_s)
        raw = min(self.cap_s, base * 2.0 ** min(max(failures - 1, 0), 30))
        return raw * (0.5 + self.rng.random() / 2)


def _one_line(text: str) -> str:
    return " ".join(part.strip() for part in text.splitlines() if part.strip())


def _error_text(exc: PodctlError) -> str:
    if isinstance(exc, SpecError):
        first = next((p for p in exc.problems if p.severity == "error"), None)
        if first is not None:
            return f"{exc}: {first.location}: {first.path}: {first.message}"
    return _one_line(str(exc))


def run_round(
    connection: Connection,
    request: PlanRequest,
    options: ApplyRequest,
    number: int,
    *,
    on_event: OnEvent,
    show_plan: Callable[[Plan], None] = lambda _plan: None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> tuple[Round, bool]:
    """One round through `apply -y`; returns its status and whether an error should back off.

    Spec and lockfile errors (a user may be fixing the file), a held lock and a refused plan
    are retried at the regular interval; API errors and failed changes back off.
    """
    ts = clock().isoformat(timespec="seconds")
    try:
        applied = apply(
            connection,
            request,
            replace(options, lazy_offers=True),
            confirm=lambda _plan: True,
            on_event=on_event,
            show_plan=show_plan,
        )
    except (SpecError, LockfileError, PlanRefusedError) as exc:
        return Round(number, ts, "error", error=_error_text(exc)), False
    except PodctlError as exc:
        return Round(number, ts, "error", error=_error_text(exc)), True
    plan, result = applied.plan, applied.result
    pods = len({c.pod for c in plan.changes})
    deadline = applied.next_deadline
    due = None if deadline is None else max(0.0, (deadline - clock()).total_seconds())
    if result is None:
        status = Round(number, ts, "converged", pods=pods, requests=applied.requests)
        return replace(status, deadline_in_s=due), False
    failed = result.count(Outcome.FAILED)
    status = Round(
        number,
        ts,
        "changed" if result.ok else "failed",
        pods=pods,
        requests=applied.requests,
        changes=len(result.results),
        done=result.count(Outcome.DONE),
        failed=failed,
        skipped=result.count(Outcome.SKIPPED),
        deadline_in_s=due,
    )
    return status, not result.ok


def describe_leader(holder: dict[str, object]) -> str:
    """`pid 12 on host-a (podctl reconcile) since 2026-...`, or who else when unknown."""
    if not holder:
        return "another podctl reconcile"
    command = holder.get("command") or "podctl reconcile"
    return (
        f"pid {holder.get('pid', '?')} on {holder.get('host', '?')} ({command}) "
        f"since {holder.get('since', '?')}"
    )


def take_lead(
    connection: Connection, request: PlanRequest, lead: Leadership | None
) -> tuple[Leadership, str | None]:
    """The stack's reconcile lock (opened from the spec on first use) and, unless this loop
    leads now, who does. Raises what loading the spec or reaching the store raises."""
    if lead is None:
        desired = load_desired(request.paths)
        lead = open_leadership(state_settings(connection, desired))
    holder = lead.try_lead()
    return lead, None if holder is None else describe_leader(holder)


def reconcile(
    connection: Connection,
    request: PlanRequest,
    options: ApplyRequest,
    loop: LoopOptions,
    *,
    on_round: Callable[[Round], None],
    on_event: OnEvent,
    stopping: Callable[[], bool],
    wait: Callable[[float], None],
    show_plan: Callable[[Plan], None] = lambda _plan: None,
    backoff: Backoff | None = None,
) -> int:
    """Run rounds until `stopping()` (or once); exit code 0, or 1 when `--once` failed.

    `wait(seconds)` sleeps between rounds and returns early once `stopping()` is true.
    """
    backoff = backoff or Backoff(loop.interval_s)
    options = replace(options, should_start=lambda: not stopping())
    failures = 0
    number = 0
    lead: Leadership | None = None
    try:
        while True:
            number += 1
            status, backs_off, lead = _one_round(
                connection, request, options, number, lead, on_event=on_event, show_plan=show_plan
            )
            enough = loop.max_rounds is not None and number >= loop.max_rounds
            last = loop.once or enough or stopping()
            failures = failures + 1 if backs_off else 0
            delay = backoff.delay(failures) if backs_off else loop.interval_s
            if status.deadline_in_s is not None:
                delay = min(delay, status.deadline_in_s + DEADLINE_SLACK_S)
            on_round(replace(status, next_in_s=None if last else delay))
            if last:
                return 0 if (status.ok or not loop.once) else 1
            wait(delay)
            if stopping():
                return 0
    finally:
        if lead is not None:
            lead.release()


def _one_round(
    connection: Connection,
    request: PlanRequest,
    options: ApplyRequest,
    number: int,
    lead: Leadership | None,
    *,
    on_event: OnEvent,
    show_plan: Callable[[Plan], None],
) -> tuple[Round, bool, Leadership | None]:
    """A leader's round, or a standby's look at who leads (and an error before either)."""
    ts = datetime.now(UTC).isoformat(timespec="seconds")
    try:
        lead, leader = take_lead(connection, request, lead)
    except (SpecError, LockfileError) as exc:
        return Round(number, ts, "error", error=_error_text(exc), role="standby"), False, lead
    if leader is not None:
        return Round(number, ts, "standby", role="standby", leader=leader), False, lead
    status, backs_off = run_round(
        connection, request, options, number, on_event=on_event, show_plan=show_plan
    )
    return status, backs_off, lead
