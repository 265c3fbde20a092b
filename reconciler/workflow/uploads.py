"""Digests of the local files a job uploads: a changed file changes the job's fingerprint."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from reconciler.errors import PodctlError
from reconciler.filehash import file_sha256
from reconciler.model import DesiredState


def path_digest(path: Path) -> str:
    """sha256 over a file, or over a folder's files (relative name, mode, content), sorted."""
    h = hashlib.sha256()
    if path.is_file():
        h.update(b"file\0" + file_sha256(path).encode())
        return h.hexdigest()
    for root, dirs, files in os.walk(path):
        dirs.sort()
        for name in sorted(files):
            full = Path(root) / name
            rel = full.relative_to(path).as_posix()
            mode = full.stat().st_mode & 0o777
            h.update(f"{rel}\0{mode:o}\0{file_sha256(full)}\n".encode())
    return h.hexdigest()


def upload_digests(desired: DesiredState) -> dict[str, str]:
    """Job name -> digest of all its upload sources; a missing source is a clear error."""
    out: dict[str, str] = {}
    missing: list[str] = []
    for name, job in desired.jobs.items():
        parts = []
        for i, t in enumerate(job.upload):
            source = Path(t.source)
            if not source.exists():
                missing.append(f"  jobs.{name}.upload[{i}].from: {source} does not exist")
                continue
            try:
                parts.append(path_digest(source))
            except OSError as exc:
                missing.append(f"  jobs.{name}.upload[{i}].from: cannot read {source}: {exc}")
        out[name] = hashlib.sha256("\n".join(parts).encode()).hexdigest()
    if missing:
        raise PodctlError(
            "Some files to upload are missing:\n"
            + "\n".join(missing)
            + "\nCreate them, or fix the paths (relative to the spec file's folder)."
        )
    return out
