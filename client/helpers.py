"""Small public helpers with aiohttp's names: auth, IP checks, pinning.

The header-value parsers live in ``client.header_values`` and are re-exported
here under aiohttp's ``helpers`` names.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import ipaddress
import re
from typing import NamedTuple

from yarl import URL

from .exceptions import ServerFingerprintMismatch
from .header_values import (  # aiohttp.helpers has these names too
    ContentDisposition,
    MimeType,
    charset_from_content_type,
    content_disposition_filename,
    is_json_content_type,
    parse_content_disposition,
    parse_link_header,
    parse_mimetype,
)

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

_HEX = frozenset("0123456789abcdefABCDEF")
# RFC 7617 §2: user-id and password must not contain control characters.
_CTL_RE = re.compile(r"[\x00-\x1f\x7f]")


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
