"""The per-line ledger of endpoint jobs, folded from its append-only records. Pure.

Each request (a single job's one input, or one line of a batch) is keyed by its line print:
a hash of the endpoint, policy, webhook, sync flag and input (and which occurrence of that
input it is, so two equal lines are two requests). Records, one JSON object per line of the
job's journal file, in the order written:

  submitting  written (durably) before /run is sent: write-ahead
  submitted   the RunPod job id, written the moment /run answered
  unknown     /run was sent and its answer lost: the job may exist, and cannot be found again
  state       a state RunPod reported (IN_QUEUE, IN_PROGRESS...), for `podctl logs`
  stream      a chunk the handler streamed
  retrying    /retry sent for a FAILED or TIMED_OUT job (same id)
  done        COMPLETED, with its output (collected as soon as it ended)
  failed      FAILED, TIMED_OUT or CANCELLED, with RunPod's error
  lost        the job was gone (404) before podctl saw it end: its result expired
  output      a file podctl wrote (its path and sha256), so it may replace it later
  begin       an apply started this job (`fresh`: rerun: always starts over)

A `submitting` with no later `submitted` read back by a new process means the answer never
reached the ledger: the line is unknown, and is not submitted again unless `rerun` says so.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from reconciler.model import EndpointJobSpec

TERMINAL = frozenset({"COMPLETED", "FAILED", "TIMED_OUT", "CANCELLED"})
# what a folded line is: pending (nothing sent), sent (an id: reattach by /status), unknown,
# done, failed (ended without success: sent again on the next apply), lost (ran, result gone)
PENDING, SENT, UNKNOWN, DONE, FAILED, LOST = "pending", "sent", "unknown", "done", "failed", "lost"


def _digest(value: object) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def job_parts(job: EndpointJobSpec, target: str) -> dict[str, str]:
    """A hash per input of the job, so a plan can say which one changed."""
    policy = job.policy
    return {
        "endpoint": _digest(target),
        "input": _digest(list(job.inputs)),
        "policy": _digest([policy.execution_timeout_s, policy.ttl_s, policy.low_priority]),
        "webhook": _digest(job.webhook),
        "sync": _digest([job.sync, job.stream]),
        "output": _digest(job.output),
    }


def job_fingerprint(parts: Mapping[str, str]) -> str:
    return _digest(dict(parts))[:16]


def line_prints(job: EndpointJobSpec, target: str) -> tuple[str, ...]:
    """The print of each request, in input order."""
    policy = job.policy
    base = [target, policy.execution_timeout_s, policy.ttl_s, policy.low_priority]
    base += [job.webhook, job.sync]
    seen: Counter[str] = Counter()
    out = []
    for text in job.inputs:
        seen[text] += 1
        out.append(_digest([*base, text, seen[text]])[:24])
    return tuple(out)


@dataclass
class Line:
    """What the ledger knows of one request."""

    state: str = PENDING
    job_id: str | None = None
    attempts: int = 0  # submissions by podctl (a /retry is not one)
    runpod_state: str = ""
    output: Any = None
    error: str = ""
    requeued: int = 0  # RunPod put it back in the queue after it ran (a worker died)
    in_flight: bool = False  # a `submitting` not answered yet


@dataclass
class Folded:
    """Every line's state, and the files podctl wrote."""

    lines: dict[str, Line] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)  # path -> sha256 podctl wrote

    def line(self, print_: str) -> Line:
        return self.lines.setdefault(print_, Line())


def fold(records: Iterable[Mapping[str, Any]], *, settled: bool = True) -> Folded:
    """The ledger's state. `settled`: records come from a process that ended (a new apply
    reads them), so a `submitting` never answered is unknown."""
    out = Folded()
    for rec in records:
        kind = rec.get("e")
        if kind == "begin":
            if rec.get("fresh"):
                out.lines.clear()
            continue
        if kind == "output":
            out.outputs[str(rec.get("path"))] = str(rec.get("sha"))
            continue
        print_ = rec.get("p")
        if not isinstance(print_, str):
            continue
        line = out.line(print_)
        if kind == "submitting":
            line.state, line.job_id, line.in_flight = PENDING, None, True
            line.attempts += 1
            line.runpod_state, line.output, line.error = "", None, ""
        elif kind == "submitted":
            line.state, line.job_id, line.in_flight = SENT, str(rec.get("id")), False
        elif kind == "unknown":
            line.state, line.in_flight = UNKNOWN, False
            line.error = str(rec.get("why", ""))
        elif kind == "state":
            state = str(rec.get("s", ""))
            if line.runpod_state == "IN_PROGRESS" and state == "IN_QUEUE":
                line.requeued += 1
            line.runpod_state = state
        elif kind == "retrying":
            line.state, line.runpod_state = SENT, "IN_QUEUE"
        elif kind == "done":
            line.state, line.runpod_state, line.output = DONE, "COMPLETED", rec.get("o")
        elif kind == "failed":
            line.state, line.runpod_state = FAILED, str(rec.get("s", "FAILED"))
            line.error = str(rec.get("err", ""))
        elif kind == "lost":
            line.state, line.error = LOST, str(rec.get("why", ""))
    if settled:
        for line in out.lines.values():
            if line.in_flight:
                line.state, line.in_flight = UNKNOWN, False
                line.error = "podctl stopped after sending /run, before its answer was recorded"
    return out


@dataclass(frozen=True)
class Summary:
    """Counts of a job's current lines by state, for the planner and `podctl status`."""

    total: int
    counts: Mapping[str, int]
    unknown_lines: tuple[int, ...] = ()  # 1-based input numbers
    lost_lines: tuple[int, ...] = ()

    def count(self, state: str) -> int:
        return self.counts.get(state, 0)

    @property
    def to_send(self) -> int:
        """Lines the next run submits (pending or failed) or reattaches (sent)."""
        return self.count(PENDING) + self.count(FAILED) + self.count(SENT)


def summarize(folded: Folded, prints: Sequence[str]) -> Summary:
    counts: Counter[str] = Counter()
    unknown: list[int] = []
    lost: list[int] = []
    for number, print_ in enumerate(prints, start=1):
        line = folded.lines.get(print_)
        state = PENDING if line is None else line.state
        counts[state] += 1
        if state == UNKNOWN:
            unknown.append(number)
        elif state == LOST:
            lost.append(number)
    return Summary(len(prints), dict(counts), tuple(unknown), tuple(lost))


def numbers(lines: Sequence[int], limit: int = 10) -> str:
    """`3, 17, 40` or `3, 17, ... (12 in all)`."""
    shown = ", ".join(str(n) for n in lines[:limit])
    return shown if len(lines) <= limit else f"{shown}, ... ({len(lines)} in all)"
