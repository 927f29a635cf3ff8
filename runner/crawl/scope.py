"""Crawl scope: whether a discovered URL may be fetched (``crawl: scope:``)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from jobs import CrawlScope

from .urlnorm import authority_of, host_key, normalize

__all__ = ["Scope"]


class Scope:
    """The job's ``scope:`` rules, compiled once for the seeds of one crawl.

    Checks run in a fixed order, the first failing one giving the reason:
    host (``same_host``: the ``host[:port]`` of a seed), prefix, include, exclude.
    """

    __slots__ = ("_exclude", "_hosts", "_include", "_prefixes")

    def __init__(self, spec: CrawlScope, seeds: Sequence[str]) -> None:
        self._hosts = frozenset(map(host_key, seeds)) if spec.same_host else None
        # Prefixes are compared with normal forms, so they are normalized too
        # ("HTTP://H:80" -> "http://h/"); one that does not normalize stays as written.
        self._prefixes = tuple(normalize(prefix) or prefix for prefix in spec.prefixes)
        # The loader validated the regex texts already.
        self._include = tuple(re.compile(text).search for text in spec.include)
        self._exclude = tuple((text, re.compile(text).search) for text in spec.exclude)

    def add_host(self, host: str) -> None:
        """Let ``host`` in too (a seed that redirects, e.g. to ``www.`` or to https)."""
        if self._hosts is not None:
            self._hosts = self._hosts | {host}

    @property
    def hosts(self) -> frozenset[str] | None:
        """The allowed host keys (the seeds'), or ``None`` when any host is allowed."""
        return self._hosts

    def reason(self, url: str) -> str | None:
        """``None`` if ``url`` is in scope; otherwise why not, e.g. ``"other host"``.

        ``url`` is normalized first (a normal form is returned unchanged), so the
        regexes always see the normal form.
        """
        normal = normalize(url)
        if normal is None:
            return "not an http(s) URL"
        return self.reason_normal(normal)

    def reason_normal(self, normal: str) -> str | None:
        """``reason`` for a URL already in normal form (``normalize``'s output)."""
        if self._hosts is not None and authority_of(normal) not in self._hosts:
            return "other host"
        if self._prefixes and not normal.startswith(self._prefixes):
            return "outside prefix"
        if self._include and not any(search(normal) for search in self._include):
            return "not included"
        for text, search in self._exclude:
            if search(normal):
                return f"excluded by {text}"
        return None
