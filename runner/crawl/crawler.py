"""The crawl loop: frontier in SQLite, pages through the engine, links back in.

One ``Crawler`` serves both ``crawl:`` jobs and link checks of sites:

* the frontier (``StateStore``) hands out entries breadth-first; the engine
  fetches them within the job's global and per-host limits (``reopen``: the
  feed grows while pages come back);
* each outcome is committed to the store (done mark, new links, the record in
  the outbox) *before* its JSONL line is written, so a ``kill -9`` anywhere
  loses nothing and duplicates nothing (``StateStore.reconcile`` at resume);
* robots.txt is asked before each fetch; a host's Crawl-delay slows its rate;
* in a crawl, redirects are not followed by the client: the target is a link
  of the redirecting page (scope-checked like any other);
* in a link check, every link found is recorded where it appears
  (occurrences) and its target is checked once: in-scope pages are crawled,
  the rest asked with HEAD (GET when HEAD is refused).
"""

from __future__ import annotations

import re
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from jobs import CheckSpec, CrawlScope, JobFile, Location, RequestSpec, resolve_options
from jobs.model import Request

from ..outcome import Outcome
from ..sinks.console import Console, Summary
from ..sinks.jsonl import JsonlSink
from .page import EntryFetcher, PageInfo, Plan
from .scope import Scope
from .state import CachedResult, Entry, Occurrence, StateStore, Validators
from .urlnorm import authority_of, normalize
from .verdict import classify_result

# Link kinds a crawl follows as pages; assets (img, script, stylesheets) are only checked.
NAVIGATIONAL = frozenset(
    {
        "a",
        "iframe",
        "meta-refresh",
        "markdown",
        "markdown-ref",
        "autolink",
        "sitemap",
        "sitemap-index",
    }
)
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_TAKE = 256  # frontier rows read per refill


@dataclass(frozen=True, slots=True)
class CrawlConfig:
    """What the crawl loop needs, from a ``crawl:`` or a ``check:`` job."""

    seeds: tuple[str, ...]
    scope: CrawlScope
    max_depth: int
    max_pages: int
    robots: bool
    sitemaps: bool = False
    conditional: bool = False
    check: CheckSpec | None = None  # link-check mode when set

    @classmethod
    def of(cls, job: JobFile, url_targets: tuple[str, ...] = ()) -> CrawlConfig:
        """The loop's settings for ``job`` (a check's URL targets are its seeds)."""
        if job.crawl is not None:
            c = job.crawl
            return cls(
                c.seeds, c.scope, c.max_depth, c.max_pages, c.robots, c.sitemaps, c.conditional
            )
        assert job.check is not None
        k = job.check
        return cls(
            url_targets, CrawlScope(same_host=True), k.max_depth, k.max_pages, k.robots, check=k
        )


