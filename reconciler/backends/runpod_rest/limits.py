"""RunPod v2's `RateLimit` / `RateLimit-Policy` headers: which window is used up, for how long.

Pure. `RateLimit: "minute";r=0;t=12, "hour";r=2800;t=1812` (r: requests left, t: seconds to its
reset); `RateLimit-Policy: "minute";q=60;w=60, ...` (q: quota, w: window seconds). Garbage is
ignored, never an error: the headers only make podctl wait, and never longer than a day.
"""

from __future__ import annotations

MAX_MEMBERS = 16  # windows read from one header
MAX_WAIT_S = 86400.0


def parse_windows(value: str | None) -> dict[str, dict[str, float]]:
    """`"minute";r=0;t=12, ...` as `{"minute": {"r": 0, "t": 12}}`; unparsable members left out."""
    windows: dict[str, dict[str, float]] = {}
    if not value:
        return windows
    for member in value[:4096].split(",")[:MAX_MEMBERS]:
        name, *params = (part.strip() for part in member.split(";"))
        name = name.strip('"')
        if not name:
            continue
        found: dict[str, float] = {}
        for param in params:
            key, _, text = param.partition("=")
            try:
                number = float(text)
            except ValueError:
                continue
            if 0 <= number < float("inf"):  # not NaN, not negative: clamped by the reader
                found[key.strip()] = number
        windows[name] = found
    return windows


def exhausted_for(ratelimit: str | None, policy: str | None) -> tuple[str, float] | None:
    """The exhausted window that resets last, and its seconds to reset; None when none is.

    A window with no requests left and no `t` waits its whole `w` from the policy. RunPod's
    own MCP server waits the longest such window, as Retry-After may name only the shorter.
    """
    windows = parse_windows(ratelimit)
    policies = parse_windows(policy)
    longest: tuple[str, float] | None = None
    for name, values in windows.items():
        if values.get("r", 1.0) > 0:
            continue
        seconds = values.get("t", policies.get(name, {}).get("w", 0.0))
        seconds = min(seconds, MAX_WAIT_S)
        if longest is None or seconds > longest[1]:
            longest = (name, seconds)
    return longest if longest is not None and longest[1] > 0 else None
