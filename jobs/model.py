"""The validated job model: frozen values, no I/O.

``load_job`` builds a ``JobFile``; ``iter_requests`` turns it into a lazy
stream of ``RequestSpec`` (one per URL to fetch). Header, cookie, param and
form collections are tuples of ``(name, value)`` pairs: immutable, ordered,
and accepted as-is by the client's ``headers=`` / ``params=`` / ``data=``.
Values that came from ``${ENV}`` interpolation, and all credentials, are
``Secret`` strings (their ``repr`` is masked).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal, TypeAlias

from jobs.secret import redact

Pairs: TypeAlias = tuple[tuple[str, str], ...]
JSONValue: TypeAlias = bool | int | float | str | list["JSONValue"] | dict[str, "JSONValue"] | None

MiB = 1024 * 1024
STATUS_2XX: frozenset[int] = frozenset(range(200, 300))
RETRY_STATUSES: frozenset[int] = frozenset({429, 500, 502, 503, 504})


class SaveMode(StrEnum):
    """When a response body is written to ``output.bodies``."""

    ALWAYS = "always"
    ON_SUCCESS = "on_success"  # the status is in the request's ``expect`` set
    NEVER = "never"


@dataclass(frozen=True, slots=True)
class Location:
    """Where something was written: a job-file node or a ``urls_file`` line (1-based)."""

    file: str
    line: int
    col: int = 1

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


def _require(ok: bool, message: str) -> None:
    # A safety net for models built in code; the loader reports these with
    # positions before any constructor runs.
    if not ok:
        raise ValueError(message)


@dataclass(frozen=True, slots=True)
class Limits:
    """Scheduler caps: requests in flight, in flight per host, requests/s per host."""

    concurrency: int = 100
    per_host: int | None = 6  # None: no per-host cap beyond ``concurrency``
    rate_per_host: float | None = None  # None: no rate limit

    def __post_init__(self) -> None:
        _require(self.concurrency >= 1, "Limits.concurrency must be >= 1")
        _require(self.per_host is None or self.per_host >= 1, "Limits.per_host must be >= 1")
        _require(
            self.rate_per_host is None or self.rate_per_host > 0,
            "Limits.rate_per_host must be > 0",
        )


@dataclass(frozen=True, slots=True)
class TimeoutSpec:
    """Seconds, with ``client.ClientTimeout``'s meanings; ``None`` disables one limit."""

    total: float | None = 60.0
    connect: float | None = 10.0
    sock_read: float | None = 30.0
    sock_connect: float | None = None

    def __post_init__(self) -> None:
        for name in ("total", "connect", "sock_read", "sock_connect"):
            value = getattr(self, name)
            _require(value is None or value > 0, f"TimeoutSpec.{name} must be None or > 0")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """``attempts`` counts every try (1 = no retry); backoff is in seconds."""

    attempts: int = 3
    backoff: float = 0.5
    max_backoff: float = 30.0
    on_status: frozenset[int] = RETRY_STATUSES

    def __post_init__(self) -> None:
        _require(self.attempts >= 1, "RetryPolicy.attempts must be >= 1")
        _require(0 <= self.backoff <= self.max_backoff, "need 0 <= backoff <= max_backoff")


@dataclass(frozen=True, slots=True)
class Output:
    """Where results go. Paths are absolute (joined to the job file's directory)."""

    jsonl: Path | None = None  # None: the runner's default (stdout)
    bodies: Path | None = None  # None: bodies are not saved
    save: SaveMode = SaveMode.ON_SUCCESS
    max_body: int | None = 64 * MiB  # bytes; None: no cap
    # Crawl and link-check runs (``crawl:`` / ``check:``):
    state: Path | None = None  # None: fetchrun-state.sqlite beside ``jsonl``
    junit: Path | None = None  # JUnit XML report of a link check
    sarif: Path | None = None  # SARIF 2.1.0 report of a link check
    markdown: Path | None = None  # Markdown summary (e.g. for $GITHUB_STEP_SUMMARY)
    annotations: bool | None = None  # GitHub annotations on stdout; None: when GITHUB_ACTIONS=true


@dataclass(frozen=True, slots=True)
class Auth:
    """HTTP Basic credentials (RFC 7617). ``password`` is always a ``Secret``."""

    user: str
    password: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class SessionSpec:
    """Settings shared by every request of the job."""

    headers: Pairs = ()
    cookies: Pairs = ()
    auth: Auth | None = None
    proxy: str | None = None
    verify_tls: bool = True
    # Refuse loopback/private/link-local/reserved addresses, at every hop (SSRF).
    # None: the runner decides (on for crawl: and check: jobs without a proxy).
    deny_private: bool | None = None

    def __post_init__(self) -> None:
        _require(
            not (self.deny_private and self.proxy),
            "SessionSpec.deny_private cannot be enforced through a proxy",
        )


