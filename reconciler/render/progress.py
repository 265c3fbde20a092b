"""Progress events as text lines (one per event, plus "still running" heartbeats) or JSON lines."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from reconciler import events as ev
from reconciler.render import style

HEARTBEAT_S = 30.0  # without a terminal: a "still running" line per long step this often


def elapsed(seconds: float) -> str:
    """`45s`, `4m30s`, `1h02m`: a step's age as a person reads it."""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def size(n: int) -> str:
    """42 B, 2.0 kB, 104.9 MB (decimal units, as the summary counts them)."""
    if n < 1000:
        return f"{n} B"
    value = float(n)
    for unit in ("kB", "MB", "GB"):
        value /= 1000
        if value < 1000 or unit == "GB":
            break
    return f"{value:.1f} {unit}"


def _where(gpu_type_id: str, cloud: str) -> str:
    return f"{gpu_type_id} ({cloud})"


def _finished(e: ev.ChangeFinished) -> str:
    if e.outcome == "failed":
        return f"failed: {e.message}" if e.message else "failed"
    if e.outcome == "skipped":
        return e.message or "skipped"
    if e.action == "run-job":
        return f"succeeded in {e.duration_s:g}s"
    return f"{e.action} done in {e.duration_s:.1f}s"


def event_text(e: ev.Event) -> str:
    """What the event says, after `ADDRESS: ` (log lines and waits carry their own prefix)."""
    match e:
        case ev.PodCreating():
            return f"creating on {_where(e.gpu_type_id, e.cloud)}"
        case ev.NoCapacity():
            return f"no capacity on {_where(e.gpu_type_id, e.cloud)}; trying the next fallback"
        case ev.PodCreated():
            return f"created {e.pod_id} on {_where(e.gpu_type_id, e.cloud)}"
        case ev.PodReady():
            return f"ready (ssh {e.ssh})" if e.ssh else "ready"
        case ev.PodStopping():
            return f"stopping {e.pod_id}"
        case ev.PodStopped():
            return f"stopped {e.pod_id}" + (f" ({e.why})" if e.why else "")
        case ev.PodTerminating():
            return f"terminating {e.pod_id} ({e.why})"
        case ev.PodTerminated():
            return f"{e.pod_id} was already gone" if e.already_gone else f"terminated {e.pod_id}"
        case ev.PodResuming():
            return f"resuming {e.pod_id}"
        case ev.PodUpdating():
            return f"updating {e.pod_id} in place (the container is reset)"
        case ev.Waiting():
            return "waits for " + ", ".join(e.on)
        case ev.Transfer():
            verb = "uploaded" if e.direction == "upload" else "downloaded"
            if not e.done:
                return f"{e.direction}ing {e.source} -> {e.target}"
            return f"{verb} {e.source} -> {e.target} ({e.files} file(s), {size(e.bytes)})"
        case ev.JobStarted():
            return f"started on {e.pod_id}" + (f" (try {e.attempt})" if e.attempt > 1 else "")
        case ev.JobReattached():
            if e.ended:
                return "already ran on the pod (exit 0): collecting, not running again"
            return f"reattaching to the run on {e.pod_id} (not starting it again)"
        case ev.JobRetrying():
            return f"failed ({e.why}); retrying in {e.delay_s:g}s ({e.attempt}/{e.retries})"
        case ev.LogLine():
            return e.line
        case ev.StillRunning():
            return f"still {e.phase or 'running'}, {elapsed(e.elapsed_s)}"
        case ev.Note():
            return e.text
        case ev.ChangeFinished():
            return _finished(e)
        case ev.BatchProgress():
            return (
                f"{e.done}/{e.total} done, {e.running} running, {e.queued} queued, "
                f"{e.failed} failed ({e.per_s:g}/s)"
            )
    return e.kind  # pragma: no cover - every kind is matched above


def event_line(e: ev.Event) -> str:
    """One progress line: `pod.a: created p1 on ...`, `[train] a log line`,
    `job.eval waits for job.train`, `job.train still running, 4m30s`."""
    text = event_text(e)
    if isinstance(e, ev.LogLine):
        return f"[{e.address.removeprefix('job.')}] {text}"
    if isinstance(e, ev.Waiting | ev.StillRunning):
        return f"{e.address} {text}"
    return f"{e.address}: {text}"


def event_json(e: ev.Event, ts: str) -> str:
    """One JSON-lines object: {"event": KIND, "ts": ..., "address": ..., fields...}."""
    data = e.as_dict()
    data = {"event": data.pop("event"), "ts": ts, **data}
    return json.dumps(data, sort_keys=False)


# what a step is doing once an event of this kind is seen (for heartbeats and the live view)
_PHASES: dict[type[ev.Event], str] = {
    ev.PodCreating: "creating",
    ev.PodCreated: "waiting until ready",
    ev.PodResuming: "resuming",
    ev.PodUpdating: "updating",
    ev.PodStopping: "stopping",
    ev.PodTerminating: "terminating",
    ev.PodReady: "running",
    ev.Waiting: "waiting",
    ev.JobStarted: "running",
    ev.JobReattached: "running",
    ev.JobRetrying: "waiting to retry",
    ev.BatchProgress: "running",
}


@dataclass
class Step:
    """What one change does now, as the events told it."""

    address: str
    phase: str = "starting"
    waits_for: tuple[str, ...] = ()
    elapsed_s: float = 0.0
    last_line: str = ""
    bytes: int = 0
    ended: str = ""  # done | failed | skipped once it ended


@dataclass
class Tracker:
    """The state of every step, folded from the events (the heartbeat and live views read it)."""

    steps: dict[str, Step] = field(default_factory=dict)

    def step(self, address: str) -> Step:
        return self.steps.setdefault(address, Step(address))

    def see(self, e: ev.Event) -> None:
        s = self.step(e.address)
        phase = _PHASES.get(type(e))
        if phase is not None:
            s.phase = phase
        if isinstance(e, ev.Waiting):
            s.waits_for = e.on
        elif phase is not None:
            s.waits_for = ()
        if isinstance(e, ev.Transfer):
            s.phase = f"{e.direction}ing"
            s.bytes += e.bytes
        elif isinstance(e, ev.LogLine):
            s.last_line = e.line
        elif isinstance(e, ev.StillRunning):
            s.elapsed_s = e.elapsed_s
        elif isinstance(e, ev.ChangeFinished):
            s.ended, s.elapsed_s, s.phase = e.outcome, e.duration_s, e.outcome


@dataclass
class PlainProgress:
    """Events as plain lines; a heartbeat becomes `job.train still running, 4m30s`."""

    tracker: Tracker = field(default_factory=Tracker)

    def line(self, e: ev.Event) -> str | None:
        self.tracker.see(e)
        if isinstance(e, ev.StillRunning):
            phase = self.tracker.step(e.address).phase
            if phase in ("waiting", "starting"):
                return None  # a change waiting on another says so once, when it starts
            return event_line(ev.StillRunning(e.address, e.elapsed_s, phase))
        if isinstance(e, ev.ChangeFinished) and e.outcome == "done" and e.action != "run-job":
            return None  # the pod's own events said it; the summary lists it
        return event_line(e)


def cost_line(before: float, after: float) -> str:
    """`cost: $0.69/h -> $1.38/h (+$0.69/h)`."""
    return (
        f"cost: {style.per_hour(before)} -> {style.per_hour(after)} ({style.delta(before, after)})"
    )
