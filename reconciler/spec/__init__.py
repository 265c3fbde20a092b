"""Read spec files (YAML + JSON Schema + rules the schema cannot express) into a DesiredState.

How `-f` arguments become stacks (the decision, for Terraform and kubectl users alike):

- A file is read as given; a folder contributes all its `*.yaml`/`*.yml` files, sorted by
  name (not recursive). Repeating a file is harmless.
- Files that declare the same `stack:` make ONE stack: their `defaults`, `pods` and `jobs`
  merge (a name declared twice, even across files, is an error naming both places; so is a
  `defaults` key set in two files). `defaults` apply to every pod of the stack.
- `load_spec` (plan, apply) needs exactly one stack: files that declare different stacks are
  an error naming the first file's stack. Like `terraform plan` in one root module.
- `load_stacks` (validate) accepts files of several stacks and checks each one on its own,
  like `kubectl apply --dry-run -f dir/`; so `podctl validate -f specs/` checks every example.

Every problem of every file is reported at once (SpecError); unset `from_env` variables are
warnings for validate (strict_env=False) and errors for plan/apply. The modules:
`sources` (paths -> bounded text), `yamlread` (text -> data + positions), `schema` (JSON
Schema -> worded problems), `stack` (files -> stacks, defaults merging), `rules` (checks the
schema cannot express), `build` (-> DesiredState).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from reconciler.errors import Problem, SpecError
from reconciler.model import DesiredState
from reconciler.spec.build import build_desired_state
from reconciler.spec.document import Document
from reconciler.spec.rules import check_stack
from reconciler.spec.schema import schema_problems
from reconciler.spec.sources import find_spec_files, read_spec_text
from reconciler.spec.stack import StackSource, group_stacks, mixed_stack_problems

__all__ = ["load_spec", "load_stacks"]


def load_spec(paths: Sequence[Path], *, strict_env: bool = True) -> DesiredState:
    """Load one stack from files and folders; raise SpecError listing every problem."""
    stacks, problems = _read_stacks(paths, strict_env=strict_env, one_stack=True)
    _raise_on_errors(problems)
    return _build_all(stacks, problems)[0]


def load_stacks(paths: Sequence[Path], *, strict_env: bool = False) -> tuple[DesiredState, ...]:
    """Load every stack the files declare (for validate); raise SpecError listing every problem."""
    stacks, problems = _read_stacks(paths, strict_env=strict_env, one_stack=False)
    _raise_on_errors(problems)
    return tuple(_build_all(stacks, problems))


def _read_stacks(
    paths: Sequence[Path], *, strict_env: bool, one_stack: bool
) -> tuple[list[StackSource], list[Problem]]:
    """Every stack and problem of the files. They are read without noting where each key and
    value is written (a third of the reading time), and once more with it only when there is
    a problem to locate: the same texts, so both readings see the same files."""
    found = find_spec_files(paths)
    texts = [(path, *read_spec_text(path)) for path in found.files]
    stacks, problems = _parse(found.problems, texts, strict_env, one_stack, marks=False)
    if problems:
        stacks, problems = _parse(found.problems, texts, strict_env, one_stack, marks=True)
    return stacks, problems


def _parse(
    found_problems: Sequence[Problem],
    texts: Sequence[tuple[Path, str | None, Problem | None]],
    strict_env: bool,
    one_stack: bool,
    *,
    marks: bool,
) -> tuple[list[StackSource], list[Problem]]:
    from reconciler.spec.yamlread import parse_yaml  # here: `spec.durations` users skip PyYAML

    problems = list(found_problems)
    docs: list[Document] = []
    for path, text, problem in texts:
        if problem is not None or text is None:
            problems += [problem] if problem else []
            continue
        doc = Document(file=str(path), folder=Path(os.path.abspath(path)).parent)
        read_problems = parse_yaml(doc, text, marks=marks)
        problems += read_problems
        if doc.data is None and read_problems:
            continue
        problems += _top_level_problems(doc) or schema_problems(doc)
        docs.append(doc)
    stacks, merge_problems = group_stacks(docs)
    problems += merge_problems
    for stack in stacks:
        problems += check_stack(stack, strict_env=strict_env)
    if one_stack:
        problems += mixed_stack_problems(stacks)
    return stacks, problems


def _top_level_problems(doc: Document) -> list[Problem]:
    if isinstance(doc.data, dict):
        return []
    return [
        doc.problem(
            (),
            f"the top level must be a mapping (version, stack, pods, jobs), got {_kind(doc.data)}",
            "start the file with `version: 1` and `stack: NAME`",
        )
    ]


def _kind(value: object) -> str:
    from reconciler.spec.document import describe

    return describe(value)


def _raise_on_errors(problems: list[Problem]) -> None:
    if any(problem.severity == "error" for problem in problems):
        raise SpecError(_ordered(problems))


def _ordered(problems: list[Problem]) -> list[Problem]:
    """Errors and warnings by file (in the order read), then line and column; no repeats."""
    file_order: dict[str, int] = {}
    for problem in problems:
        file_order.setdefault(problem.file, len(file_order))
    unique = list(dict.fromkeys(problems))
    return sorted(unique, key=lambda p: (file_order[p.file], p.line, p.col, p.path))


def _build_all(stacks: list[StackSource], problems: list[Problem]) -> list[DesiredState]:
    warnings = _ordered(problems)
    built = []
    for stack in stacks:
        files = set(stack.files)
        mine = [w for w in warnings if w.file in files]
        built.append(build_desired_state(stack, mine))
    return built