@dataclass(frozen=True, slots=True)
class JsonBody:
    """A body sent as JSON (``json=`` in the client); ``value`` is plain JSON data."""

    value: JSONValue


@dataclass(frozen=True, slots=True)
class DataBody:
    """A raw text body, or form fields as pairs (``data=`` in the client)."""

    value: str | Pairs


Body: TypeAlias = JsonBody | DataBody


ExtractKind: TypeAlias = Literal["css", "xpath", "json", "regex", "header", "title"]


@dataclass(frozen=True, slots=True)
class Extractor:
    """How to get one value out of a response (the ``jobs.extract`` syntax).

    ``expr`` is the CSS selector, XPath, JMESPath expression, regular
    expression or header name, checked (compiled) when the job is loaded.
    ``kind="title"`` is the built-in page title, read from the first bytes
    of HTML responses. ``attr`` reads an element's attribute instead of its
    text; ``all`` gives every match as a list; post-steps run in the order
    strip, absolute, to.
    """

    kind: ExtractKind
    expr: str
    attr: str | None = None
    all: bool = False
    strip: bool = True
    absolute: bool = False  # resolve against the final URL (or the page's <base href>)
    to: Literal["int", "float"] | None = None


Fields: TypeAlias = tuple[tuple[str, Extractor], ...]
TITLE_FIELD = Extractor("title", "title")


@dataclass(frozen=True, slots=True)
class ExtractBlock:
    """An ``extract:`` mapping as written: fields to set, ``None`` to drop one.

    ``inherit=False`` (``extract: false``) starts from no fields at all, not
    even the built-in ``title``.
    """

    fields: tuple[tuple[str, Extractor | None], ...] = ()
    inherit: bool = True


@dataclass(frozen=True, slots=True)
class Follow:
    """``follow:``: links found by ``rule`` become new requests of the job.

    A chain started by one request fetches at most ``max_pages`` pages, the
    first included; ``same_host`` keeps it on the page's host.
    """

    rule: Extractor
    max_pages: int = 100
    same_host: bool = True


@dataclass(frozen=True, slots=True)
class RequestDefaults:
    """The job's ``defaults:`` section, with built-in values for what it omits."""

    method: str = "GET"
    params: Pairs = ()
    body: Body | None = None
    expect: frozenset[int] = STATUS_2XX
    follow_redirects: bool = True
    max_redirects: int = 10
    extract: ExtractBlock | None = None
    follow: Follow | None = None


@dataclass(frozen=True, slots=True)
class RequestOverrides:
    """What one ``requests:`` entry sets explicitly; ``None`` / ``()`` inherits.

    ``timeout`` and ``retry`` are partial: ``(field, value)`` pairs applied
    over the job's ``TimeoutSpec`` / ``RetryPolicy``.
    """

    method: str | None = None
    name: str | None = None
    headers: Pairs | None = None
    params: Pairs | None = None
    body: Body | None = None
    expect: frozenset[int] | None = None
    follow_redirects: bool | None = None
    max_redirects: int | None = None
    save: SaveMode | None = None
    timeout: tuple[tuple[str, float | None], ...] = ()
    retry: tuple[tuple[str, Any], ...] = ()
    extract: ExtractBlock | None = None
    follow: Follow | Literal[False] | None = None  # False: ``follow: false`` drops the default


@dataclass(frozen=True, slots=True)
class RequestOptions:
    """Effective settings of a request: defaults, session and overrides merged.

    ``headers`` are the session headers with the entry's headers laid over
    them (names compared case-insensitively), so they are complete.
    """

    method: str
    headers: Pairs
    params: Pairs
    body: Body | None
    name: str | None
    expect: frozenset[int]
    follow_redirects: bool
    max_redirects: int
    timeout: TimeoutSpec
    retry: RetryPolicy
    save: SaveMode
    extract: Fields = ()  # what to pull from the response (``data`` in the record)
    follow: Follow | None = None


@dataclass(frozen=True, slots=True)
class RangeVar:
    """``{name}`` takes ``start, start+step, ...`` up to ``end`` inclusive."""

    name: str
    start: int
    end: int
    step: int = 1

    def values(self) -> range:
        """The values, lazily."""
        return range(self.start, self.end + (1 if self.step > 0 else -1), self.step)


RequestKind: TypeAlias = Literal["url", "range", "urls_file", "urls"]


@dataclass(frozen=True, slots=True)
class Request:
    """One ``requests:`` entry: a URL, a URL template with ranges, or a URL list.

    ``urls`` (set only by ``job_from_urls``) may be a one-shot iterator.
    """

    source: Location
    url: str | None = None
    ranges: tuple[RangeVar, ...] = ()
    urls_file: Path | None = None
    urls: Iterable[str] | None = field(default=None, compare=False)
    overrides: RequestOverrides = RequestOverrides()

    @property
    def kind(self) -> RequestKind:
        """Which of the four sources this entry uses."""
        if self.urls_file is not None:
            return "urls_file"
        if self.urls is not None:
            return "urls"
        return "range" if self.ranges else "url"


