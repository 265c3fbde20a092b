"""reconciler.filehash: upload files are hashed once per apply, again when they change."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from reconciler import filehash


def test_file_hashes_are_remembered_until_the_file_changes(tmp_path: Path) -> None:
    f = tmp_path / "data.bin"
    f.write_bytes(b"one")
    assert filehash.file_sha256(f) == hashlib.sha256(b"one").hexdigest()
    f.write_bytes(b"two")  # a new size (and mtime): hashed again
    os.utime(f, ns=(1, 1))
    assert filehash.file_sha256(f) == hashlib.sha256(b"two").hexdigest()
