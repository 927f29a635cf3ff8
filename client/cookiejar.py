"""Cookie jars with aiohttp's API: ``AbstractCookieJar``, ``CookieJar``, ``DummyCookieJar``.

``CookieJar`` stores and returns cookies by RFC 6265 (domain and path matching,
host-only cookies, Secure, Max-Age over Expires) and adds what aiohttp's jar lacks
or what a crawler facing hostile servers needs:

* a Public Suffix List check (bundled ``publicsuffixlist``): ``Domain=co.uk`` or
  ``Domain=com`` is refused; a host that is itself a suffix keeps a host-only cookie;
* RFC 6265bis Secure rules: an insecure origin can neither set a Secure cookie nor
  overwrite or shadow one; ``__Secure-``/``__Host-`` prefixes are enforced;
* limits: 50 fields per response, 180 cookies per registrable domain (evicted
  down to 150, least recently used first, non-Secure before Secure), 3300 in all
  (down to 3000); one log record per response about dropped cookies.

Cookies given to :meth:`CookieJar.update_cookies` without a response URL are
"shared": sent to every host, IP hosts included (as aiohttp does).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import os
import time
from abc import abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence, Sized
from http.cookies import BaseCookie, Morsel, SimpleCookie
from types import MappingProxyType
from typing import Any, NamedTuple, TypeAlias

from yarl import URL

from . import cookie_parse as cp
from .cookie_parse import cookie_header

__all__ = (
    "AbstractCookieJar",
    "ClearCookiePredicate",
    "CookieJar",
    "DummyCookieJar",
    "LooseCookies",
    "cookie_header",
)

LooseCookies: TypeAlias = (
    Mapping[str, "str | Morsel[Any]"] | Iterable[tuple[str, "str | Morsel[Any]"]] | BaseCookie[str]
)
StrOrURL: TypeAlias = "str | URL"
PathLike: TypeAlias = "str | os.PathLike[str]"
ClearCookiePredicate: TypeAlias = Callable[["Morsel[str]"], bool]
_CookieKey: TypeAlias = tuple[str, str, str]  # (domain, path without trailing "/", name)

log = logging.getLogger(__name__)
_NO_URL = URL()
_SECURE_SCHEMES = frozenset(("https", "wss"))


class AbstractCookieJar(Sized, Iterable["Morsel[str]"]):
    """What a session needs from a cookie jar."""

    @property
    @abstractmethod
    def unsafe(self) -> bool:
        """True if cookies are stored for and sent to IP-address hosts."""

    @property
    @abstractmethod
    def quote_cookie(self) -> bool:
        """True if values with special characters are quoted on the wire."""

    @property
    def treat_as_secure_origin(self) -> frozenset[URL]:
        """Origins that get Secure cookies over cleartext."""
        return frozenset()

    @property
    @abstractmethod
    def cookies(self) -> MappingProxyType[tuple[str, str], SimpleCookie]:
        """Read-only view of the stored cookies by ``(domain, path)``."""

    @property
    @abstractmethod
    def host_only_cookies(self) -> frozenset[tuple[str, str, str]]:
        """Keys ``(domain, path, name)`` of the host-only cookies."""

    @abstractmethod
    def update_cookies(self, cookies: LooseCookies, response_url: URL = _NO_URL) -> None:
        """Store ``cookies`` as set by ``response_url`` (none: shared with every host)."""

    def update_cookies_from_headers(self, headers: Sequence[str], response_url: URL) -> None:
        """Store cookies from raw ``Set-Cookie`` field values of one response."""
        if headers:
            morsels, _ = cp.parse_set_cookie_headers(headers)
            self.update_cookies([(m.key, m) for m in morsels], response_url)

    @abstractmethod
    def filter_cookies(self, request_url: URL) -> BaseCookie[str]:
        """Cookies to send to ``request_url``, most specific first."""

    @abstractmethod
    def clear(self, predicate: ClearCookiePredicate | None = None) -> None:
        """Remove all cookies, or those for which ``predicate(morsel)`` is true."""

    @abstractmethod
    def clear_domain(self, domain: str) -> None:
        """Remove cookies of ``domain`` and its subdomains."""


class _Origin(NamedTuple):
    """Who sets a cookie: ``host`` None for the user's shared cookies."""

    host: str | None
    secure: bool
    path: str


