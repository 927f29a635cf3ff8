"""Cookie rules as pure functions: ``Set-Cookie`` parsing, dates, domains, paths, the
``Cookie`` header and the JSON file format. ``client.cookiejar`` holds the state.

Everything here is linear in its input. The ``Set-Cookie`` parser is a small
lenient RFC 6265 §5.2 parser (split on ``;``, then on the first ``=``) rather than
``http.cookies.SimpleCookie.load``, whose regex was quadratic on backslash-heavy
quoted values (CPython CVE-2024-7592).

Limits follow RFC 6265 §6.1 and aiohttp 3.14's choices: at most 50 ``Set-Cookie``
fields per response, 4096 octets of name+value, 32 attributes, 1024-octet attribute
values; the outgoing header carries at most 150 cookies and 8190 octets.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from http.cookies import BaseCookie, CookieError, Morsel, SimpleCookie
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from publicsuffixlist import PublicSuffixList

__all__ = (
    "cookie_header",
    "cookie_scope",
    "domain_match",
    "parse_cookie_date",
    "parse_set_cookie",
    "parse_set_cookie_headers",
    "path_match",
)

_T = TypeVar("_T")

MAX_COOKIES_PER_RESPONSE = 50
MAX_PAIR_OCTETS = 4096
MAX_ATTRIBUTES = 32
MAX_ATTRIBUTE_VALUE_OCTETS = 1024
MAX_COOKIES_PER_HEADER = 150
MAX_COOKIE_HEADER_OCTETS = 8190
# The limit counts the whole field line, as aiohttp does.
_HEADER_PREFIX_OCTETS = len("Cookie: ")
# Latest instant we store; keeps JSON finite and calendar arithmetic in range.
MAX_TIMESTAMP = 253402300799.0  # calendar.timegm((9999, 12, 31, 23, 59, 59, 0, 0, 0))

# RFC 6265bis §5.6 step 1: any CTL but HTAB voids the whole field.
_FIELD_CTL_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
# In a name or value even HTAB is refused: it is no cookie-octet (RFC 6265 §4.1.1).
_ANY_CTL_RE = re.compile(r"[\x00-\x1f\x7f]")
# aiohttp's name allowlist: RFC tokens plus ()<>?@[]{}/:= that real servers send.
_NAME_RE = re.compile(r"[!#$%&'()*+\-./0-9:<=>?@A-Z\[\]^_`a-z{|}~]+")
_UNQUOTE_RE = re.compile(r"\\(?:([0-3][0-7][0-7])|(.))", re.DOTALL)
_MAX_AGE_RE = re.compile(r"-?[0-9]+", re.ASCII)
_HEX_NUMBER_RE = re.compile(r"0[xX][0-9a-fA-F]*")
_WSP = " \t"
_FLAG_ATTRS = frozenset(("secure", "httponly", "partitioned"))
_VALUE_ATTRS = frozenset(("expires", "max-age", "domain", "path", "samesite", "comment", "version"))


def _morsel_accepts(attr: str) -> bool:
    try:
        Morsel()[attr] = ""
    except CookieError:  # "partitioned" exists only on Python >= 3.14
        return False
    return True


_KNOWN_ATTRS = frozenset(a for a in _FLAG_ATTRS | _VALUE_ATTRS if _morsel_accepts(a))
_QUOTER = SimpleCookie()


def make_morsel(name: str, value: str, coded_value: str) -> Morsel[str]:
    """Build a Morsel without ``Morsel.set``'s key check, which is stricter than servers.

    Callers have already validated the name against the allowlist.
    """
    morsel: Morsel[str] = Morsel()
    # __setstate__ is the stable, pickle-backed way to set key/value/coded_value.
    morsel.__setstate__({"key": name, "value": value, "coded_value": coded_value})  # type: ignore[attr-defined]
    return morsel


def octets(text: str) -> int | None:
    """UTF-8 length of ``text``, or None if it holds lone surrogates."""
    if text.isascii():
        return len(text)
    try:
        return len(text.encode("utf-8"))
    except UnicodeEncodeError:
        return None


def valid_name(name: str) -> bool:
    """True if ``name`` may be a cookie name."""
    return _NAME_RE.fullmatch(name) is not None


def storable(name: str, value: str, coded_value: str) -> bool:
    """A legal name, no control character, within the 4096-octet name+value limit."""
    if not valid_name(name) or _ANY_CTL_RE.search(value) or _ANY_CTL_RE.search(coded_value):
        return False
    size = octets(name + coded_value)
    return size is not None and size <= MAX_PAIR_OCTETS


def quote_value(value: str) -> str:
    """``SimpleCookie``'s quoting: unchanged if plain, else a quoted, escaped string."""
    return _QUOTER.value_encode(value)[1]


