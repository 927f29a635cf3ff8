"""Links of a Markdown document: a small scanner, not a full CommonMark parser.

Found: inline links ``[text](url "title")`` and images ``![alt](url)``
(nested, e.g. a badge image inside a link), reference definitions
``[id]: url`` with their uses (``[text][id]``, ``[text][]``, ``[id]``), and
autolinks ``<https://…>`` / ``<user@host>`` (as ``mailto:``). Fenced code
blocks (three or more backticks or tildes), indented code blocks and code
spans are skipped;
backslash escapes and balanced brackets/parentheses are honoured, and entity
references in destinations are decoded.

A reference use is reported at the line of the use with the definition's URL
(kind ``markdown-ref``); a definition nobody uses is reported once at its own
line, so its URL is still checked. Inline links and code spans may wrap
across lines of one paragraph; the line reported is that of the opening ``[``.

Limits: raw HTML inside Markdown is not parsed (run ``extract_html`` on it if
needed); a definition's title on the next line is ignored; brackets are
paired in one pass and destinations nest at most ``MAX_PAREN_DEPTH``
parentheses, which keeps hostile inputs linear; indented blocks after a
list item are taken for list content, never for code; block quotes and
list markers are left in the text, which only matters for definitions.
"""

from __future__ import annotations

import html
import re
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass

from .model import Link, LinkKind, collapse, make_link

_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})(.*)")
_LIST_ITEM = re.compile(r" {0,3}(?:[-+*]|[0-9]{1,9}[.)])(?:[ \t]|$)")
_DEFINITION = re.compile(
    r" {0,3}\[((?:[^\[\]\\]|\\.){1,999})\]:[ \t]*(?:<([^<>\n]*)>|(\S+))"
    r"""(?:[ \t]+(?:"[^"\n]*"|'[^'\n]*'|\([^()\n]*\)))?[ \t]*$"""
)
_AUTOLINK = re.compile(r"<([A-Za-z][A-Za-z0-9+.\-]{1,31}:[^\x00-\x20<>]*)>")
_EMAIL = re.compile(
    r"<([A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*)>"
)
_ESCAPED = re.compile(r"\\([!-/:-@\[-`{-~])")
_BACKTICKS = re.compile(r"`+")
_NOT_NEWLINE = re.compile(r"[^\n]")
_BRACKET_OR_ESCAPE = re.compile(r"[\[\]\\]|$")
MAX_PAREN_DEPTH = 32  # as in CommonMark §6.3; also bounds the work per "(".
_TITLE_CLOSE = {'"': '"', "'": "'", "(": ")"}


@dataclass(slots=True)
class _Block:
    """A run of non-code lines: its text and the line number of each line start."""

    first_line: int
    lines: list[str]


@dataclass(slots=True)
class _Definition:
    url: str
    line: int
    used: bool = False


def extract_markdown(text: str, base: str, *, source: str) -> list[Link]:
    """Every link in the Markdown *text*, resolved against *base*, ordered by line."""
    blocks = list(_blocks(text.split("\n")))
    definitions: dict[str, _Definition] = {}
    for block in blocks:
        _take_definitions(block, definitions)
    links: list[Link] = []
    for block in blocks:
        _Scanner(block, definitions, base, source, links).run()
    links.extend(
        make_link(d.url, base, source=source, line=d.line, kind="markdown-ref")
        for d in definitions.values()
        if not d.used
    )
    links.sort(key=lambda link: link.line)  # stable: same-line links keep their order
    return links


def _blocks(lines: list[str]) -> Iterator[_Block]:
    """Paragraph-level runs of lines outside fenced and indented code."""
    fence: tuple[str, int] | None = None
    current: _Block | None = None
    blank_before, in_list = True, False
    for number, raw in enumerate(lines, 1):
        line = raw.rstrip("\r")
        if fence is not None:
            stripped = line.lstrip(" ")
            run = len(stripped) - len(stripped.lstrip(fence[0]))
            if len(line) - len(stripped) < 4 and run >= fence[1] and not stripped[run:].strip():
                fence = None
            continue
        opening = _FENCE.match(line)
        if opening is not None and not (opening[1][0] == "`" and "`" in opening[2]):
            fence, current = (opening[1][0], len(opening[1])), None
            continue
        if not line.strip():
            blank_before, current = True, None
            continue
        indented = line.startswith(("    ", "\t"))
        if indented and blank_before and not in_list:
            continue  # indented code block (CommonMark §4.4)
        if _LIST_ITEM.match(line):
            in_list = True
        elif not indented:
            in_list = False
        blank_before = False
        if current is None:
            current = _Block(number, [])
            yield current
        current.lines.append(line)


def _take_definitions(block: _Block, definitions: dict[str, _Definition]) -> None:
    for index, line in enumerate(block.lines):
        match = _DEFINITION.match(line)
        if match is None:
            continue
        url = match[2] if match[2] is not None else match[3]
        # The first definition of a label wins (CommonMark §4.7).
        definitions.setdefault(
            _label(match[1]), _Definition(_unescape(url), block.first_line + index)
        )
        block.lines[index] = ""  # a definition is not paragraph text


def _label(text: str) -> str:
    return " ".join(text.split()).casefold()


def _unescape(url: str) -> str:
    return html.unescape(_ESCAPED.sub(r"\1", url))