class _Entry:
    """One stored cookie and the jar's bookkeeping about it."""

    __slots__ = (
        *("created", "domain", "expires", "host_only", "key", "morsel", "name", "path"),
        *("secure", "site", "used", "wire"),
    )

    def __init__(
        self,
        key: _CookieKey,
        morsel: Morsel[str],
        host_only: bool,
        expires: float | None,
        site: str,
    ) -> None:
        self.key = key
        self.domain, _, self.name = key
        self.morsel = morsel
        self.path: str = morsel["path"]
        self.host_only = host_only
        self.expires = expires
        self.secure = bool(morsel["secure"])
        self.site = site
        self.created = self.used = 0
        self.wire: tuple[Morsel[str], int] | None = None  # built on first send


def _order(entry: _Entry) -> tuple[int, int, int]:
    # RFC 6265 §5.4 step 2: longer paths first, then older; a longer domain
    # breaks path ties so the most specific cookie wins a name clash.
    return (-len(entry.path), -len(entry.domain), entry.created)


def _secure_origins(value: StrOrURL | Iterable[StrOrURL] | None) -> frozenset[URL]:
    if value is None:
        return frozenset()
    if isinstance(value, str | URL):
        value = (value,)
    origins = (URL(v).origin() for v in value)
    return frozenset(o.with_port(None) if o.is_default_port() else o for o in origins)


def _origin_key(url: URL) -> tuple[str, str | None, int | None]:
    # yarl's URL equality tells "http://a:80" from "http://a"; origins must not.
    return (url.scheme, url.raw_host, url.port)


_NO_ENTRIES: dict[_CookieKey, _Entry] = {}