def _unquote(coded: str) -> str:
    """Undo ``SimpleCookie`` quoting (``\\ooo`` octal and ``\\X`` escapes); linear."""
    if len(coded) < 2 or coded[0] != '"' or coded[-1] != '"':
        return coded
    return _UNQUOTE_RE.sub(lambda m: chr(int(m[1], 8)) if m[1] else m[2], coded[1:-1])


def parse_set_cookie(field: str) -> Morsel[str] | None:
    """Parse one ``Set-Cookie`` field value (RFC 6265 §5.2); None means "ignore it".

    ``value`` is unquoted the way ``SimpleCookie`` does; ``coded_value`` keeps the
    text as sent, so a server's quoting is echoed back unchanged.
    """
    pair, _, attributes = field.partition(";")
    name, eq, coded = pair.partition("=")
    name = name.strip(_WSP)
    coded = coded.strip(_WSP)
    # Length first: an over-long pair is dropped before any regex looks at it.
    if not eq or not name or len(name) + len(coded) > MAX_PAIR_OCTETS:
        return None
    if _FIELD_CTL_RE.search(field) or not storable(name, value := _unquote(coded), coded):
        return None
    morsel = make_morsel(name, value, coded)
    _apply_attributes(morsel, attributes)
    return morsel


def _apply_attributes(morsel: Morsel[str], attributes: str) -> None:
    """Set known attributes; the last of a kind wins, unknown ones are ignored (§5.2)."""
    if not attributes:
        return
    for av in attributes.split(";", MAX_ATTRIBUTES)[:MAX_ATTRIBUTES]:
        attr, _, value = av.partition("=")
        attr = attr.strip(_WSP).lower()
        if attr not in _KNOWN_ATTRS:
            continue
        if attr in _FLAG_ATTRS:
            morsel[attr] = True  # like browsers, a flag's value is ignored
            continue
        value = value.strip(_WSP)
        if len(value) > MAX_ATTRIBUTE_VALUE_OCTETS or (octets(value) or 0) > (
            MAX_ATTRIBUTE_VALUE_OCTETS
        ):
            continue  # RFC 6265bis §5.6: ignore an over-long attribute
        if attr == "domain" and not value:
            continue  # RFC 6265bis §5.6.3: an empty Domain is ignored
        morsel[attr] = value


def parse_set_cookie_headers(headers: Sequence[str]) -> tuple[list[Morsel[str]], int]:
    """Parse up to 50 ``Set-Cookie`` fields; return the cookies and how many were dropped."""
    parsed: list[Morsel[str]] = []
    for field in headers[:MAX_COOKIES_PER_RESPONSE]:
        if (morsel := parse_set_cookie(field)) is not None:
            parsed.append(morsel)
    return parsed, len(headers) - len(parsed)


