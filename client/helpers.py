"""Small public helpers with aiohttp's names: auth, header parsers, IP checks, pinning.

The header parsers take hostile input from servers, so they are hand-written
linear scanners (no backtracking regexes) and never raise on junk: a malformed
value gives an empty or partial result, as a browser would.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import codecs
import functools
import ipaddress
import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import NamedTuple
from urllib.parse import unquote

from multidict import MultiDict, MultiDictProxy
from yarl import URL

from .exceptions import ServerFingerprintMismatch

__all__ = (
    "BasicAuth",
    "ContentDisposition",
    "Fingerprint",
    "MimeType",
    "charset_from_content_type",
    "check_host",
    "content_disposition_filename",
    "encode_basic_auth",
    "is_ip_address",
    "is_json_content_type",
    "parse_content_disposition",
    "parse_link_header",
    "parse_mimetype",
)

# RFC 9110 §5.6.2 tchar.
_TOKEN = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_HEX = frozenset("0123456789abcdefABCDEF")
# RFC 7617 §2: user-id and password must not contain control characters.
_CTL_RE = re.compile(r"[\x00-\x1f\x7f]")


def _is_token(value: str) -> bool:
    return bool(value) and _TOKEN.issuperset(value)


# -- Basic auth (RFC 7617) ---------------------------------------------------


def _check_credentials(login: str, password: str) -> None:
    if ":" in login:
        raise ValueError('A ":" is not allowed in login (RFC 7617 section 2)')
    if _CTL_RE.search(login) or _CTL_RE.search(password):
        # CR/LF/NUL would let a credential inject header lines.
        raise ValueError("control characters are not allowed in credentials")


def encode_basic_auth(login: str, password: str = "", encoding: str = "utf-8") -> str:
    """Return the ``Authorization`` header value ``"Basic <base64>"``."""
    _check_credentials(login, password)
    creds = f"{login}:{password}".encode(encoding)
    return "Basic " + base64.b64encode(creds).decode("ascii")


class _BasicAuthFields(NamedTuple):
    login: str
    password: str = ""
    encoding: str = "latin1"


class BasicAuth(_BasicAuthFields):
    """HTTP Basic credentials, validated on construction (no ``:`` in login, no CTLs)."""

    __slots__ = ()

    def __new__(cls, login: str, password: str = "", encoding: str = "latin1") -> BasicAuth:
        if login is None:
            raise ValueError("None is not allowed as login value")
        if password is None:
            raise ValueError("None is not allowed as password value")
        _check_credentials(login, password)
        return super().__new__(cls, login, password, encoding)

    @classmethod
    def decode(cls, auth_header: str, encoding: str = "latin1") -> BasicAuth:
        """Parse an ``Authorization: Basic ...`` value; ValueError if it is not one."""
        auth_type, _, encoded = auth_header.partition(" ")
        if auth_type.lower() != "basic":
            raise ValueError(f"Unknown authorization method {auth_type!r}")
        try:
            decoded = base64.b64decode(encoded.strip().encode("ascii"), validate=True)
            text = decoded.decode(encoding)
        except (binascii.Error, UnicodeError) as exc:
            raise ValueError("Invalid base64 encoding.") from exc
        login, sep, password = text.partition(":")
        if not sep:
            raise ValueError("Invalid credentials.")
        return cls(login, password, encoding)

    @classmethod
    def from_url(cls, url: URL, *, encoding: str = "latin1") -> BasicAuth | None:
        """Credentials from the URL's userinfo, percent-decoded exactly once.

        Returns None when the URL has no userinfo.  Raises ValueError when the
        decoded credentials could not be sent safely (``:`` in login, CTLs).
        """
        if not isinstance(url, URL):
            raise TypeError("url should be yarl.URL instance")
        if url.raw_user is None and url.raw_password is None:
            return None
        return cls(url.user or "", url.password or "", encoding)

    def encode(self) -> str:
        """Return the header value ``"Basic <base64>"``."""
        return encode_basic_auth(self.login, self.password, self.encoding)


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


# -- IP literals and host checks ----------------------------------------------


def _is_canonical_ipv4(host: str) -> bool:
    parts = host.split(".")
    if len(parts) != 4:
        return False
    for part in parts:
        # 1-3 ASCII digits, no octal-looking leading zero, at most 255.
        if not (0 < len(part) <= 3 and part.isascii() and part.isdigit()):
            return False
        if (part[0] == "0" and len(part) > 1) or int(part) > 255:
            return False
    return True


def _is_ipv6(host: str) -> bool:
    try:
        ipaddress.IPv6Address(host)  # also accepts a %zone suffix
    except ValueError:
        return False
    return True


def _looks_numeric(label: str) -> bool:
    """WHATWG URL "ends in a number": decimal digits, or 0x with hex digits."""
    if not label.isascii():
        return False
    if label[:2] in ("0x", "0X"):
        return _HEX.issuperset(label[2:])
    return label.isdigit()


def is_ip_address(host: str | bytes | None) -> bool:
    """True if ``host`` is an IP literal: canonical dotted-quad IPv4 or IPv6.

    Legacy numeric forms (``127.1``, ``2130706433``, ``0x7f.1``) are *not* IP
    addresses here; :func:`check_host` rejects them outright.
    """
    if not host:
        return False
    if isinstance(host, bytes):
        try:
            host = host.decode("ascii")
        except UnicodeDecodeError:
            return False
    if ":" in host:
        return _is_ipv6(host)
    return _is_canonical_ipv4(host)


def check_host(host: str) -> None:
    """Raise ValueError for hosts that must never be resolved or connected to.

    A host whose last label is numeric is an IPv4 address by the WHATWG URL
    rules, and must then be canonical: ``2130706433``, ``127.1``, ``0x7f.1``,
    ``017700000001`` would otherwise be mapped onto 127.0.0.1 by the OS and
    slip past an address policy (security.md SSRF-02, aiohttp 3.14.1).
    """
    if not host:
        raise ValueError("empty host")
    if ":" in host:
        if not _is_ipv6(host):
            raise ValueError(f"{host!r} is not a valid IPv6 address")
        return
    last = host.rstrip(".").rpartition(".")[2]
    if _looks_numeric(last) and not _is_canonical_ipv4(host):
        raise ValueError(f"{host!r} is not a canonical IPv4 address")


# -- certificate pinning ------------------------------------------------------


class Fingerprint:
    """A SHA-256 pin of the server certificate (DER), checked after the handshake.

    Unlike aiohttp, a pin is checked *on top of* verification: with
    ``ssl=Fingerprint(...)`` the chain and host name are still checked, with
    the connector's context if it has one. Only ``TCPConnector(ssl=False)``
    plus a pinned request trusts the pin alone. A pin on a plain ``http://``
    URL (or an https->http redirect) raises ``ServerFingerprintMismatch``.
    """

    __slots__ = ("_fingerprint",)

    def __init__(self, fingerprint: bytes) -> None:
        if len(fingerprint) in (16, 20):
            raise ValueError("md5 and sha1 are insecure and not supported. Use sha256.")
        if len(fingerprint) != 32:
            raise ValueError("fingerprint has invalid length")
        self._fingerprint = bytes(fingerprint)

    @property
    def fingerprint(self) -> bytes:
        """The expected SHA-256 digest."""
        return self._fingerprint

    def check(self, transport: asyncio.BaseTransport) -> None:
        """Raise ServerFingerprintMismatch unless the peer certificate matches.

        Fails closed (security.md F3): a transport without TLS or without a
        peer certificate is a mismatch, unlike aiohttp which returns silently.
        """
        sslobj = transport.get_extra_info("ssl_object")
        cert = sslobj.getpeercert(binary_form=True) if sslobj is not None else None
        import hashlib  # here, not at import: ~1 ms of `import client` for TLS pins only

        got = hashlib.sha256(cert).digest() if cert else b""
        if got != self._fingerprint:
            peer = transport.get_extra_info("peername")
            host, port = (str(peer[0]), int(peer[1])) if peer else ("", 0)
            raise ServerFingerprintMismatch(self._fingerprint, got, host, port)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Fingerprint):
            return NotImplemented
        return self._fingerprint == other._fingerprint

    def __hash__(self) -> int:
        # Equal pins share pooled connections (the pool key holds the ssl setting).
        return hash((Fingerprint, self._fingerprint))

    def __repr__(self) -> str:
        return f"<Fingerprint sha256={self._fingerprint.hex()}>"
