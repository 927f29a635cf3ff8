"""Typed reading of marked nodes, with YAML 1.1 traps turned into errors.

Scalars are resolved against the type the schema expects (YAML 1.2 core
schema, decimal numbers only), never guessed: ``1:30`` is not 90, ``no`` is
not False, ``0777`` is not 511, ``"30"`` is not a number. Each reader either
returns a value or records one ``Problem`` and raises ``Invalid``, so the
caller moves on to the next key and every mistake is reported in one pass.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from jobs.errors import Problem
from jobs.interp import interpolate
from jobs.secret import Secret, show
from jobs.yamlsafe import Map, Node, Poison, Scalar, Seq, child_path

T = TypeVar("T")
Converter = Callable[["Ctx", Node, str], T]

NULLS = frozenset({"", "~", "null", "Null", "NULL"})
TRUES = frozenset({"true", "True", "TRUE"})
FALSES = frozenset({"false", "False", "FALSE"})
# YAML 1.1 booleans that PyYAML's safe_load (and most YAML 1.1 tools) read as
# bools. The spec also lists y/n, but PyYAML reads those as strings (and dumps
# them unquoted), so they are refused only where a boolean is expected.
YAML11_TRUES = frozenset({"yes", "Yes", "YES", "on", "On", "ON"})
YAML11_FALSES = frozenset({"no", "No", "NO", "off", "Off", "OFF"})
_YN = {"y": "true", "Y": "true", "n": "false", "N": "false"}

_INT = re.compile(r"[-+]?(?:0|[1-9][0-9]{0,17})")
_FLOAT = re.compile(r"[-+]?(?:[0-9]{1,30}(?:\.[0-9]{0,30})?|\.[0-9]{1,30})(?:[eE][-+]?[0-9]{1,3})?")
_SEXAGESIMAL = re.compile(r"[-+]?[0-9]{1,10}(?::[0-5]?[0-9]){1,3}(?:\.[0-9]{0,10})?")
_OCTAL11 = re.compile(r"[-+]?0[0-7]{1,20}")
_LEADING_ZERO = re.compile(r"[-+]?0[0-9]+")
_OTHER_NUMBER = re.compile(r"[-+]?(?:0[xXoObB][0-9a-fA-F_]*|[0-9][0-9_]*_[0-9_.]*)")
_SPECIAL_FLOAT = re.compile(r"[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)")

# Common synonyms, offered when difflib finds nothing close.
_SYNONYMS = {
    "follow": "follow_redirects",
    "redirects": "follow_redirects",
    "urls": "urls_file",
    "file": "urls_file",
    "body": "json",
    "form": "data",
    "query": "params",
    "ssl": "verify_tls",
    "verify": "verify_tls",
    "verify_ssl": "verify_tls",
    "insecure": "verify_tls",
    "retries": "retry",
    "timeouts": "timeout",
    "parallel": "concurrency",
    "workers": "concurrency",
    "rate": "rate_per_host",
    "status": "expect",
    "expected": "expect",
    "header": "headers",
    "cookie": "cookies",
    "user": "auth",
    "password": "auth",
    "max_size": "max_body",
    "bodies_dir": "bodies",
}


class Invalid(Exception):
    """A problem was recorded for this node; skip it."""


@dataclass(slots=True)
class Ctx:
    """Per-load state: where problems go, the environment, the base directory."""

    filename: str
    env: Mapping[str, str]
    base_dir: Path
    problems: list[Problem] = field(default_factory=list)
    secrets: set[str] = field(default_factory=set)
    public: frozenset[str] = frozenset()  # ``public_env`` names: not secrets

    def error(self, node: Node, path: str, message: str) -> Invalid:
        """Record a problem at *node*; return the exception for the caller to raise."""
        self.problems.append(Problem(self.filename, node.line, node.col, path, message))
        return Invalid()


def kind_of(node: Node) -> str:
    """How a node reads in a message: 'a list', 'a mapping', or the scalar shown."""
    if isinstance(node, Seq):
        return "a list"
    if isinstance(node, Map):
        return "a mapping"
    if isinstance(node, Scalar):
        if node.plain and node.text in NULLS:
            return "empty (null)"
        return f"a string {show(node.text)}" if not node.plain else show(node.text)
    return "invalid"


def as_scalar(ctx: Ctx, node: Node, path: str, what: str) -> Scalar:
    """The node as a scalar, or an error saying what was expected."""
    if isinstance(node, Poison):
        raise Invalid()
    if not isinstance(node, Scalar):
        raise ctx.error(node, path, f"must be {what}, not {kind_of(node)}")
    return node


def as_map(ctx: Ctx, node: Node, path: str, what: str = "a mapping") -> Map:
    """The node as a mapping."""
    if isinstance(node, Poison):
        raise Invalid()
    if not isinstance(node, Map):
        raise ctx.error(node, path, f"must be {what}, not {kind_of(node)}")
    return node


def as_list(ctx: Ctx, node: Node, path: str, what: str = "a list") -> list[Node]:
    """The node's items."""
    if isinstance(node, Poison):
        raise Invalid()
    if not isinstance(node, Seq):
        raise ctx.error(node, path, f"must be {what}, not {kind_of(node)}")
    return node.items


