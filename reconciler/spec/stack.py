"""Group parsed documents into stacks; merge each stack's defaults, pods and jobs across files."""

from __future__ import annotations

from dataclasses import dataclass, field

from reconciler.errors import Problem
from reconciler.spec.document import DocPath, Document


@dataclass(frozen=True)
class Entry:
    """A value from one file, with where it was written."""

    doc: Document
    path: DocPath
    value: object

    @property
    def location(self) -> str:
        return self.doc.location(self.path, at_key=True)


@dataclass
class StackSource:
    """The files of one stack with their sections merged; each entry remembers its file."""

    name: str | None  # None when the files do not name a (valid) stack
    docs: list[Document] = field(default_factory=list)
    defaults: dict[str, Entry] = field(default_factory=dict)
    pods: dict[str, Entry] = field(default_factory=dict)
    jobs: dict[str, Entry] = field(default_factory=dict)
    endpoints: dict[str, Entry] = field(default_factory=dict)

    @property
    def files(self) -> tuple[str, ...]:
        return tuple(doc.file for doc in self.docs)


_KINDS = {"defaults": "defaults key", "pods": "pod", "jobs": "job", "endpoints": "endpoint"}


def group_stacks(docs: list[Document]) -> tuple[list[StackSource], list[Problem]]:
    """One StackSource per distinct `stack:` (in order of first appearance)."""
    stacks: dict[str | None, StackSource] = {}
    problems: list[Problem] = []
    for doc in docs:
        if not isinstance(doc.data, dict):
            continue
        name = doc.data.get("stack")
        key = name if isinstance(name, str) else None
        source = stacks.setdefault(key, StackSource(key))
        source.docs.append(doc)
        for section, kind in _KINDS.items():
            entries = doc.data.get(section)
            if not isinstance(entries, dict):
                continue
            merged: dict[str, Entry] = getattr(source, section)
            for entry_name, value in entries.items():
                entry = Entry(doc, (section, entry_name), value)
                if entry_name in merged:
                    problems.append(
                        doc.problem(
                            entry.path,
                            f"{kind} {entry_name!r} is declared twice: here and at "
                            f"{merged[entry_name].location}",
                            "names are unique within a stack; rename or remove one",
                            at_key=True,
                        )
                    )
                    continue
                merged[entry_name] = entry
    return list(stacks.values()), problems


def mixed_stack_problems(stacks: list[StackSource]) -> list[Problem]:
    """plan/apply work on one stack: flag each file whose stack differs from the first one's."""
    named = [source for source in stacks if source.name is not None]
    if len(named) < 2:
        return []
    first = named[0]
    first_place = first.docs[0].location(("stack",))
    return [
        doc.problem(
            ("stack",),
            f"stack {other.name!r} differs from stack {first.name!r} at {first_place}",
            "the files of one -f set or folder make one stack; give them the same `stack:`, "
            "or pass one stack's files at a time",
        )
        for other in named[1:]
        for doc in other.docs
    ]


MERGED_KEY_BY_KEY = ("env", "disk", "gpu")


def effective_pod(stack: StackSource, pod: Entry) -> dict[str, Entry]:
    """A pod's fields with the stack's `defaults:` merged in (env, disk and gpu key by key)."""
    fields = dict(stack.defaults)
    if not isinstance(pod.value, dict):
        return fields
    for key, value in pod.value.items():
        own = Entry(pod.doc, (*pod.path, key), value)
        inherited = fields.get(key)
        if (
            key in MERGED_KEY_BY_KEY
            and inherited is not None
            and isinstance(inherited.value, dict)
            and isinstance(value, dict)
        ):
            own = Entry(pod.doc, own.path, {**inherited.value, **value})
        fields[key] = own
    return fields


def _own(pod: Entry, entry: Entry) -> bool:
    return entry.doc is pod.doc and entry.path[: len(pod.path)] == pod.path


def is_cpu_pod(stack: StackSource, pod: Entry) -> bool:
    """Whether the pod is a CPU pod: `cpu:` from the pod itself, or from `defaults:` when the
    pod sets no `gpu:` of its own (a pod's own machine wins over the defaults')."""
    fields = effective_pod(stack, pod)
    cpu, gpu = fields.get("cpu"), fields.get("gpu")
    if cpu is None:
        return False
    if gpu is None:
        return True
    return _own(pod, cpu) and not _own(pod, gpu)


def machine_conflict(stack: StackSource, pod: Entry) -> bool:
    """`gpu:` and `cpu:` both set at the same level (both the pod's, or both inherited)."""
    fields = effective_pod(stack, pod)
    cpu, gpu = fields.get("cpu"), fields.get("gpu")
    return cpu is not None and gpu is not None and _own(pod, cpu) == _own(pod, gpu)
