"""Header-value parsers: Content-Disposition, Link, Content-Type.

They take hostile input from servers, so they are hand-written linear
scanners (no backtracking regexes) and never raise on junk: a malformed value
gives an empty or partial result, as a browser would.
"""

from __future__ import annotations

import codecs
import functools
from collections.abc import Mapping
from types import MappingProxyType
from typing import NamedTuple
from urllib.parse import unquote

from multidict import MultiDict, MultiDictProxy
from yarl import URL

# RFC 9110 §5.6.2 tchar.
_TOKEN = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def _is_token(value: str) -> bool:
    return bool(value) and _TOKEN.issuperset(value)


# -- quoted-string scanning shared by the header parsers ----------------------


def _skip_ws(s: str, i: int) -> int:
    n = len(s)
    while i < n and s[i] in " \t":
        i += 1
    return i


def _read_quoted(s: str, i: int) -> tuple[str, int] | None:
    """Unescape the quoted-string starting at ``s[i] == '"'`` (RFC 9110 §5.6.4).

    Returns the content and the index after the closing quote, or None when
    the string is unterminated.
    """
    out: list[str] = []
    i += 1
    n = len(s)
    while i < n:
        c = s[i]
        if c == '"':
            return "".join(out), i + 1
        if c == "\\" and i + 1 < n:
            i += 1
            c = s[i]
        out.append(c)
        i += 1
    return None


def _read_value(s: str, i: int, stops: str) -> tuple[str, bool, int] | None:
    """Read a parameter value at ``i``: ``(value, was_quoted, index after it)``.

    A token ends at any character of ``stops``; a quoted-string must be
    followed only by whitespace before the next stop, else None (junk).
    """
    if i < len(s) and s[i] == '"':
        quoted = _read_quoted(s, i)
        if quoted is None:
            return None
        value, i = quoted
        i = _skip_ws(s, i)
        if i < len(s) and s[i] not in stops:
            return None
        return value, True, i
    end = i
    while end < len(s) and s[end] not in stops:
        end += 1
    return s[i:end].strip(" \t"), False, end


# -- Content-Disposition (RFC 6266, RFC 8187 ext-values, RFC 2231 continuations)


class ContentDisposition(NamedTuple):
    """``ClientResponse.content_disposition``: type, parameters and filename."""

    type: str | None
    parameters: MappingProxyType[str, str]
    filename: str | None


def _decode_ext_value(value: str) -> str | None:
    """Decode ``charset'lang'pct-encoded`` (RFC 8187 §3.2); None when invalid."""
    charset, sep1, rest = value.partition("'")
    _lang, sep2, encoded = rest.partition("'")
    codec = _text_codec(charset or "utf-8")
    if not (sep1 and sep2) or codec is None:
        return None
    try:
        return unquote(encoded, codec, "strict")
    except ValueError:  # undecodable octets
        return None


def _text_codec(label: str) -> str | None:
    """Canonical name of a text codec, or None (unknown, or bytes-only like ``hex``)."""
    try:
        info = codecs.lookup(label)
    except LookupError:
        return None
    return info.name if getattr(info, "_is_text_encoding", True) else None


def _cd_param(params: dict[str, str], key: str, value: str, quoted: bool) -> bool:
    """Store one Content-Disposition parameter; False means the header is invalid."""
    star = key.find("*")
    if star != -1 and key[star + 1 :].rstrip("*").isdigit():
        # Continuation segment (name*0, name*1*): assembled by content_disposition_filename.
        if quoted or _is_token(value):
            params[key] = value
        return True
    if key.endswith("*"):
        decoded = None if quoted else _decode_ext_value(value)
        if decoded is not None:
            params[key] = decoded
        return True  # a bad ext-value drops only this parameter
    if quoted:
        # As aiohttp: leading slashes are never part of a file name.
        params[key] = value.lstrip("\\/")
        return True
    if not _is_token(value):
        return False
    params[key] = value
    return True


def parse_content_disposition(header: str | None) -> tuple[str | None, dict[str, str]]:
    """Parse a Content-Disposition value into ``(type, params)``; never raises.

    Keys are lower-cased; ``filename*`` ext-values are decoded.  An invalid
    header gives ``(None, {})`` (RFC 6266 §4.1: ignore what cannot be parsed).
    """
    if not header:
        return None, {}
    disptype, _, rest = header.partition(";")
    disptype = disptype.strip(" \t")
    if not _is_token(disptype):
        return None, {}
    params: dict[str, str] = {}
    i, n = 0, len(rest)
    while i < n:
        i = _skip_ws(rest, i)
        if i >= n or rest[i] == ";":
            i += 1
            continue
        eq = rest.find("=", i)
        semi = rest.find(";", i)
        if eq == -1 or (semi != -1 and semi < eq):
            return None, {}
        key = rest[i:eq].strip(" \t").lower()
        read = _read_value(rest, _skip_ws(rest, eq + 1), ";")
        if read is None or key in params:
            return None, {}
        value, quoted, i = read
        i += 1
        if _is_token(key) and not _cd_param(params, key, value, quoted):
            return None, {}
    return disptype.lower(), params


