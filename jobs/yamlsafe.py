"""Hostile-input YAML: parse events with the safe loader, build position-marked
nodes ourselves, and refuse what a job file never needs.

Why not ``yaml.safe_load``: it drops line numbers, silently keeps the last of
two duplicate keys, and applies YAML 1.1 coercions (``1:30`` -> 90,
``no`` -> False, ``0777`` -> 511). Why not ``yaml.compose``: its composer
recurses per nesting level (10,000-deep input raises ``RecursionError``) and
shares aliased nodes, so a naive walk of an alias bomb never ends
(pyyaml#235, security.md K4). Here an explicit stack caps depth and node
count, scalars keep their source text (``jobs.scalars`` resolves them against
the expected type), and tags, anchors and aliases are refused: nothing is
ever constructed from a tag, and nothing is ever expanded.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import yaml

from jobs.errors import Problem

MAX_DEPTH = 50
MAX_NODES = 50_000

# libyaml when available (faster, same events); both are safe loaders.
_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(slots=True)
class Node:
    """A position in the file (1-based)."""

    line: int
    col: int


@dataclass(slots=True)
class Scalar(Node):
    """A scalar's exact source text; ``plain`` is False when quoted or a block."""

    text: str
    plain: bool


@dataclass(slots=True)
class Seq(Node):
    """A sequence."""

    items: list[Node] = field(default_factory=list)


@dataclass(slots=True)
class Map(Node):
    """A mapping with unique string keys, in file order."""

    entries: dict[str, tuple[Scalar, Node]] = field(default_factory=dict)


@dataclass(slots=True)
class Poison(Node):
    """Stands in for a node that was already reported (tag, anchor, alias):
    validators skip it silently so one mistake gives one error."""


class _Fatal(Exception):
    """The rest of the file cannot be read."""


@dataclass(slots=True)
class _Frame:
    node: Seq | Map
    path: str
    poisoned: bool
    key: Node | None = None  # a mapping's key waiting for its value


