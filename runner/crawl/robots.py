"""robots.txt for the crawler (RFC 9309), parsed with protego.

One fetch per origin (scheme, host, port: §2.3), shared by every caller that
asks while it runs, then cached (at most ``max_hosts`` origins, least recently
used dropped; an entry is refetched after ``max_age``, §2.4's 24 hours). What a
fetch outcome means (§2.3.1):

* 2xx: the rules, from the first 500 KiB of the body (§2.5: parse at least 500 KiB);
* 3xx after 5 redirects, or not followable, and 4xx: "unavailable", no rules (allow all);
* 429 (a rate limit, not an absence), 5xx, network errors, timeouts: "unreachable",
  complete disallow.

The robots fetch itself obeys nothing else: no robots rules, no host slots.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from protego import Protego

import client

from .urlnorm import normalize

__all__ = ["MAX_ROBOTS_BYTES", "RobotsPolicy", "robots_url"]

MAX_ROBOTS_BYTES = 500 * 1024
_MAX_REDIRECTS = 5  # §2.3.1.2: follow at least five consecutive redirects
_DAY = 86_400.0
# §2.2.1: the product token is made of letters, "_" and "-".
_PRODUCT_TOKEN = re.compile(r"[A-Za-z_-]*")


@dataclass(frozen=True, slots=True)
class _Rules:
    """One origin's robots.txt outcome."""

    parser: Protego | None  # None: no rules, ``allow_all`` decides
    allow_all: bool
    expires: float

    def allows(self, url: str, token: str) -> bool:
        if self.parser is None:
            return self.allow_all
        return self.parser.can_fetch(url, token)


def robots_url(url: str) -> str:
    """The robots.txt URL that governs ``url``; ``ValueError`` if it is not an http(s) URL."""
    normal = normalize(url)
    if normal is None:
        raise ValueError(f"not an absolute http(s) URL: {url!r}")
    return _origin(normal) + "/robots.txt"


def _origin(normal: str) -> str:
    """``scheme://host[:port]`` of a normal-form URL (it always has "/" after that)."""
    return normal[: normal.index("/", normal.index("://") + 3)]


