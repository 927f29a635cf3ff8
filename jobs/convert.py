"""Converters for the job file's compound values: headers, cookies, params,
bodies, status sets, sizes, paths, URLs, methods.

Each has the ``Converter`` shape ``(ctx, node, path) -> value`` and reports
through ``ctx`` (see ``jobs.scalars``). Check functions from ``jobs.checks``
raise ``ValueError`` with a message that never repeats the value.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from jobs.checks import (
    SENSITIVE_HEADERS,
    check_cookie_value,
    check_header_name,
    check_header_value,
    check_method,
    check_relative_path,
    check_token,
    check_url,
    parse_size,
    parse_status_pattern,
)
from jobs.model import JSONValue, Pairs, SaveMode
from jobs.scalars import (
    FALSES,
    NULLS,
    TRUES,
    Ctx,
    Invalid,
    ambiguity,
    as_map,
    as_scalar,
    decimal_value,
    get_int,
    get_number,
    get_str,
    get_text,
)
from jobs.secret import Secret
from jobs.yamlsafe import Map, Node, Poison, Scalar, Seq, child_path

T = TypeVar("T")
U = TypeVar("U")


def checked(ctx: Ctx, node: Node, path: str, check: Callable[[T], U], value: T) -> U:
    """Run a ``jobs.checks`` function, turning its ``ValueError`` into a problem."""
    try:
        return check(value)
    except ValueError as exc:
        raise ctx.error(node, path, str(exc)) from None


def secret(ctx: Ctx, value: str) -> Secret:
    """Mark a credential as secret whether or not it came from the environment."""
    ctx.secrets.add(value)
    return Secret(value)


def url(ctx: Ctx, node: Node, path: str) -> str:
    """An absolute http(s) URL (``${ENV}`` allowed)."""
    return checked(ctx, node, path, check_url, get_str(ctx, node, path, "a URL"))


def method(ctx: Ctx, node: Node, path: str) -> str:
    """An HTTP method token, upper-cased."""
    return checked(ctx, node, path, check_method, get_text(ctx, node, path, "an HTTP method"))


def save_mode(ctx: Ctx, node: Node, path: str) -> SaveMode:
    """``always``, ``on_success`` or ``never``."""
    text = get_text(ctx, node, path, "always, on_success or never")
    try:
        return SaveMode(text.lower().replace("-", "_"))
    except ValueError:
        raise ctx.error(node, path, "must be one of: always, on_success, never") from None


def size(ctx: Ctx, node: Node, path: str) -> int:
    """A byte count: ``1024``, ``10MB``, ``64MiB``."""
    scalar = as_scalar(ctx, node, path, "a size such as 64MiB")
    return checked(ctx, node, path, parse_size, scalar.text)


def relative_path(ctx: Ctx, node: Node, path: str) -> Path:
    """A path inside the job directory, returned joined to it."""
    return join_relative(ctx, node, path, get_str(ctx, node, path, "a path"))


def join_relative(ctx: Ctx, node: Node, path: str, text: str) -> Path:
    """*text* checked by ``check_relative_path`` and joined to the job directory."""
    return ctx.base_dir / checked(ctx, node, path, check_relative_path, text)


def status_set(ctx: Ctx, node: Node, path: str) -> frozenset[int]:
    """One status pattern (``404``, ``2xx``, ``200-299``) or a non-empty list of them."""
    items = node.items if isinstance(node, Seq) else [node]
    if not items:
        raise ctx.error(node, path, "must list at least one status code")
    codes: set[int] = set()
    failed = False
    for index, item in enumerate(items):
        sub = child_path(path, index) if isinstance(node, Seq) else path
        try:
            text = get_text(ctx, item, sub, "a status code or pattern like '2xx'")
            codes |= checked(ctx, item, sub, parse_status_pattern, text)
        except Invalid:
            failed = True
    if failed:
        raise Invalid()
    return frozenset(codes)


def _each_entry(
    ctx: Ctx, node: Node, path: str, what: str, read: Callable[[str, Scalar, Node, str], T]
) -> list[T]:
    """Apply *read(key, key_node, value_node, path)* to every entry; raise if any failed."""
    mapping = as_map(ctx, node, path, what)
    out: list[T] = []
    failed = False
    for key, (key_node, value_node) in mapping.entries.items():
        if isinstance(value_node, Poison):
            continue
        try:
            out.append(read(key, key_node, value_node, child_path(path, key)))
        except Invalid:
            failed = True
    if failed:
        raise Invalid()
    return out


def headers(ctx: Ctx, node: Node, path: str) -> Pairs:
    """Header names (tokens, unique ignoring case) to values without control characters.

    Authorization, Proxy-Authorization and Cookie values become secrets.
    """
    seen: dict[str, Scalar] = {}

    def read(key: str, key_node: Scalar, value_node: Node, sub: str) -> tuple[str, str]:
        checked(ctx, key_node, sub, check_header_name, key)
        first = seen.setdefault(key.lower(), key_node)
        if first is not key_node:
            raise ctx.error(
                key_node,
                sub,
                f"duplicate header {key!r} (header names ignore "
                f"case; first set on line {first.line})",
            )
        value = checked(
            ctx,
            value_node,
            sub,
            check_header_value,
            get_str(ctx, value_node, sub, "a header value"),
        )
        return key, secret(ctx, value) if key.lower() in SENSITIVE_HEADERS else value

    return tuple(_each_entry(ctx, node, path, "a mapping of header names to values", read))


def cookies(ctx: Ctx, node: Node, path: str) -> Pairs:
    """Cookie names (tokens) to RFC 6265 values; values are secrets."""

    def read(key: str, key_node: Scalar, value_node: Node, sub: str) -> tuple[str, str]:
        checked(ctx, key_node, sub, lambda k: check_token(k, "cookie name"), key)
        value = get_str(ctx, value_node, sub, "a cookie value")
        return key, secret(ctx, checked(ctx, value_node, sub, check_cookie_value, value))

    return tuple(_each_entry(ctx, node, path, "a mapping of cookie names to values", read))


def fields_pairs(ctx: Ctx, node: Node, path: str) -> Pairs:
    """Query parameters or form fields: name -> value, or name -> list of values."""

    def read(key: str, key_node: Scalar, value_node: Node, sub: str) -> list[tuple[str, str]]:
        if not key:
            raise ctx.error(key_node, sub, "name must not be empty")
        if isinstance(value_node, Seq):
            return [
                (key, _field_value(ctx, item, child_path(sub, i)))
                for i, item in enumerate(value_node.items)
            ]
        return [(key, _field_value(ctx, value_node, sub))]

    groups = _each_entry(ctx, node, path, "a mapping of names to values", read)
    return tuple(pair for group in groups for pair in group)


def _field_value(ctx: Ctx, node: Node, path: str) -> str:
    if isinstance(node, Scalar) and node.plain and node.text in NULLS:
        raise ctx.error(
            node, path, 'must be a string or number, not empty (null); write "" for an empty value'
        )
    return get_str(ctx, node, path, "a string or number")


def data_body(ctx: Ctx, node: Node, path: str) -> str | Pairs:
    """A raw text body, or a mapping of form fields."""
    if isinstance(node, Map):
        return fields_pairs(ctx, node, path)
    return get_str(ctx, node, path, "a string or a mapping of form fields")


def json_value(ctx: Ctx, node: Node, path: str) -> JSONValue:
    """Any JSON value; ambiguous YAML scalars (``yes``, ``1:30``, ``0777``) are refused."""
    if isinstance(node, Map):
        pairs = _each_entry(
            ctx,
            node,
            path,
            "a mapping",
            lambda key, _k, value, sub: (key, json_value(ctx, value, sub)),
        )
        return dict(pairs)
    if isinstance(node, Seq):
        return _json_items(ctx, node, path)
    scalar = as_scalar(ctx, node, path, "a JSON value")
    return _json_scalar(ctx, scalar, path)


def _json_items(ctx: Ctx, node: Seq, path: str) -> list[JSONValue]:
    items: list[JSONValue] = []
    failed = False
    for index, item in enumerate(node.items):
        try:
            items.append(json_value(ctx, item, child_path(path, index)))
        except Invalid:
            failed = True
    if failed:
        raise Invalid()
    return items


def _json_scalar(ctx: Ctx, node: Scalar, path: str) -> JSONValue:
    text = node.text
    if not node.plain:
        return get_str(ctx, node, path)
    if text in NULLS:
        return None
    if text in TRUES or text in FALSES:
        return text in TRUES
    number = decimal_value(text)
    if number is not None:
        return number
    trap = ambiguity(text)
    if trap:
        raise ctx.error(node, path, f"ambiguous value: {trap}, or quote it for a string")
    return get_str(ctx, node, path)


def max_redirects(ctx: Ctx, node: Node, path: str) -> int:
    """0-100 redirects."""
    return get_int(ctx, node, path, 0, 100)


def positive(ctx: Ctx, node: Node, path: str) -> float:
    """A number > 0 (seconds, requests per second)."""
    return get_number(ctx, node, path)


def non_negative(ctx: Ctx, node: Node, path: str) -> float:
    """A number >= 0."""
    return get_number(ctx, node, path, zero_ok=True)
