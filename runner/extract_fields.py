"""Apply extractors to one complete body: parse once, query each field.

Runs on the event loop for small bodies and in a worker thread for large
ones (``runner.extract`` decides), so everything here is synchronous and
thread-safe: parsers are made per call, and compiled XPath objects are kept
per thread because lxml serialises the calls of one ``XPath`` object with a
lock (a thread busy with a 2 MB page would stall the loop's small pages).

Each field ends as a value or an error message; nothing raised by a field
(a conversion, an XPath evaluation, a JMESPath type error) escapes it.
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections.abc import Mapping
from typing import Any, Literal, TypeAlias

from jmespath.exceptions import JMESPathError
from lxml import etree
from yarl import URL

from jobs.checks import check_url
from jobs.extract import compile_jmespath, compile_regex, compile_xpath, css_to_xpath
from jobs.model import Extractor, Fields, Follow

DocKind: TypeAlias = Literal["html", "xml", "json", "text"]
MAX_ITEMS = 10_000  # list items kept per field
MAX_FIELD_CHARS = 1024 * 1024  # text per field; larger values are an error, not a record
MAX_LINKS = 1000  # follow links taken from one page
MAX_DEPTH = 64  # nesting of a JSON value kept in a record (records are walked recursively)
KINDS_FOR: dict[str, frozenset[DocKind]] = {
    "css": frozenset({"html", "xml"}),
    "xpath": frozenset({"html", "xml"}),
    "json": frozenset({"json"}),
    "regex": frozenset({"html", "xml", "json", "text"}),
}
_INT = re.compile(r"[-+]?[0-9]{1,30}")
_FLOAT = re.compile(r"[-+]?(?:[0-9]{1,30}(?:\.[0-9]{0,30})?|\.[0-9]{1,30})(?:[eE][-+]?[0-9]{1,3})?")
_local = threading.local()


class FieldError(Exception):
    """Why one field has no value; the message goes into ``data_errors``."""


class Doc:
    """One body, parsed at most once per kind of query."""

    def __init__(self, kind: DocKind, body: bytes, encoding: str | None, url: str) -> None:
        self.kind = kind
        self._body = body
        self._encoding = encoding
        self._url = url
        self._tree: etree._Element | None = None
        self._json: Any = None
        self._text: str | None = None
        self._parsed = False
        self._failure: str | None = None
        self._base: URL | None = None

    def tree(self) -> etree._Element | None:
        """The document's root element (None for an empty document)."""
        if not self._parsed:
            self._parsed = True
            try:
                self._tree = etree.fromstring(self._body, self._parser())
            except (etree.LxmlError, LookupError) as exc:
                self._failure = f"cannot parse {self.kind.upper()}: {_short(exc)}"
        if self._failure is not None:
            raise FieldError(self._failure)
        return self._tree

    def _parser(self) -> etree.XMLParser | etree.HTMLParser:
        if self.kind == "xml":
            # No DTDs, entities or network: a hostile XML body stays data (XXE, bombs).
            return etree.XMLParser(
                resolve_entities=False, no_network=True, load_dtd=False, recover=True
            )
        # etree's parser, not lxml.html's: that one looks up a Python class for
        # every element it hands out, which is slow and holds the GIL.
        return etree.HTMLParser(encoding=self._encoding, no_network=True)

    def json(self) -> Any:
        """The body as JSON."""
        if not self._parsed:
            self._parsed = True
            try:
                self._json = json.loads(self._body)
            except (ValueError, RecursionError) as exc:
                self._failure = f"invalid JSON: {_short(exc)}"
        if self._failure is not None:
            raise FieldError(self._failure)
        return self._json

    def text(self) -> str:
        """The body as text (its charset, else UTF-8; bad bytes replaced)."""
        if self._text is None:
            try:
                self._text = self._body.decode(self._encoding or "utf-8", "replace")
            except LookupError:
                self._text = self._body.decode("utf-8", "replace")
        return self._text

    def base(self) -> URL:
        """What relative links resolve against: ``<base href>`` over the final URL."""
        if self._base is None:
            self._base = URL(self._url)
            root = self.tree() if self.kind == "html" else None
            if root is not None:
                href = root.xpath("string((//base[@href])[1]/@href)")
                if isinstance(href, str) and href.strip():
                    self._base = _join(self._base, href.strip()) or self._base
        return self._base