class RobotsPolicy:
    """Answers "may the crawler fetch this URL?" from each origin's robots.txt."""

    def __init__(
        self,
        session: client.ClientSession,
        user_agent: str,
        *,
        timeout: float = 10.0,
        max_hosts: int = 10_000,
        max_age: float = _DAY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_hosts < 1:
            raise ValueError("max_hosts must be >= 1")
        self._session = session
        self._headers = {"User-Agent": user_agent}
        match = _PRODUCT_TOKEN.match(user_agent.strip())
        self.token = match.group() if match else ""  # what robots.txt groups are matched with
        self._timeout = timeout
        self._max_hosts = max_hosts
        self._max_age = max_age
        self._clock = clock
        self._cache: OrderedDict[str, _Rules] = OrderedDict()
        self._pending: dict[str, asyncio.Task[_Rules]] = {}
        self.fetches = 0  # robots.txt fetches started so far

    def __repr__(self) -> str:
        return (
            f"<RobotsPolicy token={self.token!r} origins={len(self._cache)} "
            f"pending={len(self._pending)} fetches={self.fetches}>"
        )

    async def allowed(self, url: str) -> bool:
        """Whether ``url`` may be fetched; fetches its origin's robots.txt on first use.

        A URL that does not normalize (not absolute http(s)) is never allowed.
        """
        normal = normalize(url)
        if normal is None:
            return False
        origin = _origin(normal)
        rules = self._cache.get(origin)
        if rules is None or rules.expires <= self._clock():
            rules = await self._load(origin)
        else:
            self._cache.move_to_end(origin)
        return rules.allows(normal, self.token)

    def crawl_delay(self, host_key: str) -> float | None:
        """Seconds between requests that robots.txt asks of us for ``host_key``, if any.

        ``host_key`` is ``urlnorm.host_key`` (no scheme): if both the http and the
        https robots.txt are known, the longer delay wins, as both share the host's
        slot. A ``Request-rate: n/s`` counts as a delay of ``s/n``. Only cached
        robots.txt files count: call after ``allowed()``.
        """
        delays: list[float] = []
        for rules in self._known(host_key):
            if rules.parser is None:
                continue
            delay = rules.parser.crawl_delay(self.token)
            if delay is not None:
                delays.append(delay)
            rate = rules.parser.request_rate(self.token)
            if rate is not None:
                delays.append(rate.seconds / rate.requests)
        return max(delays) if delays else None

    def sitemaps(self, host_key: str) -> list[str]:
        """The ``Sitemap:`` URLs of ``host_key``'s cached robots.txt files (normalized, unique)."""
        found: dict[str, None] = {}
        for rules in self._known(host_key):
            if rules.parser is not None:
                for text in rules.parser.sitemaps:
                    normal = normalize(text)
                    if normal is not None:
                        found[normal] = None
        return list(found)

    async def close(self) -> None:
        """Cancel robots.txt fetches still running (their waiters get ``CancelledError``)."""
        tasks = list(self._pending.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- internals -----------------------------------------------------------------

    def _known(self, host_key: str) -> list[_Rules]:
        found = (self._cache.get(f"{scheme}://{host_key}") for scheme in ("http", "https"))
        return [rules for rules in found if rules is not None]

    async def _load(self, origin: str) -> _Rules:
        task = self._pending.get(origin)
        if task is None:
            task = asyncio.create_task(self._fetch_and_keep(origin), name=f"robots {origin}")
            self._pending[origin] = task
        # Shielded: one caller giving up must not cancel the fetch the others wait for.
        return await asyncio.shield(task)

    async def _fetch_and_keep(self, origin: str) -> _Rules:
        try:
            rules = await self._fetch(origin)
        finally:
            del self._pending[origin]
        self._cache[origin] = rules
        self._cache.move_to_end(origin)
        if len(self._cache) > self._max_hosts:
            self._cache.popitem(last=False)
        return rules

    async def _fetch(self, origin: str) -> _Rules:
        self.fetches += 1
        expires = self._clock() + self._max_age
        try:
            async with asyncio.timeout(self._timeout):
                body = await self._get(origin + "/robots.txt")
        except client.TooManyRedirects:
            return _Rules(None, True, expires)  # §2.3.1.2: may be taken as unavailable
        except client.ClientConnectorBlockedError:
            # Our own address policy refused the host: no rules can exist for us, and the
            # page fetch meets the same refusal and records it (blocked_address), which
            # says more than "disallowed by robots.txt" would.
            return _Rules(None, True, expires)
        except (client.ClientError, TimeoutError, OSError):
            return _Rules(None, False, expires)  # §2.3.1.4: unreachable
        if isinstance(body, int):
            # §2.3.1.3: 4xx is "unavailable" (allow), but 429 is a server asking us
            # to back off, not saying there are no rules; 5xx is "unreachable".
            allow = 300 <= body < 500 and body != 429
            return _Rules(None, allow, expires)
        text = body.decode("utf-8", "replace").removeprefix("\ufeff")
        return _Rules(Protego.parse(text), True, expires)

    async def _get(self, url: str) -> bytes | int:
        """The (capped) body of a 2xx answer, else the status."""
        async with self._session.get(
            url,
            headers=self._headers,
            allow_redirects=True,
            max_redirects=_MAX_REDIRECTS,
            raise_for_status=False,
        ) as resp:
            if not 200 <= resp.status < 300:
                return resp.status
            return await _read_capped(resp.content)


async def _read_capped(content: client.StreamReader) -> bytes:
    """At most ``MAX_ROBOTS_BYTES``; a cut-off body loses its partial last line."""
    chunks: list[bytes] = []
    size = 0
    while size < MAX_ROBOTS_BYTES:
        chunk = await content.read(MAX_ROBOTS_BYTES - size)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        size += len(chunk)
    body = b"".join(chunks)
    if content.at_eof():
        return body
    return body[: body.rfind(b"\n") + 1]  # the rest of the file is not read at all
