"""Value checks shared by the loader and ``iter_requests``: pure functions that
return a normalised value or raise ``ValueError(message)``.

Messages describe the mistake but never repeat the value: it may hold a
secret from the environment. URLs are parsed with yarl, the parser the client
connects with (one parser for checking and connecting, security.md H4).
"""

from __future__ import annotations

import ipaddress
import math
import re
from functools import lru_cache
from pathlib import PurePosixPath, PureWindowsPath

from yarl import URL

# RFC 9110 §5.6.2: token = 1*tchar
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# RFC 9110 §5.5: field values carry no CTL except HTAB (CR/LF/NUL would split
# or truncate the header on the wire, security.md A3).
_HEADER_CTL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
# RFC 6265 §4.1.1 cookie-octet, optionally inside DQUOTEs.
_COOKIE_VALUE = re.compile(r'"?[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*"?')
_URL_BAD = re.compile(r"[\x00-\x20\x7f]|\s")
_SIMPLE_URL = re.compile(r"[hH][tT][tT][pP][sS]?://([A-Za-z0-9._-]+)(?::([0-9]{1,5}))?(?:[/?#].*)?")
_LABEL = re.compile(r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)")
# WHATWG URL: a host whose last label is numeric is an IPv4 address, so
# ``0x7f.1`` and ``2130706433`` mean 127.0.0.1 to some parsers (security.md H2).
_NUMERIC_LABEL = re.compile(r"[0-9]+|0[xX][0-9a-fA-F]*")
_SIZE = re.compile(r"((?:0|[1-9][0-9]{0,14})(?:\.[0-9]{1,6})?)\s*([KMGT]i?B|B)?", re.IGNORECASE)
_STATUS_CLASS = re.compile(r"([1-5])xx", re.IGNORECASE)
_STATUS_RANGE = re.compile(r"([0-9]{3})\s*-\s*([0-9]{3})")

# Crawl scopes and link-check excludes are matched against every URL found:
# a bounded pattern length keeps a job file from shipping a huge automaton.
MAX_REGEX = 4096

FORBIDDEN_HEADERS = frozenset({"content-length", "transfer-encoding"})
SENSITIVE_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})


def check_url(text: str) -> str:
    """An absolute http(s) URL with a valid host; returns *text* unchanged."""
    if not text:
        raise ValueError("URL is empty")
    if _URL_BAD.search(text):
        raise ValueError("URL contains whitespace or a control character")
    simple = _SIMPLE_URL.fullmatch(text)
    if simple:
        # Fast path for URL lists: a plain ASCII name or IPv4 host, no userinfo.
        # Anything this accepts, yarl parses to the same host and port.
        problem = _host_problem(simple.group(1).lower())
        port = simple.group(2)
        if not problem and port is not None and not 1 <= int(port) <= 65535:
            problem = "URL port must be 1-65535"
        if problem:
            raise ValueError(problem)
        return text
    try:
        url = URL(text)
        port = url.explicit_port
    except (ValueError, TypeError, UnicodeError) as exc:
        # yarl's messages may quote the input; ours must not (it can be a secret).
        if "port" in str(exc).lower():
            raise ValueError("URL port must be 1-65535") from None
        raise ValueError("not a valid URL") from None
    if url.scheme not in ("http", "https"):
        raise ValueError("URL must start with http:// or https://")
    if not url.raw_host:
        raise ValueError("URL has no host")
    problem = _host_problem(url.raw_host)
    if problem:
        raise ValueError(problem)
    if port == 0:
        raise ValueError("URL port must be 1-65535")
    return text


@lru_cache(maxsize=4096)
def _host_problem(host: str) -> str:
    """ "" if *host* (yarl's IDNA-encoded ``raw_host``) is acceptable."""
    if ":" in host:
        try:
            ipaddress.IPv6Address(host.split("%", 1)[0])
        except ValueError:
            return "URL has an invalid IPv6 address"
        return ""
    name = host[:-1] if host.endswith(".") else host
    labels = name.split(".")
    if len(name) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        return "URL has an invalid host name"
    if _NUMERIC_LABEL.fullmatch(labels[-1]):
        try:
            ipaddress.IPv4Address(name)
        except ValueError:
            return "URL host is a numeric address that is not canonical dotted-decimal IPv4"
    return ""


def check_token(text: str, what: str) -> str:
    """An RFC 9110 token (header name, method, cookie name)."""
    if not _TOKEN.fullmatch(text):
        raise ValueError(f"{what} must be an HTTP token (letters, digits and !#$%&'*+-.^_`|~)")
    return text


