"""URL normalization for crawl de-duplication (RFC 3986 §6.2.2, syntax-based).

``normalize(url)`` maps equivalent spellings of an absolute http(s) URL to one
string, and that string is exactly what the client puts on the wire: it is a
fixed point of ``yarl.URL`` (which the client builds every request URL with),
so a record's URL, the frontier key and the request target all agree.

What changes (§6.2.2.1-3, §6.2.3): scheme and host lower-case, IDNA hosts as
punycode, default port dropped, empty path ``/``, ``.``/``..`` segments
resolved, percent-escapes upper-case and unreserved ones decoded (``%7e`` ->
``~``), characters that must be escaped escaped (UTF-8), the fragment and an
empty ``?`` dropped. What does not: ``%2F`` in the path stays encoded, the query
keeps its order, ``//`` stays. Refused (``None``): other schemes, relative
URLs, userinfo, bad hosts/ports, more than 8 KiB.

Every extracted link goes through here, so the common shape (an ASCII host,
nothing to escape, no dot segment) takes a regex-only fast path; anything else
goes through yarl.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from yarl import URL

__all__ = ["MAX_URL_LENGTH", "host_key", "normalize"]

MAX_URL_LENGTH = 8192  # longer than any server accepts in a request line (RFC 9112 §3)

_DEFAULT_PORTS = {"http": 80, "https": 443}
# Leading/trailing C0 controls and space go; tab/CR/LF inside are dropped (as browsers do).
_STRIP = "".join(map(chr, range(0x21)))
_HOST = r"[a-z0-9][a-z0-9._-]*"
_HOST_OK = re.compile(_HOST).fullmatch
_AUTHORITY = re.compile(r"[^/?#]*://([^/?#]*)").match
# Characters yarl leaves as they are: unreserved, sub-delims, ":" "@" "/" (and "?" in the query).
_PCHARS = r"A-Za-z0-9!$&'()*+,\-./:;=@_~"
_FAST = re.compile(
    rf"((?i:https?))://((?i:{_HOST}))(?::([0-9]{{0,5}}))?"
    rf"(/[{_PCHARS}]*)?(?:\?([{_PCHARS}?]*))?(?:#.*)?",
    re.DOTALL,
).fullmatch


def normalize(url: str) -> str | None:
    """The normal form of an absolute http(s) URL, or ``None`` if it has none. Never raises."""
    if not isinstance(url, str) or len(url) > MAX_URL_LENGTH:
        return None
    url = url.strip(_STRIP)
    if "\t" in url or "\n" in url or "\r" in url:
        url = url.replace("\t", "").replace("\n", "").replace("\r", "")
    match = _FAST(url)
    if match is None or "/." in url:  # "/." may start a dot segment: yarl resolves those
        return _slow(url)
    return _fast(*match.groups())  # never longer than its input


def authority_of(normal: str) -> str:
    """``host_key`` of a URL already in normal form, without normalizing it again."""
    start = normal.index("://") + 3  # a normal form always has "/" after the authority
    return normal[start : normal.index("/", start)]


def host_key(url: str) -> str:
    """The politeness key of ``url``: ``host[:port]``, lower-case, no credentials.

    For a URL that normalizes, this is the authority of its normal form (the port
    only when not the default), i.e. ``runner.engine._host_key(normalize(url))``.
    Anything else falls back to the engine's rule on the raw URL (``""`` if unparsable).
    """
    normal = normalize(url)
    if normal is not None:
        return authority_of(normal)
    try:
        netloc = urlsplit(url).netloc
    except (ValueError, TypeError, AttributeError):
        return ""
    return netloc.lower().rpartition("@")[2]


def _fast(
    scheme: str, host: str, port: str | None, path: str | None, query: str | None
) -> str | None:
    scheme = scheme.lower()
    authority = host = host.lower()
    if port:  # "h:" (empty port) is the same as "h" (RFC 3986 §6.2.3)
        number = int(port)
        if not 0 < number <= 0xFFFF:
            return None
        if number != _DEFAULT_PORTS[scheme]:
            authority = f"{host}:{number}"
    if query:
        return f"{scheme}://{authority}{path or '/'}?{query}"
    return f"{scheme}://{authority}{path or '/'}"


def _slow(url: str) -> str | None:
    authority = _AUTHORITY(url)
    if authority is not None and "@" in authority.group(1):
        return None  # userinfo, even empty ("http://@h/"), which yarl would drop silently
    try:
        parsed = URL(url)
        scheme = parsed.scheme
        host = parsed.raw_host
        port = parsed.explicit_port
        if (
            scheme not in _DEFAULT_PORTS
            or not host
            or parsed.raw_user is not None
            or parsed.raw_password is not None
        ):
            return None
        path = parsed.raw_path or "/"
        query = parsed.raw_query_string
    except ValueError:  # bad port, IPv6 or IDNA (UnicodeError is a ValueError)
        return None
    if ":" in host:  # an IPv6 literal, compressed and lower-cased by yarl
        if "%" in host:  # a zone id only means something on the crawling machine
            return None
        host = f"[{host}]"
    elif not _HOST_OK(host):
        return None
    if port is not None:
        if port == 0:
            return None
        if port != _DEFAULT_PORTS[scheme]:
            host = f"{host}:{port}"
    result = f"{scheme}://{host}{path}?{query}" if query else f"{scheme}://{host}{path}"
    return result if len(result) <= MAX_URL_LENGTH else None  # escaping can triple a length
