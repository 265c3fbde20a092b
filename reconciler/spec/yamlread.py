"""Parse YAML text into plain data plus the line:col of every key and value (PyYAML's only home).

Hostile input is bounded: nesting deeper than MAX_DEPTH and documents that expand (through
aliases) to more than MAX_VALUES values are refused, duplicate keys are reported (PyYAML would
silently keep the last), and no YAML tag beyond the plain JSON-like ones is constructed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from reconciler.errors import Problem
from reconciler.spec.document import DocPath, Document, Mark, file_problem, format_path

MAX_DEPTH = 50
MAX_VALUES = 100_000

_TAG = "tag:yaml.org,2002:"
_SCALAR_TAGS = {_TAG + name for name in ("null", "bool", "int", "float", "str", "timestamp")}
_MAP_TAG = _TAG + "map"
_SEQ_TAG = _TAG + "seq"
_MERGE_TAG = _TAG + "merge"


_NO_MARK = Mark(0, 0)
_UNREADABLE = object()  # a value already reported; its key is left out to avoid follow-up errors


class _Refused(Exception):
    """The document is too deep or too big to read safely."""

    def __init__(self, message: str, hint: str, mark: Mark) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.mark = mark


def _mark(yaml_mark: yaml.Mark | None) -> Mark:
    if yaml_mark is None:
        return Mark(0, 0)
    return Mark(yaml_mark.line + 1, yaml_mark.column + 1)


def _too_deep(mark: Mark) -> _Refused:
    return _Refused(
        f"the document nests deeper than {MAX_DEPTH} levels",
        "a spec needs a handful of levels; is an alias referring to itself?",
        mark,
    )


class _BoundedLoader(yaml.SafeLoader):
    """A SafeLoader whose composer refuses documents nested deeper than MAX_DEPTH."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _too_deep(_mark(self.peek_event().start_mark))  # type: ignore[no-untyped-call]
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


_CLoader = getattr(yaml, "CSafeLoader", None)  # libyaml: composes ~10x faster than Python
_SHALLOW_INDENT = 4 * MAX_DEPTH  # a line indented further may nest deeper than MAX_DEPTH


_BRACKET = re.compile(r"[][{}]")
# a line (as str.splitlines cuts them) indented further than _SHALLOW_INDENT spaces
_DEEP_INDENT = re.compile(
    "(?:^|[\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]) {" + str(_SHALLOW_INDENT + 1) + "}"
)


def _shallow(text: str) -> bool:
    """Cheap check that `text` cannot nest deeper than MAX_DEPTH, so libyaml's recursive
    composer is safe to use; anything else goes through the bounded Python composer.
    Scans in C: only the brackets are walked in Python, and only when there are many."""
    if _DEEP_INDENT.search(text):
        return False
    if text.count("[") + text.count("{") <= MAX_DEPTH // 2:
        return True
    depth = deepest = 0
    for ch in _BRACKET.findall(text):
        if ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest <= MAX_DEPTH // 2


def _compose(text: str) -> tuple[yaml.SafeLoader, Node | None]:
    """The node graph of a single-document `text`, with libyaml when that is safe.

    Any YAML error is raised by the bounded Python composer, so messages do not depend on
    whether libyaml is installed.
    """
    if _CLoader is not None and _shallow(text):
        fast = _CLoader(text)
        try:
            return fast, fast.get_single_node()
        except yaml.YAMLError:
            fast.dispose()
    loader = _BoundedLoader(text)
    return loader, loader.get_single_node()


