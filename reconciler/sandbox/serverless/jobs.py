"""One queue job: its request, state (§2.4), timings and what `/status` and `/stream` show."""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field, fields
from typing import Any

IN_QUEUE = "IN_QUEUE"
IN_PROGRESS = "IN_PROGRESS"
COMPLETED = "COMPLETED"
FAILED = "FAILED"
CANCELLED = "CANCELLED"
TIMED_OUT = "TIMED_OUT"
TERMINAL = frozenset({COMPLETED, FAILED, CANCELLED, TIMED_OUT})
RETRYABLE = frozenset({FAILED, TIMED_OUT})  # §2.3: /retry only from these

# §2.2 policy defaults and bounds (milliseconds)
DEFAULT_EXECUTION_TIMEOUT_MS = 600_000
DEFAULT_TTL_MS = 86_400_000
EXECUTION_TIMEOUT_RANGE_MS = (5_000, 7 * 86_400_000)
TTL_RANGE_MS = (10_000, 7 * 86_400_000)
MAX_ATTEMPTS = 3  # a job whose worker keeps dying fails after this many runs [INF]


def new_id(sync: bool) -> str:
    """§2.3: `/run` gives a UUID, `/runsync` `sync-<uuid>`; both may end in `-u1`."""
    return f"{'sync-' if sync else ''}{uuid.uuid4()}-u1"


@dataclass
class Job:
    id: str
    endpoint_id: str
    input: Any
    sync: bool
    created_at: float
    status: str = IN_QUEUE
    webhook: str | None = None
    execution_timeout_ms: int | None = None  # policy.executionTimeout; None: the endpoint's
    ttl_ms: int = DEFAULT_TTL_MS
    low_priority: bool = False
    started_at: float | None = None
    finished_at: float | None = None
    has_output: bool = False
    output: Any = None
    error: str | None = None
    worker_id: str | None = None
    attempts: int = 0  # times a worker took it
    stream: list[Any] = field(default_factory=list)  # chunks not yet read by /stream

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Job:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    def view(self) -> dict[str, Any]:
        """The `/status` body (§2.3): times in ms, output or error once known."""
        out: dict[str, Any] = {"id": self.id, "status": self.status}
        if self.started_at is not None:
            out["delayTime"] = int((self.started_at - self.created_at) * 1000)
            if self.finished_at is not None:
                out["executionTime"] = int((self.finished_at - self.started_at) * 1000)
        if self.worker_id is not None:
            out["workerId"] = self.worker_id
        if self.has_output:
            out["output"] = self.output
        if self.error is not None:
            out["error"] = self.error
        return out
