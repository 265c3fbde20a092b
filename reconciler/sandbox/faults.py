"""Injected failures, deterministic under a seed: latency, HTTP errors, resets, lost responses,
exhausted GPU types and GPUs taken on resume (spot preemption is applied by the app at once).

`POST /_sandbox/faults` (same Bearer key as the API) merges a JSON object; every key optional:

    {"seed": 7,                        # restart the dice
     "latency_ms": 250,                # delay every /graphql request
     "errors": {"rate": 0.2, "kinds": ["429", "500", "502", "reset"],
                "count": 3,            # or: fail exactly the next 3 requests (rate 1)
                "retry_after": 1},     # the 429's Retry-After header
     "lose_responses": 1,              # apply the next mutation, then reset the connection
     "exhaust": ["NVIDIA A40"], "restore": [...],   # no capacity on create for a GPU type
     "gpu_taken": ["<pod id>"], "gpu_free": [...],  # resuming that pod fails (GPU taken)
     "preempt": ["<pod id>"],          # spot preemption now: the pod goes EXITED
     "stock": {"NVIDIA A40": 2} | {"NVIDIA A40": {"SECURE": 2}},
     "start_delay": 0.5,               # seconds of runtime: null for new (re)starts
     "clear": true}                    # drop every fault first

`GET` shows the faults in force, `DELETE` clears them; `podctl sandbox fault ...` wraps it all.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

ERROR_KINDS = ("429", "500", "502", "reset")


class FaultSpecError(ValueError):
    """A fault request that makes no sense (HTTP 400 from the admin endpoint)."""


@dataclass
class Faults:
    """The current fault configuration; `POST /_sandbox/faults` merges into it."""

    seed: int = 0
    latency_ms: float = 0.0
    error_rate: float = 0.0
    error_kinds: list[str] = field(default_factory=lambda: ["500"])
    error_count: int | None = None  # None: every request rolls the dice; N: the next N fail
    retry_after: int = 1
    lose_responses: int = 0  # the next N mutations are applied, then the connection drops
    exhausted: set[str] = field(default_factory=set)  # GPU types with no capacity on create
    gpu_taken: set[str] = field(default_factory=set)  # pods whose GPUs are taken on resume
    rng: random.Random = field(default_factory=lambda: random.Random(0), repr=False)

    def apply(self, spec: dict[str, Any]) -> None:
        """Merge a JSON fault request (see `describe` for the keys)."""
        unknown = set(spec) - {
            "seed",
            "latency_ms",
            "errors",
            "lose_responses",
            "exhaust",
            "restore",
            "gpu_taken",
            "gpu_free",
            "preempt",
            "clear",
        }
        if unknown:
            raise FaultSpecError(f"unknown fault keys: {sorted(unknown)}")
        if spec.get("clear"):
            self.clear()
        if "seed" in spec:
            self.seed = int(spec["seed"])
            self.rng = random.Random(self.seed)
        if "latency_ms" in spec:
            self.latency_ms = max(0.0, float(spec["latency_ms"]))
        if "errors" in spec:
            errors = spec["errors"] or {}
            kinds = [str(k) for k in errors.get("kinds", ["500"])]
            bad = [k for k in kinds if k not in ERROR_KINDS]
            if bad or not kinds:
                raise FaultSpecError(f"error kinds must be among {ERROR_KINDS}, got {kinds}")
            rate = float(errors.get("rate", 1.0 if "count" in errors else 0.0))
            if not 0.0 <= rate <= 1.0:
                raise FaultSpecError("error rate must be between 0 and 1")
            self.error_rate = rate
            self.error_kinds = kinds
            count = errors.get("count")
            self.error_count = None if count is None else int(count)
            self.retry_after = int(errors.get("retry_after", 1))
        if "lose_responses" in spec:
            self.lose_responses = int(spec["lose_responses"])
        self.exhausted |= set(spec.get("exhaust") or [])
        self.exhausted -= set(spec.get("restore") or [])
        self.gpu_taken |= set(spec.get("gpu_taken") or [])
        self.gpu_taken -= set(spec.get("gpu_free") or [])

    def clear(self) -> None:
        self.latency_ms = 0.0
        self.error_rate = 0.0
        self.error_kinds = ["500"]
        self.error_count = None
        self.lose_responses = 0
        self.exhausted = set()
        self.gpu_taken = set()
        self.rng = random.Random(self.seed)

    def describe(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "latency_ms": self.latency_ms,
            "errors": {
                "rate": self.error_rate,
                "kinds": self.error_kinds,
                "count": self.error_count,
                "retry_after": self.retry_after,
            },
            "lose_responses": self.lose_responses,
            "exhausted": sorted(self.exhausted),
            "gpu_taken": sorted(self.gpu_taken),
        }

    def roll_error(self) -> str | None:
        """The error kind this API request gets, or None. Consumes the seeded generator."""
        if self.error_count is not None:
            if self.error_count <= 0:
                return None
            self.error_count -= 1
        elif self.error_rate <= 0.0:
            return None
        if self.rng.random() >= self.error_rate:
            return None
        return self.rng.choice(self.error_kinds)

    def take_lost_response(self) -> bool:
        if self.lose_responses > 0:
            self.lose_responses -= 1
            return True
        return False
