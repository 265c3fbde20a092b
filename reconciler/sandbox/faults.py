"""Injected failures, deterministic under a seed: latency, HTTP errors, resets, garbage answers,
lost responses, exhausted capacity and GPUs taken on resume (spot preemption is applied by the
app at once).

`POST /_sandbox/faults` (same Bearer key as the API) merges a JSON object; every key optional:

    {"seed": 7,                        # restart the dice
     "latency_ms": 250,                # delay every API request (/graphql and /v2/...)
     "errors": {"probability": 0.3,    # each request fails with this probability ("rate" too)
                "kinds": ["429", "500", "502", "reset", "garbage", "wrong-types"],
                "count": 3,            # or: fail exactly the next 3 requests (probability 1)
                "retry_after": 1},     # the 429's Retry-After header
     "lose_responses": 1,              # apply the next mutation, then reset the connection; or
     "lose_responses": {"count": 2, "probability": 0.5, "operations": ["create", "podStop"]},
     "exhaust": ["NVIDIA A40", {"gpu": "NVIDIA L4", "cloud": "SECURE"}, {"cloud": "COMMUNITY"}],
     "restore": [...],                 # same shapes: give that capacity back
     "gpu_taken": ["<pod id>"], "gpu_free": [...],  # resuming that pod fails (GPU taken)
     "preempt": ["<pod id>"],          # spot preemption now: the pod goes EXITED
     "gpu_util": {"<pod id>": 80},     # what the pod's nvidia-smi stand-in reports (gpus.py)
     "bill_hours": {"<pod id>" | "*": 2},  # billed as if 2 h longer as it is (billing.py)
     "billing_lag_s": 3600,            # /v2/billing/pods shows usage this late (default 0)
     "stock": {"NVIDIA A40": 2} | {"NVIDIA A40": {"SECURE": 2}},
     "start_delay": 0.5,               # seconds of runtime: null for new (re)starts
     "refuse_creates": {"status": 402, "count": 1},  # REST v2 creates: 402 balance, 403 pool
     "serverless": {...},              # see ServerlessFaults
     "clear": true}                    # drop every fault first

`GET` (and `/_sandbox/status`) also count the faults injected since the last clear or reset,
by kind (`injected`: 429, 500, ..., lost-response), so a campaign can say how many it met.

Error kinds: 429 (with Retry-After), 500 (GraphQL "Something went wrong"), 502 (an HTML page),
reset (the connection drops), garbage (HTTP 200 whose body is not JSON) are answered *instead*
of running the request: nothing was applied. wrong-types runs the request (a mutation is
applied) and answers HTTP 200 with values of the wrong type inside `data`: a client must treat
it like a lost response. Lost responses hit only mutations that succeeded. `operations` take
GraphQL field names, REST v2 operations (`rest:createPod`, `rest:updatePod`, `rest:deletePod`,
`rest:startPod`, `rest:stopPod`, `rest:restartPod`, `rest:terminatePod`; the default: all of
them) or the GraphQL aliases create, stop, terminate, resume, edit. Every fault applies to REST
v2 requests as to GraphQL ones, answered in REST's shapes (problem+json, 429 with Retry-After
and RateLimit headers).

`GET` shows the faults in force, `DELETE` clears them; `podctl sandbox fault ...` wraps it all.
"""

from __future__ import annotations

import copy
import math
import random
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

ERROR_KINDS = ("429", "500", "502", "reset", "garbage", "wrong-types")
CLOUDS = ("SECURE", "COMMUNITY")
ANY = "*"
# REST v2 operations are named `rest:<operation>` (reconciler/sandbox/rest/api.py); the
# aliases name GraphQL mutations only
REST_OPERATIONS = (
    "rest:createPod",
    "rest:updatePod",
    "rest:deletePod",
    "rest:startPod",
    "rest:stopPod",
    "rest:restartPod",
    "rest:terminatePod",
    "rest:createEndpoint",  # reconciler/sandbox/serverless
    "rest:updateEndpoint",
    "rest:deleteEndpoint",
)
OPERATION_ALIASES: dict[str, frozenset[str]] = {
    "create": frozenset({"podFindAndDeployOnDemand", "podRentInterruptable", "deployCpuPod"}),
    "stop": frozenset({"podStop"}),
    "terminate": frozenset({"podTerminate"}),
    "resume": frozenset({"podResume", "podBidResume"}),
    "edit": frozenset({"podEditJob"}),
}
MUTATION_FIELDS = frozenset().union(*OPERATION_ALIASES.values(), REST_OPERATIONS)