@dataclass
class _Converter:
    """Turns a composed node graph into plain data, recording marks and counting values."""

    loader: yaml.SafeLoader
    doc: Document
    marks: bool = True  # note where each key and value is written (for problems)
    problems: list[Problem] = field(default_factory=list)
    values: int = 0

    def convert(self, node: Node, path: DocPath, depth: int) -> object:
        self._count(1, node)
        if depth > MAX_DEPTH:
            raise _too_deep(_mark(node.start_mark))
        if self.marks:
            self.doc.value_marks[path] = _mark(node.start_mark)
        if isinstance(node, ScalarNode):
            return self._scalar(node, path)
        if isinstance(node, SequenceNode) and node.tag == _SEQ_TAG:
            items = (self.convert(item, (*path, i), depth + 1) for i, item in enumerate(node.value))
            return [item for item in items if item is not _UNREADABLE]
        if isinstance(node, MappingNode) and node.tag == _MAP_TAG:
            return self._mapping(node, path, depth)
        self.problems.append(self._unsupported_tag(node, path))
        return _UNREADABLE

    def _count(self, values: int, node: Node) -> None:
        self.values += values
        if self.values > MAX_VALUES:
            raise _Refused(
                f"the document expands to more than {MAX_VALUES} values",
                "aliases (*name) that repeat big anchors multiply; a spec needs far fewer values",
                _mark(node.start_mark),
            )

    def _unsupported_tag(self, node: Node, path: DocPath) -> Problem:
        tag = node.tag.replace(_TAG, "!!")
        return self.doc.problem(
            path,
            f"the YAML tag {tag} is not supported in a spec",
            "use plain strings, numbers, booleans, lists and mappings",
        )

    def _scalar(self, node: ScalarNode, path: DocPath) -> object:
        if node.tag not in _SCALAR_TAGS:
            self.problems.append(self._unsupported_tag(node, path))
            return _UNREADABLE
        try:
            value = self.loader.construct_object(node)
            if not isinstance(value, str):  # the text as written of numbers, booleans, null
                self.doc.raw_scalars[path] = node.value
            return value
        except (yaml.YAMLError, ValueError, OverflowError) as exc:
            if node.tag in (_TAG + "int", _TAG + "float"):
                message, hint = "the number has too many digits", "write a smaller number"
            else:
                reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                message, hint = f"cannot read this value: {reason}", "quote it to make it a string"
            self.problems.append(self.doc.problem(path, message, hint))
            return _UNREADABLE

    def _pairs(self, node: MappingNode, depth: int) -> list[tuple[Node, Node, bool]]:
        """The mapping's key/value nodes, then those merged in with `<<:` (marked True)."""
        if depth > MAX_DEPTH:
            raise _too_deep(_mark(node.start_mark))
        self._count(len(node.value), node)
        own: list[tuple[Node, Node, bool]] = []
        merged: list[tuple[Node, Node, bool]] = []
        for key_node, value_node in node.value:
            if key_node.tag != _MERGE_TAG:
                own.append((key_node, value_node, False))
                continue
            sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
            for source in sources:
                if isinstance(source, MappingNode):
                    merged.extend((k, v, True) for k, v, _ in self._pairs(source, depth + 1))
                else:
                    raise _Refused(
                        "`<<:` merges a mapping (or a list of mappings) into this one",
                        "write `<<: *anchor` where the anchor names a mapping",
                        _mark(source.start_mark),
                    )
        return own + merged

    def _mapping(self, node: MappingNode, path: DocPath, depth: int) -> dict[str, object]:
        result: dict[str, object] = {}
        for key_node, value_node, is_merged in self._pairs(node, depth):
            key_mark = _mark(key_node.start_mark) if self.marks else _NO_MARK
            if not isinstance(key_node, ScalarNode):
                self.problems.append(
                    self.doc.problem(
                        path,
                        f"a key at {key_mark.line}:{key_mark.col} is not a plain name",
                        "keys are names like `image` or `trainer`",
                    )
                )
                continue
            key = key_node.value
            key_path = (*path, key)
            if key in result:
                if is_merged:
                    continue  # `<<:` fills only keys the mapping does not set itself
                first = self.doc.key_marks.get(key_path, Mark(0, 0))
                self.problems.append(
                    Problem(
                        file=self.doc.file,
                        line=key_mark.line,
                        col=key_mark.col,
                        path=format_path(key_path),
                        message=f"duplicate key {key!r}: first at line {first.line}, again at "
                        f"line {key_mark.line}",
                        hint="remove one of them; YAML would silently keep only the last",
                    )
                )
                continue
            if self.marks:
                self.doc.key_marks[key_path] = key_mark
            value = self.convert(value_node, key_path, depth + 1)
            if value is not _UNREADABLE:
                result[key] = value
        return result


def _syntax_problem(file: str, exc: yaml.YAMLError, text: str) -> Problem:
    if isinstance(exc, yaml.reader.ReaderError):
        position = int(exc.position)
        line = text.count("\n", 0, position) + 1
        col = position - (text.rfind("\n", 0, position) + 1) + 1
        character = exc.character
        code = character if isinstance(character, int) else ord(str(character)[:1] or "\0")
        return file_problem(
            file,
            f"the file contains a character YAML does not allow (U+{code:04X})",
            "is it a binary file? a spec is UTF-8 text",
            line,
            col,
        )
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = _mark(exc.problem_mark or exc.context_mark)
        if exc.problem == "but found another document" or (
            exc.context == "expected a single document in the stream"
        ):
            return file_problem(
                file,
                "the file holds more than one YAML document (a `---` separator)",
                "put one spec per file; split the others into their own files",
                mark.line,
                mark.col,
            )
        context = f" {exc.context}" if exc.context else ""
        problem = exc.problem or "invalid YAML"
        return file_problem(
            file,
            f"YAML syntax error: {problem}{context}",
            "check the indentation, colons and quotes on this line and the one before",
            mark.line,
            mark.col,
        )
    return file_problem(file, f"YAML error: {exc}")


def parse_yaml(doc: Document, text: str, *, marks: bool = True) -> list[Problem]:
    """Fill `doc.data` (and its marks, when `marks`) from `text`; return the problems found
    while reading. Without marks a problem is found just the same, but its place is not."""
    loader: yaml.SafeLoader | None = None
    try:
        loader, root = _compose(text)
        if root is None:
            return [
                file_problem(
                    doc.file,
                    "the file is empty",
                    "a spec starts with `version: 1` and `stack: NAME`",
                )
            ]
        converter = _Converter(loader, doc, marks)
        data = converter.convert(root, (), 1)
        doc.data = None if data is _UNREADABLE else data
        return converter.problems
    except _Refused as exc:
        doc.data = None
        return [file_problem(doc.file, exc.message, exc.hint, exc.mark.line, exc.mark.col)]
    except yaml.YAMLError as exc:
        doc.data = None
        return [_syntax_problem(doc.file, exc, text)]
    except RecursionError:
        doc.data = None
        return [file_problem(doc.file, "the document is nested too deeply to read")]
    finally:
        if loader is not None:
            loader.dispose()
