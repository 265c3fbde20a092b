"""How often and how long HttpApi retries a transient failure. Pure: no clock, no sleep."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

OnRetry = Callable[[int, float, str], None]  # (attempt that failed, delay in s, reason)


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter, bounded in attempts and in total sleep."""

    max_attempts: int = 5  # requests in all, the first included
    base_delay: float = 0.5  # seconds; the cap of the first backoff
    max_delay: float = 20.0  # seconds; the cap of any one backoff
    max_total_delay: float = 60.0  # seconds slept in all before giving up

    def backoff(self, attempt: int, random: Callable[[], float]) -> float:
        """Full jitter (AWS architecture blog): uniform in [0, min(max, base * 2^(attempt-1))]."""
        ceiling = min(self.max_delay, self.base_delay * 2.0 ** (attempt - 1))
        return random() * ceiling


NO_RETRY = RetryPolicy(max_attempts=1)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """`Retry-After` in seconds: delta-seconds or an HTTP date; None when absent or garbage."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if seconds != seconds or seconds < 0:  # NaN or in the past
        return 0.0
    return seconds
