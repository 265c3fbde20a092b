"""Local copies of job logs (`<job>.log` in the folder it is given), 0600."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TextIO


class LocalLogs:
    """Each job's streamed lines, written to its local log (the last run's whole log)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder  # the composition's choice (LocalState.job_logs)
        self._files: dict[str, TextIO] = {}

    def path(self, job: str) -> Path:
        return self.folder / f"{job}.log"

    def _file(self, job: str) -> TextIO:
        """The job's log for this apply: emptied on first use, 0600."""
        f = self._files.get(job)
        if f is None:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path(job), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            f = self._files[job] = os.fdopen(fd, "w", encoding="utf-8")
        return f

    def line(self, job: str, text: str) -> None:
        f = self._file(job)
        f.write(text + "\n")
        f.flush()

    def touch(self, job: str) -> None:
        """The job ran in this apply: its local log exists, even when it printed nothing."""
        self._file(job)

    def close(self) -> None:
        for f in self._files.values():
            f.close()
        self._files.clear()
