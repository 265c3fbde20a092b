"""Turn `-f` arguments (files and folders) into spec files; read each as bounded UTF-8 text."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from reconciler.errors import Problem
from reconciler.spec.document import file_problem

MAX_FILE_BYTES = 5 * 1024 * 1024
SPEC_SUFFIXES = (".yaml", ".yml")


@dataclass
class SpecFiles:
    """The files `-f` named, in order and without repeats, and the problems finding them."""

    files: list[Path] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def find_spec_files(paths: Sequence[Path]) -> SpecFiles:
    """Files as given; folders as all their `*.yaml`/`*.yml` files, sorted by name."""
    found = SpecFiles()
    seen: set[Path] = set()

    def add(path: Path) -> None:
        key = Path(os.path.abspath(path))
        if key not in seen:
            seen.add(key)
            found.files.append(path)

    for path in paths:
        shown = str(path)
        try:
            if path.is_dir():
                entries = sorted(
                    (entry for entry in path.iterdir() if entry.name.endswith(SPEC_SUFFIXES)),
                    key=lambda entry: entry.name,
                )
                if not entries:
                    found.problems.append(
                        file_problem(
                            shown,
                            "the folder holds no *.yaml or *.yml files",
                            "pass a folder of spec files, or the spec files themselves",
                        )
                    )
                for entry in entries:
                    add(entry)
            elif path.exists():
                add(path)
            else:
                found.problems.append(
                    file_problem(shown, "no such file or folder", "check the path given to -f")
                )
        except OSError as exc:
            found.problems.append(file_problem(shown, f"cannot read: {exc.strerror or exc}"))
    return found


def read_spec_text(path: Path) -> tuple[str | None, Problem | None]:
    """The file's text, or the problem that stops it being read (too big, not UTF-8, ...)."""
    shown = str(path)
    try:
        if path.is_dir():
            return None, file_problem(
                shown, "is a folder, not a spec file", "a spec file is a *.yaml file"
            )
        with path.open("rb") as stream:
            data = stream.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        return None, file_problem(shown, f"cannot read the file: {exc.strerror or exc}")
    if len(data) > MAX_FILE_BYTES:
        return None, file_problem(
            shown,
            f"the file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB",
            "a spec is a few kilobytes; is this the right file?",
        )
    offset = 3 if data.startswith(b"\xef\xbb\xbf") else 0  # a UTF-8 byte order mark
    try:
        return data[offset:].decode("utf-8"), None
    except UnicodeDecodeError as exc:
        start = exc.start + offset
        line = data.count(b"\n", 0, start) + 1
        col = start - (data.rfind(b"\n", 0, start) + 1) + 1
        return None, file_problem(
            shown,
            f"the file is not UTF-8 text (byte 0x{data[start]:02x})",
            "save it as UTF-8; is it a binary file?",
            line,
            col,
        )
