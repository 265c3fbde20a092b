"""sha256 of local files, remembered per process while a file's size and mtime stay the same.

Stdlib only. An apply hashes each upload once: for the job's fingerprint and again when the
upload compares the files with the pod's.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

_known: dict[tuple[str, int, int, int, int], str] = {}
_MAX_KNOWN = 50_000  # a long `podctl reconcile` whose files keep changing starts over


def file_sha256(path: Path) -> str:
    """Hex sha256 of the file's content (from memory when it has not changed since)."""
    st = os.stat(path)
    key = (str(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    digest = _known.get(key)
    if digest is None:
        with open(path, "rb") as f:
            digest = hashlib.file_digest(f, "sha256").hexdigest()
        if len(_known) >= _MAX_KNOWN:
            _known.clear()
        _known[key] = digest
    return digest