# RFC 6265 §5.1.1: tokens are runs of non-delimiters.
_DATE_TOKEN_RE = re.compile(r"[^\x09\x20-\x2f\x3b-\x40\x5b-\x60\x7b-\x7e]+")
_TIME_RE = re.compile(r"([0-9]{1,2}):([0-9]{1,2}):([0-9]{1,2})(?:[^0-9]|\Z)")
_DAY_RE = re.compile(r"([0-9]{1,2})(?:[^0-9]|\Z)")
_YEAR_RE = re.compile(r"([0-9]{2,4})(?:[^0-9]|\Z)")
# Spelled out: calendar.month_abbr follows the process locale.
_MONTHS = {
    m: i
    for i, m in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1
    )
}


def parse_cookie_date(text: str) -> float | None:
    """RFC 6265 §5.1.1 cookie-date algorithm; POSIX seconds or None if it fails."""
    hms: tuple[int, int, int] | None = None
    day = month = year = None
    for token in _DATE_TOKEN_RE.findall(text[:MAX_ATTRIBUTE_VALUE_OCTETS]):
        if hms is None and (m := _TIME_RE.match(token)):
            hms = (int(m[1]), int(m[2]), int(m[3]))
        elif day is None and (m := _DAY_RE.match(token)):
            day = int(m[1])
        elif month is None and (found := _MONTHS.get(token[:3].lower())):
            month = found
        elif year is None and (m := _YEAR_RE.match(token)):
            year = int(m[1])
    if hms is None or day is None or month is None or year is None:
        return None
    if year < 100:
        year += 1900 if year >= 70 else 2000
    hour, minute, second = hms
    if year < 1601 or hour > 23 or minute > 59 or second > 59:
        return None
    import calendar  # here: calendar and datetime cost ~2 ms of `import client`

    if not 1 <= day <= calendar.monthrange(year, month)[1]:
        return None  # step 5: no such date (31 Feb), not a silent roll-over
    return float(calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0)))


def parse_max_age(text: str) -> int | None:
    """RFC 6265 §5.2.2 delta-seconds: ``-?DIGIT+`` only (never bare ``int()``)."""
    if _MAX_AGE_RE.fullmatch(text) is None:
        return None
    return int(text[:20])  # more digits than this is "forever" anyway


def is_ip_host(host: str) -> bool:
    """True for an IP literal host as yarl gives it (IPv6 without brackets).

    A host whose last label is numeric counts too: WHATWG URL parses it as IPv4.
    """
    if ":" in host:
        return True
    last = host.rstrip(".").rpartition(".")[2]
    return (last.isascii() and last.isdigit()) or _HEX_NUMBER_RE.fullmatch(last) is not None


def domain_match(host: str, domain: str) -> bool:
    """RFC 6265 §5.1.3: ``host`` equals ``domain`` or is a DNS subdomain of it."""
    if host == domain:
        return True
    return (
        host.endswith(domain)
        and host[-len(domain) - 1 : -len(domain)] == "."
        and not is_ip_host(host)
    )


def path_match(request_path: str, cookie_path: str) -> bool:
    """RFC 6265 §5.1.4 path-match."""
    if not request_path.startswith(cookie_path):
        return False
    n = len(cookie_path)
    return n == len(request_path) or cookie_path[-1] == "/" or request_path[n] == "/"


def default_path(request_path: str) -> str:
    """RFC 6265 §5.1.4 default-path: the directory of the request path."""
    if not request_path.startswith("/"):
        return "/"
    cut = request_path.rfind("/")
    return request_path[:cut] if cut > 0 else "/"


@functools.cache
def _psl() -> PublicSuffixList:
    from publicsuffixlist import PublicSuffixList  # first domain cookie, not `import client`

    return PublicSuffixList()  # the bundled list; nothing is fetched


def is_public_suffix(domain: str) -> bool:
    """True if ``domain`` is a public suffix (``com``, ``co.uk``, ``github.io``...).

    Unknown top-level labels count as public, as in browsers.
    """
    return _psl().is_public(domain)