@dataclass(frozen=True, slots=True)
class RequestSpec:
    """One URL to fetch, with its effective options.

    ``error`` is set (and ``url`` is the offending text, truncated) when a
    URL list held an invalid line: the runner records it as a failed result
    instead of fetching. ``vars`` holds the range values that built ``url``.
    """

    url: str
    options: RequestOptions
    source: Location
    index: int
    vars: tuple[tuple[str, int], ...] = ()
    error: str | None = None

    @property
    def valid(self) -> bool:
        """False for an invalid ``urls_file`` line (see ``error``)."""
        return self.error is None

    @property
    def method(self) -> str:
        """The HTTP method, upper-case."""
        return self.options.method

    @property
    def headers(self) -> Pairs:
        """Complete request headers (session headers included)."""
        return self.options.headers

    @property
    def name(self) -> str | None:
        """The entry's ``name:``, if any."""
        return self.options.name


@dataclass(frozen=True, slots=True)
class CrawlScope:
    """Which discovered URLs a crawl may fetch (regexes: ``re.search`` on the normalized URL)."""

    same_host: bool = True  # only the hosts (host:port) of the seeds
    prefixes: tuple[str, ...] = ()  # the URL must start with one of these (when any)
    include: tuple[str, ...] = ()  # must match one of these (when any)
    exclude: tuple[str, ...] = ()  # must match none of these


@dataclass(frozen=True, slots=True)
class CrawlSpec:
    """``crawl:``: follow links from ``seeds`` within ``scope``; resumable, conditional."""

    seeds: tuple[str, ...]
    scope: CrawlScope = CrawlScope()
    max_depth: int = 10  # seeds are depth 0
    max_pages: int = 100_000  # pages fetched at most in one run (a resumed run included)
    robots: bool = True  # obey robots.txt; its Crawl-delay slows the host's rate
    sitemaps: bool = False  # also seed from robots.txt ``Sitemap:`` lines and /sitemap.xml
    conditional: bool = True  # If-None-Match / If-Modified-Since from the previous run

    def __post_init__(self) -> None:
        _require(bool(self.seeds), "CrawlSpec.seeds must not be empty")
        _require(self.max_depth >= 0, "CrawlSpec.max_depth must be >= 0")
        _require(self.max_pages >= 1, "CrawlSpec.max_pages must be >= 1")


@dataclass(frozen=True, slots=True)
class CacheTTL:
    """How long a link-check result is trusted by later runs (seconds).

    Transient failures (timeouts, resets, 5xx) and indeterminate answers are
    never cached.
    """

    ok: float = 86_400.0
    broken: float = 3_600.0


@dataclass(frozen=True, slots=True)
class CheckSpec:
    """``check:`` / ``fetchrun check``: every link of the targets checked once.

    ``targets`` are absolute file or directory paths (HTML and Markdown files)
    or http(s) URLs (the site is crawled within its host, like ``crawl:``).
    """

    targets: tuple[str, ...]
    accept: frozenset[int] = STATUS_2XX  # final statuses counted ok
    exclude: tuple[str, ...] = ()  # regexes: links matching one are not checked
    fragments: bool = False  # check ``#fragment`` against ids in the target page
    external: bool = True  # check links that leave the checked site (never crawled)
    indeterminate: frozenset[int] = frozenset({401, 403, 429, 999})
    cache: CacheTTL | None = CacheTTL()  # None: every link checked anew
    max_depth: int = 10
    max_pages: int = 10_000
    robots: bool = True

    def __post_init__(self) -> None:
        _require(bool(self.targets), "CheckSpec.targets must not be empty")
        _require(self.max_depth >= 0, "CheckSpec.max_depth must be >= 0")
        _require(self.max_pages >= 1, "CheckSpec.max_pages must be >= 1")


@dataclass(frozen=True, slots=True)
class JobFile:
    """A whole validated job. ``base_dir`` is the job file's directory."""

    requests: tuple[Request, ...]
    session: SessionSpec = SessionSpec()
    limits: Limits = Limits()
    timeout: TimeoutSpec = TimeoutSpec()
    retry: RetryPolicy = RetryPolicy()
    output: Output = Output()
    defaults: RequestDefaults = RequestDefaults()
    version: int = 1
    source: str = "<string>"
    base_dir: Path = Path(".")
    secrets: frozenset[str] = field(default=frozenset(), repr=False)
    crawl: CrawlSpec | None = None
    check: CheckSpec | None = None

    def redact(self, text: str) -> str:
        """*text* with every secret value of this job replaced by ``***``."""
        return redact(text, self.secrets)