def child_path(path: str, key: str | int) -> str:
    """``a.b``, ``a[3]``, or ``a["x y"]`` for keys that are not identifiers."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    if key.replace("_", "a").replace("-", "a").isalnum() and key.isascii():
        return f"{path}.{key}" if path else key
    return f"{path}[{key!r}]"


def _short_tag(tag: str) -> str:
    if tag.startswith("tag:yaml.org,2002:"):
        tag = "!!" + tag[len("tag:yaml.org,2002:") :]
    return tag if len(tag) <= 60 else tag[:60] + "..."


class _Composer:
    def __init__(self, filename: str, problems: list[Problem]) -> None:
        self.filename = filename
        self.problems = problems
        self.stack: list[_Frame] = []
        self.root: Node | None = None
        self.anchors: set[str] = set()
        self.count = 0
        self.documents = 0

    def report(self, line: int, col: int, path: str, message: str) -> None:
        self.problems.append(Problem(self.filename, line, col, path, message))

    def fatal(self, line: int, col: int, path: str, message: str) -> _Fatal:
        self.report(line, col, path, message)
        return _Fatal()

    def here(self) -> str:
        """The path of the node that the next event starts."""
        if not self.stack:
            return ""
        top = self.stack[-1]
        if isinstance(top.node, Seq):
            return child_path(top.path, len(top.node.items))
        if top.key is None:
            return top.path
        return child_path(top.path, top.key.text if isinstance(top.key, Scalar) else "?")

    def feed(self, event: yaml.Event) -> None:
        mark = event.start_mark
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        if isinstance(event, yaml.DocumentStartEvent):
            self.documents += 1
            if self.documents > 1:
                raise self.fatal(line, col, "", "a job file holds exactly one YAML document")
            return
        if not isinstance(event, yaml.NodeEvent | yaml.CollectionEndEvent):
            return
        if isinstance(event, yaml.CollectionEndEvent):
            self.close()
            return
        self.count += 1
        if self.count > MAX_NODES:
            raise self.fatal(line, col, self.here(), f"more than {MAX_NODES} YAML nodes")
        self.open(event, line, col)

    def open(self, event: yaml.NodeEvent, line: int, col: int) -> None:
        path = self.here()
        poisoned = self.check_tag_and_anchor(event, line, col, path)
        if isinstance(event, yaml.AliasEvent):
            self.attach(Poison(line, col))
        elif isinstance(event, yaml.ScalarEvent):
            plain = event.style in (None, "")
            node: Node = Scalar(line, col, event.value, plain)
            self.attach(Poison(line, col) if poisoned else node)
        else:
            if len(self.stack) >= MAX_DEPTH:
                raise self.fatal(line, col, path, f"nesting is deeper than {MAX_DEPTH} levels")
            coll: Seq | Map = (
                Seq(line, col) if isinstance(event, yaml.SequenceStartEvent) else Map(line, col)
            )
            self.stack.append(_Frame(coll, path, poisoned))

    def check_tag_and_anchor(self, event: yaml.NodeEvent, line: int, col: int, path: str) -> bool:
        """Report tags, anchors and unknown aliases; True if the node must be poisoned."""
        if isinstance(event, yaml.AliasEvent):
            if event.anchor not in self.anchors:
                self.report(line, col, path, "YAML aliases (*name) are not allowed in job files")
            return False
        poisoned = False
        if event.anchor is not None:
            self.anchors.add(event.anchor)
            message = (
                "YAML anchors and aliases (&name, *name) are not allowed in job files; "
                "use 'defaults:' for shared settings"
            )
            self.report(line, col, path, message)
            poisoned = True
        tag = getattr(event, "tag", None)
        if tag is not None:
            message = (
                f"YAML tags are not allowed in job files ({_short_tag(tag)}); "
                "quote the value if it is a string"
            )
            self.report(line, col, path, message)
            poisoned = True
        return poisoned

    def close(self) -> None:
        frame = self.stack.pop()
        node: Node = Poison(frame.node.line, frame.node.col) if frame.poisoned else frame.node
        self.attach(node)

    def attach(self, node: Node) -> None:
        if not self.stack:
            self.root = node
            return
        top = self.stack[-1]
        parent = top.node
        if isinstance(parent, Seq):
            parent.items.append(node)
        elif top.key is None:
            top.key = node
        else:
            key, top.key = top.key, None
            self.add_entry(parent, top.path, key, node)

    def add_entry(self, parent: Map, path: str, key: Node, value: Node) -> None:
        if isinstance(key, Poison):
            return
        if not isinstance(key, Scalar):
            self.report(key.line, key.col, path, "mapping keys must be strings")
            return
        first = parent.entries.get(key.text)
        if first is not None:
            self.report(
                key.line,
                key.col,
                child_path(path, key.text),
                f"duplicate key {key.text!r} (first defined on line {first[0].line})",
            )
            return
        parent.entries[key.text] = (key, value)


def compose(text: str, filename: str, problems: list[Problem]) -> Node | None:
    """Parse one YAML document into marked nodes.

    Recoverable mistakes (tags, anchors, duplicate keys) are appended to
    *problems* and the offending node becomes ``Poison``. Returns ``None``
    when the file cannot be read any further (syntax error, size or depth
    cap); the reason is in *problems*. An empty document is a ``Scalar``
    holding ``""``.
    """
    composer = _Composer(filename, problems)
    loader = _Loader(text)
    try:
        while loader.check_event():
            composer.feed(loader.get_event())  # type: ignore[no-untyped-call]
    except _Fatal:
        return None
    except yaml.MarkedYAMLError as exc:
        _report_syntax(composer, exc)
        return None
    except yaml.YAMLError as exc:  # ReaderError: a character YAML forbids
        _report_reader(composer, text, exc)
        return None
    finally:
        loader.dispose()
    return composer.root if composer.root is not None else Scalar(1, 1, "", True)


def _report_syntax(composer: _Composer, exc: yaml.MarkedYAMLError) -> None:
    mark = exc.problem_mark or exc.context_mark
    line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    problem = exc.problem or "invalid YAML"
    context = f" {exc.context}" if exc.context else ""
    composer.report(line, col, "", f"YAML syntax error: {problem}{context}")


def _report_reader(composer: _Composer, text: str, exc: yaml.YAMLError) -> None:
    position = getattr(exc, "position", 0)
    position = position if isinstance(position, int) and 0 <= position <= len(text) else 0
    line = text.count("\n", 0, position) + 1
    col = position - (text.rfind("\n", 0, position) + 1) + 1
    character = getattr(exc, "character", None)
    if isinstance(character, int):
        character = chr(character) if 0 <= character <= 0x10FFFF else None
    what = f" ({character!r})" if isinstance(character, str) else ""
    composer.report(line, col, "", f"character not allowed in YAML{what}")