def registrable_domain(domain: str) -> str:
    """The eTLD+1 that per-site limits count against; the name itself if none."""
    if not domain or is_ip_host(domain):
        return domain
    return _psl().privatesuffix(domain) or domain


def coded_for_wire(morsel: Morsel[str], quote: bool) -> str:
    """The value to send: quoted like ``SimpleCookie`` (server quoting kept), or raw."""
    if not quote:
        return morsel.value
    coded = morsel.coded_value
    if coded and coded[0] == '"':
        return coded
    return quote_value(morsel.value)


def within_header_limits(pieces: Iterable[tuple[_T, int]]) -> list[_T]:
    """Keep ``(item, octets)`` in order while they fit 150 cookies / 8190 octets."""
    kept: list[_T] = []
    total = _HEADER_PREFIX_OCTETS - 2  # no "; " before the first pair
    for item, size in pieces:
        if len(kept) >= MAX_COOKIES_PER_HEADER:
            break
        if total + 2 + size <= MAX_COOKIE_HEADER_OCTETS:
            total += 2 + size
            kept.append(item)
    return kept


def _wire_pairs(cookies: BaseCookie[str], quote: bool) -> Iterator[tuple[str, int]]:
    for name, morsel in cookies.items():
        coded = coded_for_wire(morsel, quote)
        # What reaches the wire is checked, not what was stored (A3: CR/LF/CTL).
        if _NAME_RE.fullmatch(name) is None or _ANY_CTL_RE.search(coded):
            continue
        pair = f"{name}={coded}"
        if (size := octets(pair)) is not None:
            yield pair, size


def cookie_header(cookies: BaseCookie[str], quote: bool = True) -> str:
    """Build the ``Cookie`` header value from ``cookies``, in their order (RFC 6265 §5.4).

    Pairs that cannot be sent safely (bad name, control characters) are skipped;
    the result holds at most 150 cookies and, with ``Cookie: ``, 8190 octets.
    """
    return "; ".join(within_header_limits(_wire_pairs(cookies, quote)))


def _normalise_domain(raw: str) -> str | None:
    """Domain attribute → lower-case, no leading dot; None means refuse the cookie."""
    domain = raw.strip().lower()
    domain = domain[1:] if domain.startswith(".") else domain
    if domain.endswith("."):
        return None  # "example.com." never domain-matches a host (§5.1.3)
    if not domain.isascii():
        try:
            domain = domain.encode("idna").decode("ascii")
        except UnicodeError:
            return None
    return domain


def cookie_scope(raw_domain: str, host: str | None) -> tuple[str, bool] | None:
    """``(domain, host_only)`` for a cookie set by ``host`` (None: the user), or None.

    RFC 6265 §5.3 steps 4-6 with the Public Suffix List; IP hosts are never
    domain-matched (only ``Domain=<the same IP>`` is accepted, as host-only).
    """
    if (domain := _normalise_domain(raw_domain) if raw_domain else "") is None:
        return None
    if not domain:
        return (host, True) if host else ("", False)
    if host is None:  # the user named the domain of a shared cookie
        return None if is_public_suffix(domain) else (domain, False)
    if domain == host:
        # An IP host or a host that is a public suffix keeps the cookie to itself.
        return host, is_ip_host(host) or is_public_suffix(host)
    if is_ip_host(host) or is_public_suffix(domain):
        return None
    return (domain, False) if domain_match(host, domain) else None


def prefix_ok(name: str, secure: bool, bare_host_only: bool, path: str) -> bool:
    """RFC 6265bis §4.1.3 ``__Secure-`` / ``__Host-`` name prefixes (any case)."""
    head = name[:9].lower()
    if head.startswith("__secure-"):
        return secure
    if head.startswith("__host-"):
        return secure and bare_host_only and path == "/"
    return True


