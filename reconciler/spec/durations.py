"""Parse spec durations (`30s`, `15m`, `2h`, `1d`, `1h30m`, or plain seconds) into seconds."""

from __future__ import annotations

import re

_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_WHOLE = re.compile(r"(?:[0-9]+[smhd])+")
_PART = re.compile(r"([0-9]+)([smhd])")
MAX_SECONDS = 365 * 86400


def parse_duration(value: object) -> int | None:
    """Seconds for a duration string or a positive integer; None when it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value > 0 else None
    if not isinstance(value, str) or len(value) > 40 or not _WHOLE.fullmatch(value):
        return None
    return sum(int(n) * _UNIT_SECONDS[unit] for n, unit in _PART.findall(value))