class _Scanner:
    """Inline links of one block, appended to *links*."""

    def __init__(
        self,
        block: _Block,
        definitions: dict[str, _Definition],
        base: str,
        source: str,
        links: list[Link],
    ) -> None:
        self.text = _mask_code_spans("\n".join(block.lines))
        self.pairs = _bracket_pairs(self.text)
        self.starts = [0]
        for line in block.lines[:-1]:
            self.starts.append(self.starts[-1] + len(line) + 1)
        self.first_line = block.first_line
        self.definitions = definitions
        self.base = base
        self.source = source
        self.links = links

    def run(self) -> None:
        self._scan(0, len(self.text))

    def _line(self, pos: int) -> int:
        return self.first_line + bisect_right(self.starts, pos) - 1

    def _emit(self, url: str, pos: int, kind: LinkKind, text: str | None) -> None:
        line = self._line(pos)
        self.links.append(
            make_link(url, self.base, source=self.source, line=line, kind=kind, text=text)
        )

    def _scan(self, pos: int, end: int) -> None:
        text = self.text
        while pos < end:
            char = text[pos]
            if char == "\\":
                pos += 2
            elif char == "<":
                pos = self._autolink(pos)
            elif char == "[":
                pos = self._bracket(pos, end)
            else:
                pos += 1

    def _autolink(self, pos: int) -> int:
        match = _AUTOLINK.match(self.text, pos)
        if match is not None:
            self._emit(match[1], pos, "autolink", None)
            return match.end()
        match = _EMAIL.match(self.text, pos)
        if match is not None:
            self._emit("mailto:" + match[1], pos, "autolink", None)
            return match.end()
        return pos + 1

    def _bracket(self, pos: int, end: int) -> int:
        text = self.text
        close = self.pairs.get(pos)
        if close is None or close >= end:
            return pos + 1
        label = text[pos + 1 : close]
        shown = collapse(_ESCAPED.sub(r"\1", label))
        after = close + 1
        if after < end and text[after] == "(":
            destination = _destination(text, after + 1, end)
            if destination is not None:
                url, resume = destination
                if url:
                    self._emit(url, pos, "markdown", shown)
                self._scan(pos + 1, close)  # e.g. a badge image inside the link text
                return resume
        ref_end = after
        if after < end and text[after] == "[":
            ref_close = self.pairs.get(after)
            if ref_close is not None and ref_close < end:
                ref_end = ref_close + 1
                label = text[after + 1 : ref_close] or label
        elif after < end and text[after] == ":":
            return pos + 1
        definition = self.definitions.get(_label(label))
        if definition is None:
            return pos + 1  # plain brackets: links may still sit inside
        definition.used = True
        self._emit(definition.url, pos, "markdown-ref", shown)
        self._scan(pos + 1, close)
        return ref_end


def _bracket_pairs(text: str) -> dict[int, int]:
    """Each ``[`` that has a matching ``]`` (escapes honoured, nesting counted) → that ``]``."""
    pairs: dict[int, int] = {}
    stack: list[int] = []
    pos = 0
    while True:
        found = _BRACKET_OR_ESCAPE.search(text, pos)
        pos = found.start() if found is not None else len(text)
        if pos >= len(text):
            return pairs
        char = text[pos]
        if char == "\\":
            pos += 2
            continue
        if char == "[":
            stack.append(pos)
        elif stack:
            pairs[stack.pop()] = pos
        pos += 1


def _destination(text: str, pos: int, end: int) -> tuple[str, int] | None:
    """``url`` and the index past ``)`` of a link destination starting at *pos*."""
    pos = _skip_space(text, pos, end)
    if pos < end and text[pos] == "<":
        close = text.find(">", pos + 1, end)
        if close < 0 or "\n" in text[pos:close]:
            return None
        url, pos = text[pos + 1 : close], close + 1
    else:
        start, depth = pos, 0
        while pos < end and text[pos] not in " \t\n":
            char = text[pos]
            if char == "\\":
                pos += 1
            elif char == "(":
                depth += 1
                if depth > MAX_PAREN_DEPTH:
                    return None
            elif char == ")":
                if not depth:
                    break
                depth -= 1
            pos += 1
        url = text[start:pos]
    pos = _skip_space(text, pos, end)
    if pos < end and text[pos] in _TITLE_CLOSE:
        close = text.find(_TITLE_CLOSE[text[pos]], pos + 1, end)
        if close < 0:
            return None
        pos = _skip_space(text, close + 1, end)
    if pos >= end or text[pos] != ")":
        return None
    return _unescape(url), pos + 1


def _skip_space(text: str, pos: int, end: int) -> int:
    while pos < end and text[pos] in " \t\n":
        pos += 1
    return pos


def _mask_code_spans(text: str) -> str:
    """*text* with each code span blanked (newlines kept, so offsets still map to lines).

    A span closes at the next backtick run of the same length (CommonMark
    §6.1); runs are listed once and grouped by length, so this stays linear.
    """
    runs = [m.span() for m in _BACKTICKS.finditer(text) if not _escaped(text, m.start())]
    by_length: dict[int, list[int]] = {}
    for index, (start, stop) in enumerate(runs):
        by_length.setdefault(stop - start, []).append(index)
    cursor = dict.fromkeys(by_length, 0)
    pieces: list[str] = []
    done = 0
    for start, stop in runs:
        if start < done:
            continue  # inside a span already blanked
        same = by_length[stop - start]
        position = cursor[stop - start]
        while position < len(same) and runs[same[position]][0] < stop:
            position += 1
        cursor[stop - start] = position
        if position == len(same):
            continue  # an unmatched run is literal text
        end = runs[same[position]][1]
        pieces.append(text[done:start])
        pieces.append(_NOT_NEWLINE.sub(" ", text[start:end]))
        done = end
    pieces.append(text[done:])
    return "".join(pieces)


def _escaped(text: str, pos: int) -> bool:
    return pos > 0 and text[pos - 1] == "\\"