def check_method(text: str) -> str:
    """A method token, upper-cased (``post`` -> ``POST``)."""
    if len(text) > 32:
        raise ValueError("method is longer than 32 characters")
    return check_token(text, "method").upper()


def check_header_name(text: str) -> str:
    """A header name the job file may set."""
    check_token(text, "header name")
    if text.lower() in FORBIDDEN_HEADERS:
        raise ValueError(f"{text} is computed from the body; it cannot be set")
    return text


def check_header_value(text: str) -> str:
    """A header value without CR, LF, NUL or other control characters."""
    bad = _HEADER_CTL.search(text)
    if bad:
        raise ValueError(f"header value contains a control character ({bad.group()!r})")
    return text


def check_cookie_value(text: str) -> str:
    """An RFC 6265 cookie value."""
    if not _COOKIE_VALUE.fullmatch(text) or text == '"':
        raise ValueError(
            "cookie value has a character RFC 6265 forbids (control, space, '\"', ',', ';' or '\\')"
        )
    return text


def check_credential(text: str, *, user: bool) -> str:
    """Basic-auth user or password: no control characters; no ':' in the user (RFC 7617)."""
    if _HEADER_CTL.search(text):
        raise ValueError("contains a control character")
    if user and ":" in text:
        raise ValueError("user must not contain ':' (RFC 7617 §2)")
    return text


def check_relative_path(text: str) -> PurePosixPath:
    """A path inside the job file's directory.

    Absolute paths, ``~``, ``..`` components and backslashes are refused: a
    job file from a pull request must not write (or read) outside its own
    directory (security.md RUN-02). Absolute paths belong on the command line.
    """
    if not text:
        raise ValueError("path is empty")
    if _HEADER_CTL.search(text) or "\t" in text:
        raise ValueError("path contains a control character")
    if "\\" in text:
        raise ValueError("use '/' as the path separator")
    if text.startswith("/") or PureWindowsPath(text).drive:
        raise ValueError(
            "absolute paths are not allowed in a job file (pass them on the command line)"
        )
    if text.startswith("~"):
        raise ValueError("'~' is not expanded; use a path relative to the job file")
    path = PurePosixPath(text)
    if ".." in path.parts:
        raise ValueError("path must not contain '..' (it would leave the job directory)")
    return path


def check_regex(text: str) -> str:
    """A regular expression that compiles (``re`` syntax); returns *text*."""
    if not text:
        raise ValueError("regular expression is empty (it would match every URL)")
    if len(text) > MAX_REGEX:
        raise ValueError(f"regular expression is longer than {MAX_REGEX} characters")
    try:
        re.compile(text)
    except re.error as exc:
        where = f" at position {exc.pos}" if exc.pos is not None else ""
        raise ValueError(f"invalid regular expression: {exc.msg}{where}") from None
    return text


_UNITS = {
    "": 1,
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}


def parse_size(text: str) -> int:
    """Bytes from ``1024``, ``10MB`` (10^6), ``64MiB`` (2^20), ``1.5 GiB``..."""
    match = _SIZE.fullmatch(text.strip())
    if not match:
        raise ValueError(
            "must be a size such as 1024, 10MB or 64MiB (units B, KB, MB, GB, "
            "TB, KiB, MiB, GiB, TiB)"
        )
    number, unit = match.groups()
    value = math.floor(float(number) * _UNITS[(unit or "").lower()])
    if value <= 0:
        raise ValueError("must be a size > 0")
    return value


def parse_status_pattern(text: str) -> frozenset[int]:
    """``404``, ``2xx`` or ``200-299`` as a set of status codes (100-599)."""
    text = text.strip()
    if text.isascii() and text.isdigit() and len(text) == 3:
        return status_codes(int(text), int(text))
    match = _STATUS_CLASS.fullmatch(text)
    if match:
        first = int(match.group(1)) * 100
        return status_codes(first, first + 99)
    match = _STATUS_RANGE.fullmatch(text)
    if match:
        return status_codes(int(match.group(1)), int(match.group(2)))
    raise ValueError(
        "must be a status code (100-599), a class like '2xx', or a range like '200-299'"
    )


def status_codes(first: int, last: int) -> frozenset[int]:
    """The codes first..last inclusive, checked to lie within 100-599."""
    if first == last and not 100 <= first <= 599:
        raise ValueError("status code must be from 100 to 599")
    if not 100 <= first <= last <= 599:
        raise ValueError("status range must be low-high within 100-599")
    return frozenset(range(first, last + 1))
