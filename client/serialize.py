"""Request serialization: the request head and chunked body framing, as bytes.

Pure functions.  Everything that reaches the wire is validated here, at
serialization time, because headers stay mutable until the request is sent
(security.md A1-A3): methods and header names must be RFC 9110 tokens, header
values and request targets must carry no CR, LF, NUL or other control byte.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

from yarl import URL

__all__ = [
    "LAST_CHUNK",
    "check_header_name",
    "check_header_value",
    "check_method",
    "encode_chunk",
    "encode_request_head",
    "request_target",
]

# RFC 9110 §5.6.2: token = 1*tchar.  fullmatch() so a trailing "\n" never slips
# past "$".
_TOKEN: Final = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# RFC 9110 §5.5: field values are VCHAR / obs-text / SP / HTAB; any other
# control byte (CR, LF, NUL, 0x01-0x1F, DEL) is an injection attempt.
_BAD_VALUE: Final = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
# A request target on the wire is visible ASCII only: no SP, CTL or non-ASCII.
_TARGET: Final = re.compile(r"[\x21-\x7e]+")

LAST_CHUNK: Final = b"0\r\n\r\n"
_VERSIONS: Final = {(1, 0): " HTTP/1.0\r\n", (1, 1): " HTTP/1.1\r\n"}


# Methods known to be tokens: checked by a set lookup, not a regex, twice per request.
_COMMON_METHODS: Final = frozenset(
    ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "get", "head", "post")
)


def check_method(method: str) -> str:
    """Return ``method`` unchanged if it is an RFC 9110 token, else ValueError."""
    # Exact str only: a str subclass could override __eq__/__hash__ to slip past the set.
    if type(method) is str and method in _COMMON_METHODS:
        return method
    if not isinstance(method, str) or _TOKEN.fullmatch(method) is None:
        raise ValueError(f"invalid HTTP method {method!r}: must be a non-empty token")
    return method


def check_header_name(name: str) -> None:
    """ValueError unless ``name`` is a token (no SP, ``:``, CTL or non-ASCII)."""
    if not isinstance(name, str) or _TOKEN.fullmatch(name) is None:
        raise ValueError(f"invalid header name {name!r}: must be a non-empty token")


def check_header_value(value: str) -> None:
    """ValueError if ``value`` holds a control character other than HTAB."""
    if not isinstance(value, str):
        raise ValueError(f"header value must be str, not {type(value).__name__}")
    bad = _BAD_VALUE.search(value)
    if bad is not None:
        raise ValueError(f"header value {value!r} contains forbidden character {bad[0]!r}")


def request_target(url: URL, *, absolute_form: bool = False, check: bool = True) -> str:
    """The request-target for ``url`` (RFC 9112 §3.2), from its encoded parts.

    Origin-form ``/path?query`` by default; absolute-form (no userinfo, no
    fragment) for requests through a plain-HTTP proxy.  ValueError if the
    result would put SP, a control byte or non-ASCII on the wire.
    """
    target = url.raw_path_qs or "/"
    if target[0] == "?":
        target = "/" + target
    if absolute_form:
        target = str(url.origin()) + target
    if check:  # off only for a caller that checks it itself (encode_request_head does)
        _check_target(target)
    return target


def _check_target(target: str) -> None:
    if not isinstance(target, str) or _TARGET.fullmatch(target) is None:
        raise ValueError(f"invalid request target {target!r}: SP, control or non-ASCII characters")


def encode_request_head(
    method: str,
    target: str,
    version: tuple[int, int],
    headers: Iterable[tuple[str, str]],
    *,
    cacheable: bool = False,
) -> bytes:
    """Serialize the request line and header section into one buffer.

    Every part is validated again here; values are encoded as UTF-8 (as
    aiohttp does).  ValueError names the offending part.  ``cacheable``: the
    fields carry nothing private (no credentials, no cookies), so their
    validated block may be remembered and reused for identical fields.
    """
    if type(method) is not str or method not in _COMMON_METHODS:  # check_method's fast case
        check_method(method)
    if type(target) is not str or _TARGET.fullmatch(target) is None:
        _check_target(target)  # raises
    try:
        version_line = _VERSIONS[version]
    except (KeyError, TypeError):
        raise ValueError(f"unsupported HTTP version {version!r}: only 1.0 and 1.1") from None
    line = f"{method} {target}{version_line}".encode()
    if not cacheable:
        return line + _header_block(headers)
    fields = tuple(headers)
    block = _BLOCKS.get(fields)
    if block is None:
        block = _header_block(fields)
        if len(_BLOCKS) >= _BLOCKS_MAX:
            _BLOCKS.clear()
        _BLOCKS[fields] = block
    return line + block


# Validated header blocks of requests without private fields (the auto headers plus
# Host, per host): a crawl sends the same few blocks again and again (issue 6).
_BLOCKS: dict[tuple[tuple[str, str], ...], bytes] = {}
_BLOCKS_MAX: Final = 256


def _header_block(headers: Iterable[tuple[str, str]]) -> bytes:
    """The header section (CRLF-terminated fields, then the empty line), validated."""
    parts: list[str] = []
    for name, value in headers:
        parts += (name, ": ", value, "\r\n")
    parts.append("\r\n")
    names, values = parts[0:-1:4], parts[2:-1:4]
    # Hot path: one regex over all names and one over all values, not two per field
    # (concatenated tokens are a token, so only empty names need a separate look).
    try:
        valid = not names or (
            all(names)
            and _TOKEN.fullmatch("".join(names)) is not None
            and _BAD_VALUE.search("".join(values)) is None
        )
    except TypeError:  # a non-str name or value
        valid = False
    if not valid:
        for name, value in zip(names, values, strict=True):
            check_header_name(name)  # raises with the offending field's message
            check_header_value(value)
    return "".join(parts).encode("utf-8")


def encode_chunk(data: bytes | bytearray | memoryview) -> bytes:
    """Frame ``data`` as one chunk (RFC 9112 §7.1); ``b""`` for empty data.

    An empty chunk would be the last-chunk, ending the body early, so empty
    input yields nothing; send :data:`LAST_CHUNK` to finish the body.
    """
    size = data.nbytes if isinstance(data, memoryview) else len(data)
    if not size:
        return b""
    return b"".join((b"%x\r\n" % size, data, b"\r\n"))