class Crawler:
    """Feeds the engine from the store and folds outcomes back into it."""

    def __init__(
        self,
        job: JobFile,
        config: CrawlConfig,
        store: StateStore,
        jsonl: JsonlSink,
        summary: Summary,
        console: Console,
        *,
        pages_done: int = 0,
        now: Any = time.time,
    ) -> None:
        self._job = job
        self._config = config
        self._store = store
        self._jsonl = jsonl
        self._summary = summary
        self._console = console
        self._now = now
        self._scope = Scope(config.scope, config.seeds)
        self._check = config.check
        self._exclude = tuple(re.compile(p) for p in config.check.exclude) if config.check else ()
        options = resolve_options(job, Request(Location(job.source, 1)))
        crawl_mode = config.check is None
        expect = options.expect | {304} | (REDIRECT_STATUSES if crawl_mode else frozenset())
        self._page_options = replace(
            options,
            expect=expect,
            follow_redirects=not crawl_mode,
            extract=(),
            follow=None,
            method="GET",
        )
        self._link_options = replace(
            self._page_options,
            follow_redirects=True,
            expect=config.check.accept if config.check is not None else options.expect,
        )
        self._base = RequestSpec("", self._page_options, Location(job.source, 1), 0)
        self._buffer: deque[Entry] = deque()
        self._plans: dict[int, tuple[Entry, Plan]] = {}
        self._next_index = 0
        self._pages = pages_done  # pages started, a resumed run's earlier ones included
        self._dry = False  # the store had nothing to hand out at the last look
        self.fetcher: EntryFetcher | None = None  # set by the caller (needs the robots policy)
        self.skipped_robots = 0
        self.cached = 0

    # -- seeds -------------------------------------------------------------------------

    def seed(self, urls: Iterable[str] | None = None) -> int:
        """Put the seeds (or ``urls`` at depth 0, in scope) in the frontier (no-op if there)."""
        entries = []
        for url in self._config.seeds if urls is None else urls:
            norm = normalize(url)
            if norm is not None and (urls is None or self._scope.reason_normal(norm) is None):
                entries.append(Entry(norm, authority_of(norm), 0, "page", None))
        return self._store.add(entries)

    # -- the feed (engine side) --------------------------------------------------------

    def specs(self) -> Iterator[RequestSpec]:
        """The engine's ``specs``: an iterator that may run dry and yield again later."""
        return _Feed(self)

    def next_spec(self) -> RequestSpec | None:
        while True:
            if not self._buffer:
                if self._dry:
                    return None
                self._buffer.extend(self._store.take(_TAKE))
                if not self._buffer:
                    self._dry = True
                    return None
            entry = self._buffer.popleft()
            spec = self._spec_for(entry)
            if spec is not None:
                return spec

    def _spec_for(self, entry: Entry) -> RequestSpec | None:
        check = self._check
        if entry.kind == "page":
            if self._pages >= self._config.max_pages:
                self._store.complete(entry.url, None)  # over budget: done, not fetched
                return None
            self._pages += 1
            plan = Plan(
                "page",
                want_links=True,
                want_ids=check is not None and check.fragments,
                validators=self._validators(entry.url),
            )
            options = self._page_options
        else:
            assert check is not None
            if check.cache is not None and self._store.cached_result(entry.url, self._now()):
                self.cached += 1
                self._store.complete(entry.url, None)
                return None
            # With fragment checks on, links are asked with GET: the ids are in the body.
            plan = Plan("link", want_links=False, want_ids=check.fragments)
            options = self._link_options
        self._next_index += 1
        index = self._next_index
        self._plans[index] = (entry, plan)
        return replace(self._base, url=entry.url, options=options, index=index)

    def _validators(self, url: str) -> Validators | None:
        if not self._config.conditional:
            return None
        stored = self._store.validators(url)
        if stored is None or stored.body_path is None:
            return None
        return stored

    def plan_for(self, index: int) -> Plan:
        return self._plans[index][1]

    # -- outcomes ------------------------------------------------------------------------

    def on_outcome(self, outcome: Outcome) -> None:
        """Commit one finished entry, then write its record (see the module docstring)."""
        entry, _plan = self._plans.pop(outcome.index)
        assert self.fetcher is not None
        info = self.fetcher.take(outcome.index)
        self._dry = False  # new links may have arrived
        if info.robots:
            self.skipped_robots += 1
            result = None
            if self._check is not None:
                result = CachedResult(
                    entry.url, "excluded", None, "disallowed by robots.txt", None, 0.0, None
                )
            self._store.complete(entry.url, None, result=result)
            return
        links, occurrences = self._links_of(entry, outcome, info)
        record = outcome.to_record()
        record["crawl"] = {"depth": entry.depth, "from": entry.via, "links": len(info.links)}
        if info.unchanged:
            record["unchanged"] = True
        if info.location is not None:
            record["location"] = info.location
        result = None
        if self._check is not None:
            result = classify_result(outcome, info, self._check, self._now(), entry.url)
        seq = self._store.complete(
            entry.url,
            record,
            links=links,
            validators=info.validators,
            occurrences=occurrences,
            result=result,
        )
        self._jsonl.write_record(record)
        self._store.written(seq)
        self._summary.add(outcome)
        self._console.update(outcome)

    def _links_of(
        self, entry: Entry, outcome: Outcome, info: PageInfo
    ) -> tuple[list[Entry], list[Occurrence]]:
        if not info.links and info.location is None:
            return [], []
        page = outcome.final_url or entry.url
        depth = entry.depth + 1
        check = self._check
        entries: list[Entry] = []
        occurrences: list[Occurrence] = []
        location = normalize(info.location) if info.location is not None else None
        if location is not None and check is None:
            if entry.depth == 0:  # a seed's redirect moves the site: its host is the site too
                self._scope.add_host(authority_of(location))
            self._add_page(location, depth, entry.url, entries)
        if check is not None and outcome.final_url is not None:
            final = normalize(outcome.final_url)
            if final is not None and final != entry.url:
                # Redirected: the page is read under its own URL (once, however many
                # URLs redirect to it), or its links would be reported once per alias.
                self._add_page(final, entry.depth, entry.url, entries)
                return entries, occurrences
        for link in info.links:
            target = normalize(link.url)  # once per link: everything below takes the normal form
            if target is None:
                continue  # mailto:, javascript:, data: ... and unparseable URLs
            if check is None:
                if link.kind in NAVIGATIONAL:
                    self._add_page(target, depth, entry.url, entries)
                continue
            occurrences.append(Occurrence(target, link.fragment, page, link.line, link.kind))
            if self._excluded(target):
                continue
            in_scope = self._scope.reason_normal(target) is None
            if in_scope and link.kind in NAVIGATIONAL and depth <= self._config.max_depth:
                entries.append(Entry(target, authority_of(target), depth, "page", entry.url))
            elif in_scope or check.external:
                entries.append(Entry(target, authority_of(target), depth, "link", entry.url))
        return entries, occurrences

    def _add_page(self, normal: str, depth: int, via: str, entries: list[Entry]) -> None:
        """Queue ``normal`` (a normalized URL) as a page, if within depth and scope."""
        if depth <= self._config.max_depth and self._scope.reason_normal(normal) is None:
            entries.append(Entry(normal, authority_of(normal), depth, "page", via))

    def _excluded(self, url: str) -> bool:
        return any(pattern.search(url) for pattern in self._exclude)


class _Feed:
    """An iterator that may raise StopIteration and later yield again (``reopen``)."""

    def __init__(self, crawler: Crawler) -> None:
        self._crawler = crawler

    def __iter__(self) -> _Feed:
        return self

    def __next__(self) -> RequestSpec:
        spec = self._crawler.next_spec()
        if spec is None:
            raise StopIteration
        return spec