def is_null(node: Node) -> bool:
    """A plain ``null``, ``~`` or empty value."""
    return isinstance(node, Scalar) and node.plain and node.text in NULLS


def decimal_value(text: str) -> int | float | None:
    """The value of a plain decimal number (YAML 1.2 core, no leading zeros), else None."""
    if _INT.fullmatch(text):
        return int(text)
    if _FLOAT.fullmatch(text) and not _LEADING_ZERO.fullmatch(text):
        value = float(text)
        return value if math.isfinite(value) else None
    return None


def ambiguity(text: str) -> str | None:
    """Why a plain scalar reads differently across YAML versions, or None."""
    if text in YAML11_TRUES or text in YAML11_FALSES:
        return f"{text!r} is a boolean in YAML 1.1"
    if _SEXAGESIMAL.fullmatch(text):
        value = _sexagesimal(text)
        return f"{text!r} is base 60 in YAML 1.1 (= {value}); write {value}"
    if _OCTAL11.fullmatch(text):
        octal = int(text.replace("0", "", 1), 8)
        return f"{text!r} is octal in YAML 1.1 (= {octal}); write it without the leading zero"
    if _LEADING_ZERO.fullmatch(text):
        return f"{text!r} has a leading zero; write it without"
    if _SPECIAL_FLOAT.fullmatch(text):
        return f"{text!r} is infinity or NaN"
    if _OTHER_NUMBER.fullmatch(text):
        return f"{text!r} is not a plain decimal number"
    return None


def number_trap(node: Scalar) -> str:
    """Why a scalar that is not a plain decimal number is refused (a message tail)."""
    text = node.text
    if not node.plain:
        return f"not a quoted string {show(text)} (remove the quotes)"
    if text in NULLS:
        return "not empty (null)"
    if text in TRUES or text in FALSES or text in YAML11_TRUES or text in YAML11_FALSES:
        return f"not a boolean ({text})"
    return ambiguity(text) or f"not {show(text)}"


def _sexagesimal(text: str) -> str:
    sign = -1 if text.startswith("-") else 1
    total = 0.0
    for part in text.lstrip("+-").split(":"):
        total = total * 60 + float(part or 0)
    value = sign * total
    return str(int(value)) if value.is_integer() else str(value)


def expected(what: str, scalar: Scalar) -> str:
    """``must be <what>, not ...`` or ``must be <what>: '1:30' is base 60 ...``."""
    tail = number_trap(scalar)
    return f"must be {what}{', ' if tail.startswith('not ') else ': '}{tail}"


def get_int(ctx: Ctx, node: Node, path: str, lo: int, hi: int | None = None) -> int:
    """A plain decimal integer within [lo, hi]."""
    what = f"an integer >= {lo}" if hi is None else f"an integer from {lo} to {hi}"
    scalar = as_scalar(ctx, node, path, what)
    value = decimal_value(scalar.text) if scalar.plain else None
    if value is None:
        raise ctx.error(node, path, expected(what, scalar))
    if not isinstance(value, int) or value < lo or (hi is not None and value > hi):
        raise ctx.error(node, path, f"must be {what}, not {scalar.text}")
    return value


def get_number(ctx: Ctx, node: Node, path: str, *, zero_ok: bool = False) -> float:
    """A plain decimal number > 0 (or >= 0 with *zero_ok*)."""
    what = "a number >= 0" if zero_ok else "a number > 0"
    scalar = as_scalar(ctx, node, path, what)
    value = decimal_value(scalar.text) if scalar.plain else None
    if value is None:
        raise ctx.error(node, path, expected(what, scalar))
    if value < 0 or (value == 0 and not zero_ok):
        raise ctx.error(node, path, f"must be {what}, not {scalar.text}")
    return float(value)