def content_disposition_filename(params: Mapping[str, str], name: str = "filename") -> str | None:
    """The file name from parsed parameters: ``name*``, then ``name``, then continuations."""
    if not params:
        return None
    if f"{name}*" in params:
        return params[f"{name}*"]
    if name in params:
        return params[name]
    parts: list[str] = []
    for num in range(len(params)):
        part = params.get(f"{name}*{num}", params.get(f"{name}*{num}*"))
        if part is None:
            break
        parts.append(part)
    if not parts:
        return None
    joined = "".join(parts)
    if f"{name}*0*" in params:  # RFC 2231 §4.1: charset'lang' leads the first encoded part
        return _decode_ext_value(joined)
    return joined


# -- Link (RFC 8288) ----------------------------------------------------------


def _link_params(s: str, i: int) -> tuple[list[tuple[str, str]], int]:
    """Read ``; name=value`` pairs after a link target, up to a top-level comma."""
    params: list[tuple[str, str]] = []
    n = len(s)
    while True:
        i = _skip_ws(s, i)
        if i >= n or s[i] == ",":
            return params, i
        if s[i] != ";":
            return params, _skip_to_comma(s, i)
        i = _skip_ws(s, i + 1)
        start = i
        while i < n and s[i] not in "=;,":
            i += 1
        key = s[start:i].strip(" \t").lower()
        if i >= n or s[i] != "=":
            continue  # a parameter without a value carries nothing (as aiohttp)
        read = _read_value(s, _skip_ws(s, i + 1), ";,")
        if read is None:
            return params, _skip_to_comma(s, i + 1)
        value, quoted, i = read
        if not quoted and len(value) >= 2 and value[0] == value[-1] == "'":
            value = value[1:-1]  # aiohttp also accepts single quotes
        if key:
            params.append((key, value))


def _skip_to_comma(s: str, i: int) -> int:
    """Index of the next comma outside a quoted-string (or len(s))."""
    n = len(s)
    while i < n and s[i] != ",":
        if s[i] == '"':
            quoted = _read_quoted(s, i)
            if quoted is None:
                return n
            i = quoted[1]
        else:
            i += 1
    return i


def parse_link_header(value: str, base_url: URL) -> MultiDictProxy[MultiDictProxy[str | URL]]:
    """Parse Link header(s) joined by ``", "`` into aiohttp's ``ClientResponse.links``.

    Keyed by ``rel`` (or the raw target when there is none); each value holds
    the parameters plus ``url``, the target joined to ``base_url``.  Never raises.
    """
    links: MultiDict[MultiDictProxy[str | URL]] = MultiDict()
    i, n = 0, len(value)
    while i < n:
        while i < n and value[i] in " \t,":
            i += 1
        if i >= n:
            break
        end = value.find(">", i + 1) if value[i] == "<" else -1
        if end == -1:
            i = _skip_to_comma(value, i)
            continue
        target = value[i + 1 : end].strip(" \t")
        params, i = _link_params(value, end + 1)
        try:
            url = base_url.join(URL(target))
        except (ValueError, TypeError):
            continue
        link: MultiDict[str | URL] = MultiDict(params)
        link.add("url", url)
        links.add(str(link.get("rel", target)), MultiDictProxy(link))
    return MultiDictProxy(links)


# -- Content-Type -------------------------------------------------------------


class MimeType(NamedTuple):
    """A parsed media type, as ``aiohttp.helpers.parse_mimetype`` returns."""

    type: str
    subtype: str
    suffix: str
    parameters: MultiDictProxy[str]


@functools.lru_cache(maxsize=64)
def parse_mimetype(value: str) -> MimeType:
    """Split ``type/subtype+suffix; k=v`` (lower-cased type, keys; values unquoted)."""
    params: MultiDict[str] = MultiDict()
    if not value:
        return MimeType("", "", "", MultiDictProxy(params))
    fulltype, *items = value.split(";")
    for item in items:
        if item.strip():
            key, _, val = item.partition("=")
            params.add(key.lower().strip(), val.strip(' "'))
    fulltype = fulltype.strip().lower()
    if fulltype == "*":
        fulltype = "*/*"
    mtype, _, stype = fulltype.partition("/")
    stype, _, suffix = stype.partition("+")
    return MimeType(mtype, stype, suffix, MultiDictProxy(params))


def is_json_content_type(mimetype: str | MimeType) -> bool:
    """True for ``application/json`` and ``application/<anything>+json``."""
    if isinstance(mimetype, str):
        mimetype = parse_mimetype(mimetype)
    if mimetype.type != "application":
        return False
    return mimetype.subtype == "json" or mimetype.suffix.rpartition("+")[2] == "json"


def charset_from_content_type(value: str) -> str | None:
    """The ``charset`` of a Content-Type as a canonical codec name, or None.

    None when absent, unknown, or not a text codec (e.g. ``hex``), so callers
    fall back instead of failing on a server's bad label.
    """
    charset = parse_mimetype(value).parameters.get("charset")
    return _text_codec(charset) if charset else None