class CookieJar(AbstractCookieJar):
    """RFC 6265 cookie storage for a session (see the module docstring)."""

    def __init__(
        self,
        *,
        unsafe: bool = False,
        quote_cookie: bool = True,
        treat_as_secure_origin: StrOrURL | Iterable[StrOrURL] | None = None,
        max_per_domain: int = 180,
        max_total: int = 3300,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._unsafe = unsafe
        self._quote = quote_cookie
        self._secure_origins = _secure_origins(treat_as_secure_origin)
        self._secure_keys = frozenset(_origin_key(u) for u in self._secure_origins)
        self._max_per_domain, self._quota_per_domain = max_per_domain, max_per_domain * 5 // 6
        self._max_total, self._quota_total = max_total, max_total * 10 // 11
        self._clock = clock
        self._tick = itertools.count(1)  # creation and last-use order
        self._entries: dict[_CookieKey, _Entry] = {}
        self._cookies: dict[tuple[str, str], SimpleCookie] = {}  # aiohttp's public view
        self._by_domain: dict[str, dict[_CookieKey, _Entry]] = {}  # lookup per request
        self._by_site: dict[str, dict[_CookieKey, _Entry]] = {}  # per-domain limit
        self._secure_by_name: dict[str, dict[_CookieKey, _Entry]] = {}
        self._heap: list[tuple[float, _CookieKey]] = []

    @property
    def unsafe(self) -> bool:
        """True if IP-address hosts may set and receive cookies."""
        return self._unsafe

    @property
    def quote_cookie(self) -> bool:
        """True if values with special characters are quoted when sent."""
        return self._quote

    @property
    def treat_as_secure_origin(self) -> frozenset[URL]:
        """Origins treated as secure even over http/ws."""
        return self._secure_origins

    @property
    def cookies(self) -> MappingProxyType[tuple[str, str], SimpleCookie]:
        """Live read-only view ``{(domain, path): SimpleCookie}``, as in aiohttp."""
        return MappingProxyType(self._cookies)

    @property
    def host_only_cookies(self) -> frozenset[tuple[str, str, str]]:
        """Keys ``(domain, path, name)`` of the cookies sent to their exact host only."""
        return frozenset(k for k, e in self._entries.items() if e.host_only)

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[Morsel[str]]:
        self._expire()
        return iter([e.morsel for e in self._entries.values()])

    # -- storing ------------------------------------------------------------------

    def update_cookies(self, cookies: LooseCookies, response_url: URL = _NO_URL) -> None:
        """Store cookies (copies of given Morsels) as if set by ``response_url``."""
        if (origin := self._origin(response_url)) is None:
            return
        items = cookies.items() if isinstance(cookies, Mapping) else cookies
        refused = 0
        for name, value in items:
            if isinstance(value, Morsel) and isinstance(value.value, str):
                morsel: Morsel[str] = value.copy()
                name = morsel.key or name
            elif cp.valid_name(name):
                text = str(value)
                morsel = cp.make_morsel(name, text, cp.quote_value(text))
            else:
                refused += 1
                continue
            refused += not self._store(name, morsel, origin)
        if refused:
            log.warning("Ignored %d invalid cookie(s) for %s", refused, origin.host or "all hosts")

    def update_cookies_from_headers(self, headers: Sequence[str], response_url: URL) -> None:
        """Store cookies from one response's raw ``Set-Cookie`` values; log at most once."""
        if not headers or (origin := self._origin(response_url)) is None:
            return
        if origin.host is None:  # a server's cookies are never shared with every host
            log.warning("Ignored Set-Cookie fields for a URL without a host: %s", response_url)
            return
        morsels, malformed = cp.parse_set_cookie_headers(headers)
        refused = sum(not self._store(m.key, m, origin) for m in morsels)
        if malformed:  # hostile or broken: worth one warning per response
            log.warning(
                "Ignored %d malformed or over-limit and %d refused Set-Cookie field(s) from %s",
                malformed,
                refused,
                origin.host,
            )
        elif refused:  # domain, public suffix or Secure rules: routine
            log.debug("Refused %d Set-Cookie field(s) from %s", refused, origin.host)

    def _origin(self, url: URL) -> _Origin | None:
        if not isinstance(url, URL):
            url = URL(url)
        if not (host := url.raw_host):
            return _Origin(None, True, "/")
        if not self._unsafe and cp.is_ip_host(host):
            log.debug("Ignored cookies from IP host %s (unsafe=False)", host)
            return None
        return _Origin(host, self._is_secure(url), url.raw_path)

    def _is_secure(self, url: URL) -> bool:
        if url.scheme in _SECURE_SCHEMES:
            return True
        return bool(self._secure_keys) and _origin_key(url) in self._secure_keys

    def _store(
        self, name: str, morsel: Morsel[str], origin: _Origin, deadline: float | None = None
    ) -> bool:
        """RFC 6265 §5.3 storage model; False if the cookie is refused."""
        if not cp.storable(name, morsel.value, morsel.coded_value):
            return False
        if (scope := cp.cookie_scope(morsel["domain"], origin.host)) is None:
            return False
        domain, host_only = scope
        path = morsel["path"]
        if not path or path[0] != "/":
            path = morsel["path"] = cp.default_path(origin.path)
        secure = bool(morsel["secure"])
        if secure and not origin.secure:
            return False  # RFC 6265bis §5.7 step 14
        bare = host_only and not morsel["domain"]
        if origin.host is not None and not cp.prefix_ok(name, secure, bare, path):
            return False
        if not origin.secure and self._shadows_secure(name, domain, path):
            return False  # RFC 6265bis §5.7 step 16: leave secure cookies alone
        if deadline is None:
            deadline = cp.expiry(morsel, self._clock())
        key = (domain, path.rstrip("/"), name)
        if deadline is not None and deadline <= self._clock():
            self._delete(key)  # an already expired cookie only deletes (§5.3 step 11)
            return True
        old = self._entries.get(key)
        site = old.site if old else cp.registrable_domain(domain)
        if old is None and not self._make_room(site, secure):
            return False
        morsel["domain"] = domain
        entry = _Entry(key, morsel, host_only, deadline, site)
        entry.created = old.created if old else next(self._tick)  # §5.3 step 11.3
        entry.used = next(self._tick)
        self._insert(entry)
        return True

    def _shadows_secure(self, name: str, domain: str, path: str) -> bool:
        for entry in self._secure_by_name.get(name, _NO_ENTRIES).values():
            related = cp.domain_match(entry.domain, domain) or cp.domain_match(domain, entry.domain)
            if related and cp.path_match(path, entry.path):
                return True
        return False

    # -- limits ----------------------------------------------------------------------

    def _make_room(self, site: str, secure: bool) -> bool:
        """Evict for one new cookie (Firefox-style); False drops the new cookie instead."""
        if len(self._by_site.get(site, _NO_ENTRIES)) >= self._max_per_domain:
            self._expire()
            bucket = self._by_site.get(site, _NO_ENTRIES)
            if len(bucket) >= self._max_per_domain:  # expiry alone did not free a slot
                excess = len(bucket) - self._quota_per_domain + 1
                by_age = sorted(bucket.values(), key=lambda e: e.used)
                # A Secure cookie only makes way for another Secure cookie.
                victims = [e for e in by_age if not e.secure]
                if secure:
                    victims += [e for e in by_age if e.secure]
                if not victims:
                    return False
                self._evict(victims[:excess], f"the limit for {site}")
        if len(self._entries) >= self._max_total:
            self._expire()
            if len(self._entries) >= self._max_total:
                excess = len(self._entries) - self._quota_total + 1
                by_age = sorted(self._entries.values(), key=lambda e: e.used)
                self._evict(by_age[:excess], "the jar's total limit")
        return True

    def _evict(self, victims: list[_Entry], why: str) -> None:
        for entry in victims:
            self._delete(entry.key)
        log.debug("Evicted %d cookie(s) over %s", len(victims), why)

    # -- index maintenance -------------------------------------------------------------

    def _insert(self, entry: _Entry) -> None:
        key, domain = entry.key, entry.domain
        self._delete(key)
        self._entries[key] = entry
        self._by_domain.setdefault(domain, {})[key] = entry
        self._by_site.setdefault(entry.site, {})[key] = entry
        if entry.secure:
            self._secure_by_name.setdefault(entry.name, {})[key] = entry
        self._cookies.setdefault((domain, key[1]), SimpleCookie())[entry.name] = entry.morsel
        if entry.expires is not None:
            heapq.heappush(self._heap, (entry.expires, key))
            if len(self._heap) > 2 * len(self._entries) + 64:  # drop stale deadlines
                self._heap = [
                    (e.expires, k) for k, e in self._entries.items() if e.expires is not None
                ]
                heapq.heapify(self._heap)

    def _delete(self, key: _CookieKey) -> None:
        if (entry := self._entries.pop(key, None)) is None:
            return
        _discard(self._by_domain, entry.domain, key)
        _discard(self._by_site, entry.site, key)
        if entry.secure:
            _discard(self._secure_by_name, entry.name, key)
        jar_key = (entry.domain, key[1])
        bucket = self._cookies[jar_key]
        del bucket[entry.name]
        if not bucket:
            del self._cookies[jar_key]

    def _expire(self) -> None:
        heap = self._heap
        if not heap or heap[0][0] > (now := self._clock()):
            return
        while heap and heap[0][0] <= now:
            when, key = heapq.heappop(heap)
            if (entry := self._entries.get(key)) is not None and entry.expires == when:
                self._delete(key)

    # -- retrieval ---------------------------------------------------------------------

    def filter_cookies(self, request_url: StrOrURL = _NO_URL) -> BaseCookie[str]:
        """Cookies for a request to ``request_url`` (RFC 6265 §5.4), most specific first.

        Capped at 150 cookies and an 8190-octet header; the most specific win.
        """
        filtered: BaseCookie[str] = BaseCookie()
        if not self._entries:
            return filtered
        self._expire()
        url = request_url if isinstance(request_url, URL) else URL(request_url)
        host = url.raw_host or ""
        path = url.raw_path or "/"
        secure = self._is_secure(url)
        matches = [
            e
            for domain in cp.candidate_domains(host, self._unsafe)
            for e in self._by_domain.get(domain, _NO_ENTRIES).values()
            if (secure or not e.secure)
            and (not e.host_only or e.domain == host)
            and cp.path_match(path, e.path)
        ]
        matches.sort(key=_order)
        chosen: dict[str, _Entry] = {}
        for entry in matches:
            chosen.setdefault(entry.name, entry)  # one per name: BaseCookie is a dict
        wires = {name: self._wire(e) for name, e in chosen.items()}
        kept = cp.within_header_limits((name, wire[1]) for name, wire in wires.items())
        if len(kept) < len(wires):
            log.debug("Omitted %d cookie(s) over the Cookie header limits", len(wires) - len(kept))
        tick = next(self._tick)
        for name in kept:
            chosen[name].used = tick
            filtered[name] = wires[name][0]
        return filtered

    def _wire(self, entry: _Entry) -> tuple[Morsel[str], int]:
        """The attribute-less Morsel to send and its ``name=value`` octets, cached."""
        if entry.wire is None:
            stored = entry.morsel
            coded = cp.coded_for_wire(stored, self._quote)
            size = cp.octets(f"{entry.name}={coded}") or 0
            entry.wire = (cp.make_morsel(entry.name, stored.value, coded), size)
        return entry.wire

    # -- removal -----------------------------------------------------------------------

    def clear(self, predicate: ClearCookiePredicate | None = None) -> None:
        """Remove every cookie, or expired ones and those ``predicate`` selects."""
        if predicate is None:
            for index in (self._entries, self._cookies, self._by_domain, self._by_site):
                index.clear()
            self._secure_by_name.clear()
            self._heap.clear()
            return
        self._expire()
        for key in [k for k, e in self._entries.items() if predicate(e.morsel)]:
            self._delete(key)

    def clear_domain(self, domain: str) -> None:
        """Remove cookies whose domain is ``domain`` or a subdomain of it."""
        target = domain.lower().lstrip(".")
        self.clear(lambda morsel: cp.domain_match(morsel["domain"], target))

    # -- persistence ---------------------------------------------------------------------

    def save(self, file_path: PathLike) -> None:
        """Write the cookies to ``file_path`` as JSON (mode 0600, replaced atomically).

        The format is aiohttp 3.14's: host-only flags and absolute expiry are kept.
        """
        cp.save_json(
            file_path,
            (
                (e.domain, e.key[1], e.morsel, e.host_only, e.expires)
                for e in self._entries.values()
            ),
        )

    def load(self, file_path: PathLike) -> None:
        """Replace the jar's cookies with those saved in ``file_path`` (JSON only).

        Every cookie passes the same rules as when it was set; expired ones are
        skipped. A file that is not a valid cookie JSON file (e.g. an old pickle)
        raises ``ValueError`` and leaves the jar unchanged.
        """
        fresh = CookieJar(
            unsafe=self._unsafe,
            quote_cookie=self._quote,
            treat_as_secure_origin=self._secure_origins,
            max_per_domain=self._max_per_domain,
            max_total=self._max_total,
            clock=self._clock,
        )
        for domain, morsel, deadline in cp.load_json(file_path):
            if domain and not self._unsafe and cp.is_ip_host(domain):
                continue
            fresh._store(morsel.key, morsel, _Origin(domain or None, True, "/"), deadline)
        self._adopt(fresh)

    def _adopt(self, other: CookieJar) -> None:
        # Refill in place so views handed out by ``cookies`` stay live.
        self._cookies.clear()
        self._cookies.update(other._cookies)
        self._entries, self._by_domain = other._entries, other._by_domain
        self._by_site, self._secure_by_name = other._by_site, other._secure_by_name
        self._heap, self._tick = other._heap, other._tick


def _discard(index: dict[str, dict[_CookieKey, _Entry]], group: str, key: _CookieKey) -> None:
    bucket = index[group]
    del bucket[key]
    if not bucket:
        del index[group]


class DummyCookieJar(AbstractCookieJar):
    """A jar that stores nothing and sends nothing."""

    @property
    def unsafe(self) -> bool:
        """Always False."""
        return False

    @property
    def quote_cookie(self) -> bool:
        """Always True."""
        return True

    @property
    def cookies(self) -> MappingProxyType[tuple[str, str], SimpleCookie]:
        """An empty mapping."""
        return MappingProxyType({})

    @property
    def host_only_cookies(self) -> frozenset[tuple[str, str, str]]:
        """An empty set."""
        return frozenset()

    def __len__(self) -> int:
        return 0

    def __iter__(self) -> Iterator[Morsel[str]]:
        return iter(())

    def update_cookies(self, cookies: LooseCookies, response_url: URL = _NO_URL) -> None:
        """Ignore the cookies."""

    def update_cookies_from_headers(self, headers: Sequence[str], response_url: URL) -> None:
        """Ignore the fields without parsing them."""

    def filter_cookies(self, request_url: StrOrURL = _NO_URL) -> BaseCookie[str]:
        """Always empty."""
        return SimpleCookie()

    def clear(self, predicate: ClearCookiePredicate | None = None) -> None:
        """Nothing to clear."""

    def clear_domain(self, domain: str) -> None:
        """Nothing to clear."""
