"""Text from the API, a pod, a lockfile or a spec made safe for a terminal: controls shown, not run.

A pod name, an error message or a job's log line may carry ESC sequences (set the window title,
clear the screen, fake podctl's own output), lone C0/C1 controls or bidi overrides. `shown`
replaces each with a visible escape such as `\\x1b`; podctl's own colour is added after it.
"""

from __future__ import annotations

import secrets

# stands for "ESC [" in podctl's own colour codes until `terminal` makes it real; random per
# process, so that no content (made before it) can spell it and make podctl emit an ESC
CSI_MARK = f"\ue000{secrets.token_hex(8)}\ue001"

_BIDI = (*range(0x202A, 0x202F), *range(0x2066, 0x206A))
_TABLE: dict[int, str] = {
    **{c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F, *range(0x80, 0xA0))},
    **{c: f"\\u{c:04x}" for c in _BIDI},
}
_LINES = {**_TABLE, ord("\n"): "\n", ord("\t"): "\t"}


def shown(text: str) -> str:
    """`text` with every control character but newline and tab as a visible escape."""
    return text if text.isprintable() else text.translate(_LINES)


def shown_inline(text: str) -> str:
    """`shown`, with newline and tab escaped too: for one table cell or one line."""
    return text if text.isprintable() else text.translate(_TABLE)


def terminal(text: str) -> str:
    """A renderer's whole output: the content escaped, then podctl's own colour codes made real."""
    return "\033[".join(shown(part) for part in text.split(CSI_MARK))


def shown_cut(text: str, longest: int) -> str:
    """One name (e.g. a spec's GPU type) safe to print: every non-printable escaped, cut."""
    cut = text[:longest] + ("..." if len(text) > longest else "")
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in cut)