def apply_fields(
    doc: Doc | None, fields: Fields, refusal: str | None, content_type: str | None
) -> tuple[dict[str, Any], dict[str, str]]:
    """Values (and errors) of the body fields among *fields*, in order.

    *refusal* (e.g. "too large") is the error of every body field when the
    body was not kept.
    """
    data: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name, extractor in fields:
        kinds = KINDS_FOR.get(extractor.kind)
        if kinds is None:
            continue  # title and header fields are read elsewhere
        try:
            if refusal is not None:
                raise FieldError(refusal)
            if doc is None or doc.kind not in kinds:
                got = (content_type or "none")[:100]
                raise FieldError(f"{extractor.kind} reads {_wanted(kinds)}; content type is {got}")
            data[name] = _budget(field_value(doc, extractor))
        except FieldError as exc:
            data[name] = [] if extractor.all else None
            errors[name] = str(exc)
    return data, errors


def field_value(doc: Doc, extractor: Extractor) -> Any:
    """One field's value: the first match (or None), or every match with ``all``."""
    try:
        raw = _RAW[extractor.kind](doc, extractor)
    except etree.XPathError as exc:
        raise FieldError(f"XPath failed: {_short(exc)}") from None
    except JMESPathError as exc:
        raise FieldError(f"JMESPath failed: {_short(exc)}") from None
    if extractor.kind == "json" and not extractor.all:
        return _post(raw, extractor, doc) if not isinstance(raw, list | dict) else raw
    items = [_post(item, extractor, doc) for item in raw[:MAX_ITEMS]]
    if extractor.all:
        return items
    return items[0] if items else None


def header_value(values: list[str], extractor: Extractor, url: str) -> tuple[Any, str | None]:
    """A header field from the response's values of that header: ``(value, error)``."""
    doc = Doc("text", b"", None, url)
    try:
        items = [_post(v, extractor, doc) for v in values[:MAX_ITEMS]]
    except FieldError as exc:
        return ([] if extractor.all else None), str(exc)
    return (items if extractor.all else (items[0] if items else None)), None


def follow_links(doc: Doc | None, follow: Follow, url: str) -> tuple[str, ...]:
    """Absolute http(s) links found by the follow rule, fragments dropped, in page order."""
    if doc is None or doc.kind not in KINDS_FOR[follow.rule.kind]:
        return ()
    try:
        found = field_value(doc, follow.rule)
    except FieldError:
        return ()
    host = URL(url).host
    links: dict[str, None] = {}
    for item in found:
        if not isinstance(item, str):
            continue
        try:
            link = URL(item)
        except ValueError:
            continue
        if link.scheme not in ("http", "https") or not link.host:
            continue
        if follow.same_host and link.host != host:
            continue
        text = str(link.with_fragment(None))
        try:
            check_url(text)
        except ValueError:
            continue
        links[text] = None
        if len(links) >= MAX_LINKS:
            break
    return tuple(links)


# ------------------------------------------------------------------ raw matches


def _css_or_xpath(doc: Doc, extractor: Extractor) -> list[Any]:
    root = doc.tree()
    if root is None:
        return []
    result = _xpath(extractor, doc.kind == "xml")(root)
    if not isinstance(result, list):
        return [result]  # count(), string(), boolean()...
    out: list[Any] = []
    for node in result:
        value: str | float | bool | None
        if isinstance(node, etree._Element):
            if extractor.attr is not None:
                value = node.get(extractor.attr)
                if value is None:
                    continue
            else:
                value = "".join(node.itertext()) if isinstance(node.tag, str) else node.text
        else:
            value = node if isinstance(node, str | float | bool) else str(node)
        out.append(value)
        if not extractor.all or len(out) >= MAX_ITEMS:
            break
    return out


def _json(doc: Doc, extractor: Extractor) -> Any:
    result = compile_jmespath(extractor.expr).search(doc.json())
    if not extractor.all:
        return result
    if result is None:
        return []
    return result if isinstance(result, list) else [result]


