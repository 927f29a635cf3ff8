"""YAML job files for the fetchrun runner: load, validate, expand. Pure data.

Typical use::

    job = load_job("jobs.yaml")            # raises JobError listing every problem
    total = count_requests(job)            # for a progress bar; None if costly
    for spec in iter_requests(job):        # lazy: ranges and URL lists stream
        ...

A job file (version 1)::

    version: 1
    session:  {headers: {...}, cookies: {...}, auth: {user: u, password: "${TOKEN}"},
               proxy: http://proxy:3128, verify_tls: true, deny_private: false}
    limits:   {concurrency: 100, per_host: 6, rate_per_host: 5.0}
    timeout:  {total: 30, connect: 10, sock_read: 15, sock_connect: null}
    retry:    {attempts: 3, backoff: 0.5, max_backoff: 30, on_status: [429, 5xx]}
    output:   {jsonl: results.jsonl, bodies: bodies/, save: on_success, max_body: 64MiB}
    defaults: {method: GET, follow_redirects: true, max_redirects: 10, expect: [200]}
    requests:
      - https://example.com/
      - {url: https://api.example.com/items, method: POST, json: {a: 1}, name: create,
         headers: {X-Trace: "1"}, expect: [201], timeout: 5, retry: {attempts: 1}}
      - {urls_file: urls.txt}                        # one URL a line, '#' comments
      - {url: "https://api.example.com/items?page={page}", range: {page: [1, 500]}}

Rules worth knowing (each violation is an error with ``file:line:col``):

* Plain YAML only: no tags, anchors/aliases or duplicate keys; <= 2 MiB,
  <= 50 levels deep, <= 50,000 nodes; one document.
* Scalars are read as the schema expects, never by YAML 1.1 guessing: booleans
  are ``true``/``false`` only; numbers are plain decimals (``1:30``, ``0777``,
  ``0x10``, ``1_000``, ``.inf`` and quoted numbers are refused with a hint);
  ``yes``/``no``/``on``/``off`` where a string is expected must be quoted.
* ``${NAME}`` in string values reads the environment (``$${`` is a literal
  ``${``); a missing or empty variable is an error that names it. Keys,
  numbers and ``urls_file`` lines are never interpolated. Interpolated
  values, credentials, cookies and Authorization/Cookie headers are
  ``Secret`` strings, listed in ``JobFile.secrets`` (see ``JobFile.redact``),
  except variables named in the top-level ``public_env: [NAME, ...]`` list
  (base URLs, host names), which are shown as they are.
* Paths (``output.jsonl``, ``output.bodies``, ``urls_file``) are relative to
  the job file's directory and may not be absolute or contain ``..``;
  absolute paths belong on the command line. A ``urls_file`` must exist and
  must not lead outside the directory through a symlink.
* URLs are absolute ``http``/``https`` with a valid host (numeric hosts must
  be canonical dotted-decimal IPv4). ``{name}`` placeholders need a ``range``
  (inclusive ``[start, end]`` or ``[start, end, step]``, several variables
  give their cartesian product, at most 10,000,000 URLs per file).
* Invalid lines of a ``urls_file`` do not fail the load: they are yielded as
  ``RequestSpec`` with ``error`` set and their ``file:line`` as ``source``.
* ``session.deny_private: true`` (for crawls of untrusted links) refuses to
  connect to loopback, private, link-local (cloud metadata), shared, reserved
  and multicast addresses, checked on the address actually connected to at
  every redirect hop; such requests fail with error kind ``blocked_address``.
  It cannot be combined with ``proxy`` (the proxy would pick the address).
  Unset, it is on for ``crawl:`` and ``check:`` jobs without a proxy (their
  URLs come from untrusted pages): crawl a private site with ``false``.
* ``extract:`` (in ``defaults:`` or an entry) names fields pulled from each
  response (css, xpath, json/JMESPath, regex, header; post-steps strip,
  ``to: int|float``, ``absolute``); selectors are compiled at load time, so a
  bad one is reported with its position. ``follow:`` turns links found by a
  selector into new requests of the job (bounded by ``max_pages``).
* Inheritance: built-in defaults < ``defaults:`` < the entry's own keys;
  headers merge over ``session.headers`` (case-insensitive) and params over
  ``defaults.params``; ``timeout``/``retry`` in an entry override single fields
  of the top-level ones; ``save`` overrides ``output.save``.

Crawl and link-check jobs replace ``requests:`` with one ``crawl:`` or
``check:`` section (exactly one of the three per file)::

    crawl:
      seeds: [https://example.com/]          # one URL or a list (required)
      scope: {same_host: true, prefix: https://example.com/docs/,
              include: ['/docs/'], exclude: ['\\?print=']}   # regexes, re.search
      max_depth: 10                          # seeds are depth 0
      max_pages: 100000
      robots: true                           # obey robots.txt and its Crawl-delay
      sitemaps: false                        # also seed from sitemaps
      conditional: true                      # If-None-Match / If-Modified-Since
    check:
      targets: [docs/, README.md, https://example.com/]   # paths or URLs (required)
      accept: [2xx]                          # status syntax of ``expect``
      indeterminate: [401, 403, 429]         # reported apart, not broken
      exclude: ['^https://twitter\\.com/']
      fragments: false                       # check #ids in the target page
      external: true                         # check links leaving the site
      cache: {ok: 86400, broken: 3600}       # seconds, or false
      max_depth: 10
      max_pages: 10000
      robots: true
    output: {jsonl: out/records.jsonl, state: out/state.sqlite, junit: out/links.xml,
             sarif: out/links.sarif, markdown: out/summary.md, annotations: true}

``check:`` target paths follow the path rules above and must exist; a status
in both ``accept`` and ``indeterminate`` counts as accepted. Regexes are
compiled at load time. ``job_for_check`` builds the same job from
``fetchrun check PATH_OR_URL...`` arguments.
"""

from jobs.errors import JobError, Problem
from jobs.expand import count_requests, iter_requests, resolve_options
from jobs.load import job_for_check, job_from_urls, load_job, load_job_text
from jobs.model import (
    Auth,
    CacheTTL,
    CheckSpec,
    CrawlScope,
    CrawlSpec,
    DataBody,
    JobFile,
    JsonBody,
    Limits,
    Location,
    Output,
    RangeVar,
    Request,
    RequestDefaults,
    RequestOptions,
    RequestOverrides,
    RequestSpec,
    RetryPolicy,
    SaveMode,
    SessionSpec,
    TimeoutSpec,
)
from jobs.secret import Secret, is_secret

__all__ = [
    "Auth",
    "CacheTTL",
    "CheckSpec",
    "CrawlScope",
    "CrawlSpec",
    "DataBody",
    "JobError",
    "JobFile",
    "JsonBody",
    "Limits",
    "Location",
    "Output",
    "Problem",
    "RangeVar",
    "Request",
    "RequestDefaults",
    "RequestOptions",
    "RequestOverrides",
    "RequestSpec",
    "RetryPolicy",
    "SaveMode",
    "Secret",
    "SessionSpec",
    "TimeoutSpec",
    "count_requests",
    "is_secret",
    "iter_requests",
    "job_for_check",
    "job_from_urls",
    "load_job",
    "load_job_text",
    "resolve_options",
]
