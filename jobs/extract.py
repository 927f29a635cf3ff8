"""``extract:`` and ``follow:``: what to pull out of responses, checked at load time.

A field is a mapping with exactly one source key and optional post-steps::

    extract:
      title:  {css: "title", text: true}                  # text of the first match
      links:  {css: "a", attr: href, all: true, absolute: true}
      names:  {xpath: "//div[@class='item']/h2/text()", all: true}
      total:  {json: "meta.total", to: int}               # JMESPath over a JSON body
      sku:    {regex: 'data-sku="(\\w+)"'}                # first group (or the match)
      etag:   {header: ETag}
      title:  false                                       # drop an inherited field

    follow: {css: "a.next", attr: href, max_pages: 50, same_host: true}

Every selector and expression is compiled here, so a bad one is a load-time
``Problem`` with ``file:line:col`` (``fetchrun --validate`` shows it) and the
runner never meets a syntax error. Compiling is pure: no I/O.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Literal

import jmespath
from cssselect import GenericTranslator, HTMLTranslator, SelectorError
from jmespath.exceptions import ArityError, JMESPathError, UnknownFunctionError
from jmespath.parser import ParsedResult
from lxml import etree

from jobs.checks import check_token
from jobs.model import ExtractBlock, ExtractKind, Extractor, Follow
from jobs.scalars import (
    Converter,
    Ctx,
    Invalid,
    as_map,
    fields,
    get_bool,
    get_int,
    get_text,
    is_null,
)
from jobs.yamlsafe import Map, Node, Scalar, child_path

KINDS: tuple[ExtractKind, ...] = ("css", "xpath", "json", "regex", "header")
MAX_FIELDS = 100  # per extract: block
MAX_EXPR = 4096  # characters of one selector or expression
MAX_PAGES = 100_000
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,63}")
_HTML_CSS = HTMLTranslator()
_XML_CSS = GenericTranslator()
_PROBE = etree.fromstring("<probe/>")  # evaluates XPath once to catch unknown functions


# -------------------------------------------------------------- compiling (pure)


def css_to_xpath(selector: str, *, xml: bool = False) -> str:
    """A CSS selector as XPath text (HTML rules unless *xml*); ``ValueError`` if bad."""
    try:
        return (_XML_CSS if xml else _HTML_CSS).css_to_xpath(selector)
    except SelectorError as exc:
        hint = " (use attr: or text: true instead)" if "seudo" in str(exc) else ""
        raise ValueError(f"invalid CSS selector: {_first_line(exc)}{hint}") from None


def compile_xpath(expr: str) -> etree.XPath:
    """A compiled XPath 1.0 expression; ``ValueError`` if it does not compile or run.

    lxml serialises calls of one ``XPath`` object with a lock, so callers in
    several threads should each compile their own.
    """
    try:
        compiled = etree.XPath(expr, smart_strings=False)
        compiled(_PROBE)  # unknown functions and variables only show when run
    except etree.XPathError as exc:
        raise ValueError(f"invalid XPath: {_first_line(exc)}") from None
    return compiled


def compile_jmespath(expr: str) -> ParsedResult:
    """A compiled JMESPath expression; ``ValueError`` if bad."""
    try:
        compiled = jmespath.compile(expr)
        _probe_jmespath(compiled)
        return compiled
    except JMESPathError as exc:
        text = _first_line(exc).partition(": Parse error")[0].rstrip(":")
        for prefix in ("Invalid jmespath expression: ", "Bad jmespath expression: "):
            text = text.removeprefix(prefix)
        pos = getattr(exc, "lex_position", None)
        where = f" at position {pos}" if isinstance(pos, int) else ""
        raise ValueError(f"invalid JMESPath: {text}{where}") from None


def _probe_jmespath(compiled: ParsedResult) -> None:
    """Unknown functions and wrong argument counts only show when run."""
    try:
        compiled.search({})
    except (UnknownFunctionError, ArityError):
        raise
    except JMESPathError:
        pass  # a type error on the empty probe says nothing about real data


def compile_regex(pattern: str) -> re.Pattern[str]:
    """A compiled regular expression; ``ValueError`` if bad."""
    try:
        return re.compile(pattern)
    except re.error as exc:
        where = f" at position {exc.pos}" if exc.pos is not None else ""
        raise ValueError(f"invalid regular expression: {exc.msg}{where}") from None


@lru_cache(maxsize=1024)
def check_expression(kind: ExtractKind, expr: str) -> str:
    """Compile *expr* as a *kind* extractor; returns it, ``ValueError`` if bad."""
    if not expr.strip():
        raise ValueError("is empty")
    if len(expr) > MAX_EXPR:
        raise ValueError(f"is longer than {MAX_EXPR} characters")
    if kind == "css":
        compile_xpath(css_to_xpath(expr))
    elif kind == "xpath":
        compile_xpath(expr)
    elif kind == "json":
        compile_jmespath(expr)
    elif kind == "regex":
        compile_regex(expr)
    elif kind == "header":
        check_token(expr, "header name")
    return expr


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:200]


# -------------------------------------------------------------- reading the job file


def _conversion(ctx: Ctx, node: Node, path: str) -> Literal["int", "float"]:
    text = get_text(ctx, node, path, "int or float")
    if text not in ("int", "float"):
        raise ctx.error(node, path, f"must be int or float, not {text[:20]!r}")
    return "int" if text == "int" else "float"


def _attr(ctx: Ctx, node: Node, path: str) -> str:
    text = get_text(ctx, node, path, "an attribute name")
    if not text or len(text) > 256 or any(c.isspace() or c in "\"'<>/=" for c in text):
        raise ctx.error(node, path, "must be an attribute name like href")
    return text


_OPTIONS: dict[str, Converter[Any]] = {
    "attr": _attr,
    "text": get_bool,
    "all": get_bool,
    "strip": get_bool,
    "absolute": get_bool,
    "to": _conversion,
}
_FOLLOW_OPTIONS: dict[str, Converter[Any]] = {
    "attr": _attr,
    "text": get_bool,
    "max_pages": lambda ctx, node, path: get_int(ctx, node, path, 1, MAX_PAGES),
    "same_host": get_bool,
}


def _source(ctx: Ctx, mapping: Map, path: str, allowed: str) -> tuple[ExtractKind, str]:
    """The one source key (css, xpath, ...) of a field mapping, with its checked text."""
    present = [k for k in KINDS if k in mapping.entries]
    if not present:
        raise ctx.error(mapping, path, f"needs one of {allowed}")
    if len(present) > 1:
        key_node = mapping.entries[present[1]][0]
        raise ctx.error(
            key_node, child_path(path, present[1]), f"use one of {allowed}, not several"
        )
    kind = present[0]
    sub = child_path(path, kind)
    node = mapping.entries[kind][1]
    text = get_text(ctx, node, sub, "a string")
    try:
        return kind, check_expression(kind, text)
    except ValueError as exc:
        raise ctx.error(node, sub, str(exc)) from None


def _extractor(
    ctx: Ctx, node: Node, path: str, spec: dict[str, Converter[Any]]
) -> tuple[Extractor, dict[str, Any]]:
    mapping = as_map(ctx, node, path, "a mapping like {css: 'h1', text: true}")
    allowed = ", ".join(KINDS)
    values = fields(ctx, mapping, path, {**dict.fromkeys(KINDS, _skip), **spec})
    kind, expr = _source(ctx, mapping, path, allowed)
    attr = values.get("attr")
    if (attr is not None or "text" in values) and kind not in ("css", "xpath"):
        key = "attr" if attr is not None else "text"
        raise ctx.error(mapping.entries[key][0], child_path(path, key), "is for css and xpath")
    if attr is not None and values.get("text"):
        raise ctx.error(
            mapping.entries["text"][0], child_path(path, "text"), "use attr or text, not both"
        )
    if values.get("text") is False and attr is None:
        raise ctx.error(
            mapping.entries["text"][0], child_path(path, "text"), "text: false needs an attr"
        )
    if values.get("to") and values.get("absolute"):
        raise ctx.error(mapping, path, "'to' and 'absolute' do not mix (a URL is not a number)")
    extractor = Extractor(
        kind,
        expr,
        attr=attr,
        all=values.get("all", False),
        strip=values.get("strip", True),
        absolute=values.get("absolute", False),
        to=values.get("to"),
    )
    return extractor, values


def _is_off(node: Node) -> bool:
    """``false`` or ``null``: turn an inherited setting off."""
    return is_null(node) or (isinstance(node, Scalar) and node.plain and node.text == "false")


def _skip(_ctx: Ctx, _node: Node, _path: str) -> None:
    return None  # source keys are read by ``_source``


def block(ctx: Ctx, node: Node, path: str) -> ExtractBlock:
    """``extract:``: a mapping of field names to extractors; ``false``/``null`` drops all."""
    if _is_off(node):
        return ExtractBlock(inherit=False)
    mapping = as_map(ctx, node, path, "a mapping of field names to extractors, or false")
    if len(mapping.entries) > MAX_FIELDS:
        raise ctx.error(node, path, f"has more than {MAX_FIELDS} fields")
    out: list[tuple[str, Extractor | None]] = []
    failed = False
    for name, (key_node, value_node) in mapping.entries.items():
        sub = child_path(path, name)
        try:
            if not _NAME.fullmatch(name):
                raise ctx.error(key_node, sub, "field names use letters, digits, '_' and '-'")
            out.append((name, _field(ctx, value_node, sub)))
        except Invalid:
            failed = True
    if failed:
        raise Invalid()
    return ExtractBlock(tuple(out))


def _field(ctx: Ctx, node: Node, path: str) -> Extractor | None:
    if _is_off(node):
        return None  # drop an inherited field (or the built-in title)
    return _extractor(ctx, node, path, _OPTIONS)[0]


def follow(ctx: Ctx, node: Node, path: str) -> Follow | Literal[False]:
    """``follow:``: a link selector plus ``max_pages`` / ``same_host``; false turns it off."""
    if _is_off(node):
        return False
    if isinstance(node, Scalar):
        boolean = node.text.lower() in ("true", "yes", "no", "on", "off", "y", "n")
        hint = " (for redirects, use follow_redirects)" if boolean else ""
        raise ctx.error(
            node, path, f"must be a mapping like {{css: 'a.next', max_pages: 10}}{hint}"
        )
    rule, options = _extractor(ctx, node, path, _FOLLOW_OPTIONS)
    text = options.get("text", False)
    attr = rule.attr if rule.attr is not None or text or rule.kind != "css" else "href"
    return Follow(
        Extractor(rule.kind, rule.expr, attr=attr, all=True, absolute=True),
        max_pages=options.get("max_pages", 100),
        same_host=options.get("same_host", True),
    )