def expiry(morsel: Morsel[str], now: float) -> float | None:
    """Absolute expiry; Max-Age wins over Expires (§5.3 step 3); bad values are cleared."""
    if (max_age := morsel["max-age"]) != "":
        if (seconds := parse_max_age(str(max_age))) is not None:
            return 0.0 if seconds <= 0 else min(now + seconds, MAX_TIMESTAMP)
        morsel["max-age"] = ""
    if (expires := morsel["expires"]) != "":
        if (when := parse_cookie_date(str(expires))) is not None:
            return min(when, MAX_TIMESTAMP)
        morsel["expires"] = ""
    return None


def candidate_domains(host: str, unsafe: bool) -> list[str]:
    """Every cookie domain that may match ``host``, then "" for shared cookies."""
    if not host:
        return [""]
    if is_ip_host(host):
        return [host, ""] if unsafe else [""]
    labels = host.split(".")
    return [".".join(labels[i:]) for i in range(len(labels))] + [""]


# (domain, path key, morsel, host_only, absolute expiry) - one stored cookie.
StoredCookie = tuple[str, str, Morsel[str], bool, "float | None"]
# Relative expiry is not saved: the absolute deadline is.
_SAVED_ATTRS = ("path", "domain", "secure", "httponly", "samesite", "comment", "version")


def save_json(file_path: str | os.PathLike[str], cookies: Iterable[StoredCookie]) -> None:
    """Write cookies in aiohttp 3.14's JSON format, mode 0600, replacing atomically."""
    data: dict[str, dict[str, dict[str, str | bool | float]]] = {}
    for domain, path_key, morsel, host_only, expires in cookies:
        record: dict[str, str | bool | float] = {
            "key": morsel.key, "value": morsel.value, "coded_value": morsel.coded_value,
        }  # fmt: skip
        record.update((attr, morsel[attr]) for attr in _SAVED_ATTRS if morsel[attr])
        if host_only:
            record["host_only"] = True
        if expires is not None:
            record["expires_timestamp"] = expires
        data.setdefault(f"{domain}|{path_key}", {})[morsel.key] = record
    import tempfile  # only here: with shutil it is ~2 ms of `import client`

    path = os.fspath(file_path)
    # mkstemp creates the file 0600, so tokens are never readable by others.
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path) or ".", prefix=".cookies-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def load_json(file_path: str | os.PathLike[str]) -> Iterator[tuple[str, Morsel[str], float | None]]:
    """Read a file written by :func:`save_json`: ``(domain, morsel, expiry)`` per cookie.

    Host-only cookies come back without a Domain attribute. Raises ValueError for
    anything but that JSON shape (a pickle file included) - nothing is unpickled.
    """
    with open(file_path, "rb") as f:
        raw = f.read()
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{os.fspath(file_path)!r} is not a JSON cookie file") from exc
    if not isinstance(data, dict):
        raise ValueError("cookie file: expected a JSON object")
    for group, records in data.items():
        if "|" not in group or not isinstance(records, dict):
            raise ValueError(f"cookie file: bad entry {group!r}")
        domain = group.split("|", 1)[0]
        for record in records.values():
            yield domain, *_morsel_from_record(record)


def _morsel_from_record(record: object) -> tuple[Morsel[str], float | None]:
    if not isinstance(record, dict) or not all(
        isinstance(record.get(k), str) for k in ("key", "value", "coded_value")
    ):
        raise ValueError(f"cookie file: bad cookie record {record!r:.80}")
    morsel = make_morsel(record["key"], record["value"], record["coded_value"])
    for attr in _SAVED_ATTRS:
        if isinstance(value := record.get(attr), str | bool):
            morsel[attr] = value
    if record.get("host_only") is True:
        morsel["domain"] = ""  # re-derived from the domain on load
    expires = record.get("expires_timestamp")
    if expires is None:
        return morsel, None
    if (
        isinstance(expires, bool)
        or not isinstance(expires, int | float)
        or not math.isfinite(expires)
    ):
        raise ValueError(f"cookie file: bad expiry for {record['key']!r}")
    return morsel, float(expires)