def get_bool(ctx: Ctx, node: Node, path: str) -> bool:
    """``true`` or ``false`` only; YAML 1.1 spellings get a hint."""
    scalar = as_scalar(ctx, node, path, "true or false")
    text = scalar.text
    if scalar.plain and text in TRUES:
        return True
    if scalar.plain and text in FALSES:
        return False
    if scalar.plain and (text in YAML11_TRUES or text in YAML11_FALSES or text in _YN):
        meant = _YN.get(text) or ("true" if text in YAML11_TRUES else "false")
        raise ctx.error(
            node, path, f"must be true or false; {text!r} is a YAML 1.1 boolean, write {meant}"
        )
    shown = f"a quoted string {show(text)}" if not scalar.plain else kind_of(scalar)
    raise ctx.error(node, path, f"must be true or false, not {shown}")


def get_text(ctx: Ctx, node: Node, path: str, what: str = "a string") -> str:
    """A scalar's text as a string, refusing values YAML would read as null or boolean."""
    scalar = as_scalar(ctx, node, path, what)
    text = scalar.text
    if scalar.plain:
        if text in NULLS:
            raise ctx.error(node, path, f"must be {what}, not empty (null)")
        if text in TRUES or text in FALSES:
            raise ctx.error(
                node, path, f'{text!r} is a boolean; quote it ("{text}") if you mean the string'
            )
        if text in YAML11_TRUES or text in YAML11_FALSES:
            raise ctx.error(
                node,
                path,
                f'{text!r} is a boolean in YAML 1.1; quote it ("{text}") if you mean the string',
            )
    return text


def get_str(ctx: Ctx, node: Node, path: str, what: str = "a string") -> str:
    """``get_text`` plus ``${ENV}`` interpolation; substituted values become secrets."""
    value, errors = interpolate(
        get_text(ctx, node, path, what), ctx.env, ctx.secrets, ctx.public
    )
    for message in errors:
        ctx.error(node, path, message)
    if errors:
        raise Invalid()
    if isinstance(value, Secret):
        ctx.secrets.add(value)
    return value


def nullable(convert: Converter[T]) -> Converter[T | None]:
    """Accept ``null`` (or an empty value) as ``None``, else use *convert*."""

    def read(ctx: Ctx, node: Node, path: str) -> T | None:
        return None if is_null(node) else convert(ctx, node, path)

    return read


def fields(
    ctx: Ctx,
    node: Map,
    path: str,
    spec: Mapping[str, Converter[Any]],
    *,
    required: tuple[str, ...] = (),
    elsewhere: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Read a mapping by *spec* (key -> converter); unknown keys get a suggestion.

    Returns the keys that converted; missing required keys are reported at
    the mapping itself.
    """
    values: dict[str, Any] = {}
    for key, (key_node, value_node) in node.entries.items():
        sub = child_path(path, key)
        convert = spec.get(key)
        if convert is None:
            ctx.error(key_node, sub, unknown_key(key, spec, elsewhere or {}))
            continue
        try:
            values[key] = convert(ctx, value_node, sub)
        except Invalid:
            continue
    for key in required:
        if key not in node.entries:
            ctx.error(node, path, f"missing required key {key!r}")
    return values


def unknown_key(key: str, allowed: Mapping[str, Any], elsewhere: Mapping[str, str]) -> str:
    """``unknown key 'x' (did you mean 'y'?)``, or where the key belongs, or the choices."""
    shown = show(key, 40)
    guess = suggest(key, list(allowed))
    if guess:
        return f"unknown key {shown} (did you mean {guess!r}?)"
    home = key if key in elsewhere else suggest(key, list(elsewhere))
    if home == key:
        return f"unknown key {shown} here; set it {elsewhere[key]}"
    if home:
        return f"unknown key {shown} (did you mean {home!r}, {elsewhere[home]}?)"
    return f"unknown key {shown}; expected one of: {', '.join(allowed)}"


def suggest(word: str, choices: list[str]) -> str | None:
    """The most likely intended choice for a misspelt *word*, if any."""
    low = word[:64].lower().replace("-", "_")
    if low in choices:
        return low
    synonym = _SYNONYMS.get(low)
    if synonym in choices:
        return synonym
    close = difflib.get_close_matches(low, choices, n=1, cutoff=0.6)
    if close:
        return close[0]
    prefixed = [c for c in choices if len(low) >= 3 and (c.startswith(low) or low.startswith(c))]
    return prefixed[0] if len(prefixed) == 1 else None