Capacity = tuple[str, str]  # (GPU type or ANY, cloud or ANY)
SERVERLESS_ROUTES = (
    "run",
    "runsync",
    "status",
    "stream",
    "cancel",
    "retry",
    "purge-queue",
    "health",
)


class FaultSpecError(ValueError):
    """A fault request that makes no sense (HTTP 400 from the admin endpoint)."""


def finite(value: Any, what: str) -> float:
    """A number >= 0 and finite (an `inf` delay would hang every request)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise FaultSpecError(f"{what} must be a number, not {value!r}") from None
    if isinstance(value, bool) or not math.isfinite(number) or number < 0:
        raise FaultSpecError(f"{what} must be a finite number >= 0, not {value!r}")
    return number


def _probability(value: Any, what: str) -> float:
    number = float(value)
    if not 0.0 <= number <= 1.0:
        raise FaultSpecError(f"{what} must be between 0 and 1, got {value!r}")
    return number


def _capacity(item: Any) -> Capacity:
    """`"GPU type"` or `{"gpu": ..., "cloud": ...}` (either may be left out, not both)."""
    if isinstance(item, str) and item:
        return (item, ANY)
    if isinstance(item, dict) and set(item) <= {"gpu", "cloud"} and item:
        gpu, cloud = item.get("gpu") or ANY, item.get("cloud") or ANY
        if isinstance(gpu, str) and cloud in (*CLOUDS, ANY):
            return (gpu, cloud)
    raise FaultSpecError(
        f"capacity to exhaust must be a GPU type or {{'gpu': TYPE, 'cloud': SECURE|COMMUNITY}}"
        f" (either may be left out), got {item!r}"
    )


def _refusal(value: Any) -> tuple[int, int | None] | None:
    """`{"status": 402|403, "count": N}` (no count: every create); null lifts it."""
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) - {"status", "count"}:
        raise FaultSpecError("refuse_creates must be {'status': 402|403, 'count': N} or null")
    status, count = value.get("status"), value.get("count")
    if status not in (402, 403):
        raise FaultSpecError(f"refuse_creates status must be 402 or 403, not {status!r}")
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
        raise FaultSpecError(f"refuse_creates count must be a count >= 1, not {count!r}")
    return (status, count)


def capacities(items: Iterable[Any]) -> list[Capacity]:
    return [_capacity(item) for item in items]


def _operations(names: Iterable[Any]) -> frozenset[str]:
    out: set[str] = set()
    for name in names:
        if name in OPERATION_ALIASES:
            out |= OPERATION_ALIASES[name]
        elif name in MUTATION_FIELDS:
            out.add(name)
        else:
            known = sorted({*OPERATION_ALIASES, *MUTATION_FIELDS})
            raise FaultSpecError(f"unknown operation {name!r}: use one of {known}")
    return frozenset(out)


@dataclass
class ServerlessFaults:
    """Serverless data-plane faults and test knobs (`"serverless": {...}` in a fault request):

    {"errors": {"routes": ["run", "status"], "count": 2},  # the next 2 of those get 429
     "lose_run": 1,       # the next /run is queued, then its answer is lost (reset)
     "kill_worker": 1,    # the next job's worker dies after its handler returned: the
                          # result is lost and RunPod requeues the job (it runs twice)
     "retention": {"run": 2, "runsync": 1},  # seconds results are kept (30 min / 1 min)
     "cold_start": 0.5}   # seconds a new worker takes to boot (default: the start delay)
    """

    errors: dict[str, int] = field(default_factory=dict)  # route -> 429s left
    lose_run: int = 0
    kill_worker: int = 0
    lose_queue: int = 0
    retention: dict[str, float] = field(default_factory=dict)
    cold_start: float | None = None

    def merge(self, spec: Any) -> None:
        if not isinstance(spec, dict):
            raise FaultSpecError("serverless must be an object")
        unknown = set(spec) - {
            "errors",
            "lose_run",
            "kill_worker",
            "lose_queue",
            "retention",
            "cold_start",
        }
        if unknown:
            raise FaultSpecError(f"unknown serverless fault keys: {sorted(unknown)}")
        if "errors" in spec:
            errors = spec["errors"] or {}
            if not isinstance(errors, dict) or set(errors) - {"routes", "count"}:
                raise FaultSpecError("serverless errors must be {routes: [...], count: N}")
            routes = errors.get("routes") or list(SERVERLESS_ROUTES)
            bad = [r for r in routes if r not in SERVERLESS_ROUTES]
            if bad:
                raise FaultSpecError(f"unknown serverless routes {bad}: use {SERVERLESS_ROUTES}")
            count = int(finite(errors.get("count", 1), "serverless errors count"))
            for route in routes:
                self.errors[route] = count
        for key in ("lose_run", "kill_worker", "lose_queue"):
            if key in spec:
                setattr(self, key, int(finite(spec[key], f"serverless {key}")))
        if "retention" in spec:
            retention = spec["retention"] or {}
            if not isinstance(retention, dict) or set(retention) - {"run", "runsync"}:
                raise FaultSpecError("serverless retention must be {run: s, runsync: s}")
            self.retention.update(
                {k: finite(v, f"serverless retention {k}") for k, v in retention.items()}
            )
        if "cold_start" in spec:
            value = spec["cold_start"]
            self.cold_start = None if value is None else finite(value, "serverless cold_start")

    def take_error(self, route: str) -> bool:
        left = self.errors.get(route, 0)
        if left <= 0:
            return False
        self.errors[route] = left - 1
        return True

    def take(self, key: str) -> bool:
        left = int(getattr(self, key))
        if left <= 0:
            return False
        setattr(self, key, left - 1)
        return True

    def describe(self) -> dict[str, Any]:
        return {
            "errors": {k: v for k, v in sorted(self.errors.items()) if v},
            "lose_run": self.lose_run,
            "kill_worker": self.kill_worker,
            "lose_queue": self.lose_queue,
            "retention": dict(sorted(self.retention.items())),
            "cold_start": self.cold_start,
        }


@dataclass
class Faults:
    """The current fault configuration; `POST /_sandbox/faults` merges into it."""

    seed: int = 0
    latency_ms: float = 0.0
    error_rate: float = 0.0
    error_kinds: list[str] = field(default_factory=lambda: ["500"])
    error_count: int | None = None  # None: every request rolls the dice; N: the next N fail
    retry_after: int = 1
    lose_responses: int | None = 0  # the next N successful mutations lose their answer
    lose_rate: float = 1.0  # ... each with this probability (None count: no limit)
    lose_operations: frozenset[str] = MUTATION_FIELDS  # GraphQL mutation fields affected
    exhausted: set[Capacity] = field(default_factory=set)  # no capacity on create
    gpu_taken: set[str] = field(default_factory=set)  # pods whose GPUs are taken on resume
    # REST v2 creates refused with 402 (balance) or 403 (pool): (status, count or None = all)
    refuse_creates: tuple[int, int | None] | None = None
    rng: random.Random = field(default_factory=lambda: random.Random(0), repr=False)
    injected: Counter[str] = field(default_factory=Counter)  # by kind, since the last clear
    serverless: ServerlessFaults = field(default_factory=ServerlessFaults)

    def apply(self, spec: dict[str, Any]) -> None:
        """Merge a JSON fault request (see the module docstring); a bad one changes nothing."""
        trial = copy.deepcopy(self)
        trial._merge(spec)
        self.__dict__.update(trial.__dict__)

    def _merge(self, spec: dict[str, Any]) -> None:
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
            "refuse_creates",
            "serverless",
            "clear",
        }
        if unknown:
            raise FaultSpecError(f"unknown fault keys: {sorted(unknown)}")
        exhaust = capacities(spec.get("exhaust") or [])
        restore = capacities(spec.get("restore") or [])
        if spec.get("clear"):
            self.clear()
        if "seed" in spec:
            self.seed = int(spec["seed"])
            self.rng = random.Random(self.seed)
        if "latency_ms" in spec:
            self.latency_ms = finite(spec["latency_ms"], "latency_ms")
        if "errors" in spec:
            self._apply_errors(spec["errors"] or {})
        if "lose_responses" in spec:
            self._apply_lose(spec["lose_responses"])
        self.exhausted |= set(exhaust)
        self.exhausted -= set(restore)
        if "refuse_creates" in spec:
            self.refuse_creates = _refusal(spec["refuse_creates"])
        self.gpu_taken |= set(spec.get("gpu_taken") or [])
        self.gpu_taken -= set(spec.get("gpu_free") or [])
        if "serverless" in spec:
            self.serverless.merge(spec["serverless"])

    def _apply_errors(self, errors: dict[str, Any]) -> None:
        if not isinstance(errors, dict):
            raise FaultSpecError("errors must be an object")
        unknown = set(errors) - {"rate", "probability", "kinds", "count", "retry_after"}
        if unknown:
            raise FaultSpecError(f"unknown error fault keys: {sorted(unknown)}")
        kinds = [str(k) for k in errors.get("kinds", ["500"])]
        bad = [k for k in kinds if k not in ERROR_KINDS]
        if bad or not kinds:
            raise FaultSpecError(f"error kinds must be among {ERROR_KINDS}, got {kinds}")
        default = 1.0 if errors.get("count") is not None else 0.0
        rate = errors.get("probability", errors.get("rate", default))
        self.error_rate = _probability(rate, "error probability")
        self.error_kinds = kinds
        count = errors.get("count")
        self.error_count = None if count is None else int(count)
        self.retry_after = int(errors.get("retry_after", 1))

    def _apply_lose(self, lose: Any) -> None:
        if isinstance(lose, bool) or not isinstance(lose, int | dict):
            raise FaultSpecError("lose_responses must be a count or an object")
        if isinstance(lose, int):
            lose = {"count": lose}
        unknown = set(lose) - {"count", "probability", "operations"}
        if unknown:
            raise FaultSpecError(f"unknown lose_responses keys: {sorted(unknown)}")
        count = lose.get("count")
        self.lose_responses = None if count is None else int(count)
        self.lose_rate = _probability(lose.get("probability", 1.0), "lose probability")
        operations = lose.get("operations")
        self.lose_operations = MUTATION_FIELDS if operations is None else _operations(operations)

    def clear(self) -> None:
        self.latency_ms = 0.0
        self.error_rate = 0.0
        self.error_kinds = ["500"]
        self.error_count = None
        self.lose_responses = 0
        self.lose_rate = 1.0
        self.lose_operations = MUTATION_FIELDS
        self.exhausted = set()
        self.gpu_taken = set()
        self.refuse_creates = None
        self.rng = random.Random(self.seed)
        self.injected = Counter()
        self.serverless = ServerlessFaults()

    def describe(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "latency_ms": self.latency_ms,
            "errors": {
                "probability": self.error_rate,
                "rate": self.error_rate,  # the older name of probability
                "kinds": self.error_kinds,
                "count": self.error_count,
                "retry_after": self.retry_after,
            },
            "lose_responses": self.lose_responses,
            "lose": {
                "count": self.lose_responses,
                "probability": self.lose_rate,
                "operations": sorted(self.lose_operations),
            },
            "exhausted": sorted(
                gpu if cloud == ANY else f"{gpu}/{cloud}" for gpu, cloud in self.exhausted
            ),
            "gpu_taken": sorted(self.gpu_taken),
            "refuse_creates": (
                None
                if self.refuse_creates is None
                else {"status": self.refuse_creates[0], "count": self.refuse_creates[1]}
            ),
            "injected": dict(sorted(self.injected.items())),
            "serverless": self.serverless.describe(),
        }

    def take_refusal(self) -> int | None:
        """The status (402, 403) this REST v2 create is refused with, or None."""
        if self.refuse_creates is None:
            return None
        status, count = self.refuse_creates
        if count is not None:
            self.refuse_creates = None if count <= 1 else (status, count - 1)
        self.injected[str(status)] += 1
        return status

    def is_exhausted(self, gpu_type_id: str, cloud: str) -> bool:
        """True when a create of this GPU type in this cloud finds no capacity now."""
        return any((gpu in (gpu_type_id, ANY)) and (c in (cloud, ANY)) for gpu, c in self.exhausted)

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
        kind = self.rng.choice(self.error_kinds)
        self.injected[kind] += 1
        return kind

    def take_lost_response(self, fields: Iterable[str] = MUTATION_FIELDS) -> bool:
        """Whether the answer to this applied mutation (of these root fields) is lost."""
        if self.lose_responses is not None and self.lose_responses <= 0:
            return False
        if not self.lose_operations & set(fields):
            return False
        if self.lose_rate < 1.0 and self.rng.random() >= self.lose_rate:
            return False
        if self.lose_responses is not None:
            self.lose_responses -= 1
        self.injected["lost-response"] += 1
        return True

    def mangle(self, value: Any, depth: int = 0) -> Any:
        """`value` with one part (chosen by the dice) replaced by a value of the wrong type."""
        if isinstance(value, dict) and value and depth < 4 and self.rng.random() < 0.75:
            key = self.rng.choice(sorted(value))
            return {**value, key: self.mangle(value[key], depth + 1)}
        if isinstance(value, list) and value and depth < 4 and self.rng.random() < 0.75:
            index = self.rng.randrange(len(value))
            return [*value[:index], self.mangle(value[index], depth + 1), *value[index + 1 :]]
        if isinstance(value, bool):
            return "yes"
        if isinstance(value, int | float):
            return f"{value}"
        if isinstance(value, str):
            return 42
        if value is None:
            return 42
        return "garbage"  # an object or a list