def _regex(doc: Doc, extractor: Extractor) -> list[Any]:
    pattern = compile_regex(extractor.expr)
    group = 1 if pattern.groups else 0
    text = doc.text()
    if not extractor.all:
        match = pattern.search(text)
        return [match.group(group)] if match else []
    out: list[Any] = []
    for match in pattern.finditer(text):
        out.append(match.group(group))
        if len(out) >= MAX_ITEMS:
            break
    return out


_RAW = {"css": _css_or_xpath, "xpath": _css_or_xpath, "json": _json, "regex": _regex}


def _xpath(extractor: Extractor, xml: bool) -> etree.XPath:
    cache: dict[tuple[str, str, bool, bool], etree.XPath] | None = getattr(_local, "xpaths", None)
    if cache is None:
        cache = _local.xpaths = {}
    key = (extractor.kind, extractor.expr, extractor.all, xml)
    compiled = cache.get(key)
    if compiled is None:
        text = extractor.expr
        if extractor.kind == "css":
            # A CSS selector is always a node-set: let libxml2 stop at what we keep,
            # so lxml does not build (holding the GIL) proxies for nodes we drop.
            limit = MAX_ITEMS if extractor.all else 1
            text = f"({css_to_xpath(text, xml=xml)})[position() <= {limit}]"
        if len(cache) >= 1024:
            cache.clear()
        compiled = cache[key] = compile_xpath(text)
    return compiled


# ------------------------------------------------------------------ post-steps


def _post(value: Any, extractor: Extractor, doc: Doc) -> Any:
    if isinstance(value, str):
        if extractor.strip:
            value = value.strip()
        if extractor.absolute:
            joined = _join(doc.base(), value)
            value = str(joined) if joined is not None else None
    if extractor.to is not None and value is not None:
        value = _convert(value, extractor.to)
    return value


def _join(base: URL, ref: str) -> URL | None:
    try:
        return base.join(URL(ref))
    except (ValueError, TypeError):
        return None  # not a URL reference (e.g. "http://[oops")


def _convert(value: Any, to: str) -> int | float:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise FieldError(f"cannot convert {_shown(value)} to {to}")
    if isinstance(value, str):
        text = value.strip()
        if to == "int" and _INT.fullmatch(text):
            return int(text)
        if to == "float" and _FLOAT.fullmatch(text):
            return float(text)
        raise FieldError(f"cannot convert {_shown(value)} to {to}")
    if to == "float":
        return float(value)
    if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
        raise FieldError(f"cannot convert {_shown(value)} to int")
    return int(value)


def _budget(value: Any) -> Any:
    if isinstance(value, str):
        size = len(value)
    elif isinstance(value, list) and all(isinstance(v, str | None) for v in value):
        size = sum(len(v) for v in value if v is not None)
    elif isinstance(value, list | dict):
        if _depth(value) > MAX_DEPTH:
            raise FieldError(f"value is nested more than {MAX_DEPTH} levels deep")
        size = len(json.dumps(value, default=str))
    else:
        return value
    if size > MAX_FIELD_CHARS:
        raise FieldError(f"value is larger than {MAX_FIELD_CHARS} characters; narrow the selector")
    return value


def _depth(value: Any) -> int:
    """How deeply *value* nests lists and dicts, without recursion (stops past the cap)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, list | dict) and level <= MAX_DEPTH:
            deepest = max(deepest, level)
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, level + 1) for child in children)
        elif isinstance(item, list | dict):
            return level
    return deepest


def _wanted(kinds: frozenset[DocKind]) -> str:
    if "text" in kinds:
        return "text responses"
    return " or ".join(k.upper() for k in sorted(kinds)) + " responses"


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _short(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:200]


def header_values(headers: Mapping[str, str], fields: Fields) -> dict[str, list[str]]:
    """The values of the headers that header fields read (all of them, in order)."""
    getall = getattr(headers, "getall", None)
    out: dict[str, list[str]] = {}
    for _name, extractor in fields:
        if extractor.kind == "header":
            if getall is not None:
                out[extractor.expr] = list(getall(extractor.expr, ()))
            else:
                value = headers.get(extractor.expr)
                out[extractor.expr] = [] if value is None else [value]
    return out
