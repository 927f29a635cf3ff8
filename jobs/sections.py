"""The job file's settings sections: ``session``, ``limits``, ``timeout``,
``retry``, ``output`` and ``defaults`` (``crawl`` and ``check`` are in
``jobs.crawl_sections``).

Each section is a key -> converter table read by ``jobs.scalars.fields``;
what a section omits keeps the model's default.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from jobs import convert as cv
from jobs import extract
from jobs.checks import check_credential
from jobs.model import (
    Auth,
    DataBody,
    JsonBody,
    Limits,
    Output,
    RequestDefaults,
    RetryPolicy,
    SessionSpec,
    TimeoutSpec,
)
from jobs.scalars import (
    Converter,
    Ctx,
    Invalid,
    as_map,
    fields,
    get_bool,
    get_int,
    get_str,
    nullable,
)
from jobs.yamlsafe import Map, Node, Scalar, child_path

# Where a key belongs when it is written in the wrong section.
ELSEWHERE = {
    **dict.fromkeys(("concurrency", "per_host", "rate_per_host"), "under 'limits:'"),
    **dict.fromkeys(("cookies", "auth", "proxy", "verify_tls", "deny_private"), "under 'session:'"),
    **dict.fromkeys(
        ("jsonl", "bodies", "max_body", "state", "junit", "sarif", "markdown", "annotations"),
        "under 'output:'",
    ),
    **dict.fromkeys(("attempts", "backoff", "max_backoff", "on_status"), "under 'retry:'"),
    **dict.fromkeys(("total", "connect", "sock_read", "sock_connect"), "under 'timeout:'"),
    **dict.fromkeys(
        (
            "method",
            "follow_redirects",
            "max_redirects",
            "expect",
            "params",
            "json",
            "data",
            "extract",
        ),
        "under 'defaults:' (or in a request)",
    ),
    **dict.fromkeys(("url", "urls_file", "range", "name"), "in a 'requests:' entry"),
    **dict.fromkeys(("seeds", "scope", "sitemaps", "conditional"), "under 'crawl:'"),
    **dict.fromkeys(("same_host", "prefix", "include"), "under 'crawl.scope:'"),
    **dict.fromkeys(
        ("targets", "accept", "fragments", "external", "indeterminate", "cache"), "under 'check:'"
    ),
    **dict.fromkeys(("max_depth", "robots"), "under 'crawl:' or 'check:'"),
    "max_pages": "under 'crawl:' or 'check:' (or in 'follow:')",
    **dict.fromkeys(("crawl", "check", "requests"), "at the top level"),
    "exclude": "under 'crawl.scope:' or 'check:'",
    "headers": "under 'session:' (or in a request)",
    "save": "under 'output:' (or in a request)",
    "timeout": "at the top level (or in a request)",
    "retry": "at the top level (or in a request)",
}

LIMITS: dict[str, Converter[Any]] = {
    "concurrency": lambda ctx, node, path: get_int(ctx, node, path, 1, 10_000),
    "per_host": nullable(lambda ctx, node, path: get_int(ctx, node, path, 1, 10_000)),
    "rate_per_host": nullable(cv.positive),
}
TIMEOUT: dict[str, Converter[Any]] = dict.fromkeys(
    ("total", "connect", "sock_read", "sock_connect"), nullable(cv.positive)
)
RETRY: dict[str, Converter[Any]] = {
    "attempts": lambda ctx, node, path: get_int(ctx, node, path, 1, 100),
    "backoff": cv.non_negative,
    "max_backoff": cv.positive,
    "on_status": cv.status_set,
}
OUTPUT: dict[str, Converter[Any]] = {
    "jsonl": nullable(cv.relative_path),
    "bodies": nullable(cv.relative_path),
    "save": cv.save_mode,
    "max_body": nullable(cv.size),
    # Crawl and link-check runs:
    "state": nullable(cv.relative_path),
    "junit": nullable(cv.relative_path),
    "sarif": nullable(cv.relative_path),
    "markdown": nullable(cv.relative_path),
    "annotations": nullable(get_bool),  # null: auto (GITHUB_ACTIONS=true)
}


def _auth_user(ctx: Ctx, node: Node, path: str) -> str:
    text = get_str(ctx, node, path)
    return cv.checked(ctx, node, path, lambda v: check_credential(v, user=True), text)


def _auth_password(ctx: Ctx, node: Node, path: str) -> str:
    text = get_str(ctx, node, path)
    return cv.secret(
        ctx, cv.checked(ctx, node, path, lambda v: check_credential(v, user=False), text)
    )


AUTH: dict[str, Converter[Any]] = {"user": _auth_user, "password": _auth_password}
# Per-request settings that ``defaults:`` may also set.
REQUEST_DEFAULTS: dict[str, Converter[Any]] = {
    "method": cv.method,
    "params": cv.fields_pairs,
    "json": cv.json_value,
    "data": cv.data_body,
    "expect": cv.status_set,
    "follow_redirects": get_bool,
    "max_redirects": cv.max_redirects,
    "extract": extract.block,
    "follow": extract.follow,
}


def section(
    ctx: Ctx, node: Node, path: str, spec: dict[str, Converter[Any]], what: str = "a mapping"
) -> dict[str, Any]:
    """The converted keys of a mapping section."""
    return fields(ctx, as_map(ctx, node, path, what), path, spec, elsewhere=ELSEWHERE)


def limits(ctx: Ctx, node: Node, path: str) -> Limits:
    """``limits:``."""
    return Limits(**section(ctx, node, path, LIMITS))


def timeout_patch(ctx: Ctx, node: Node, path: str) -> dict[str, float | None]:
    """``timeout:`` as given: a number (the total) or a mapping of the four limits."""
    if isinstance(node, Scalar):
        return {"total": cv.positive(ctx, node, path)}
    return section(ctx, node, path, TIMEOUT, "a number of seconds or a mapping")


def timeout(ctx: Ctx, node: Node, path: str) -> TimeoutSpec:
    """Top-level ``timeout:`` over the built-in defaults."""
    return replace(TimeoutSpec(), **timeout_patch(ctx, node, path))


_DEFAULT_RETRY = RetryPolicy()


def retry_patch(
    ctx: Ctx, node: Node, path: str, base: RetryPolicy = _DEFAULT_RETRY
) -> dict[str, Any]:
    """``retry:`` as given (a number of attempts, or a mapping), checked over *base*."""
    if isinstance(node, Scalar):
        return {"attempts": RETRY["attempts"](ctx, node, path)}
    patch = section(ctx, node, path, RETRY, "a number of attempts or a mapping")
    if patch.get("backoff", base.backoff) > patch.get("max_backoff", base.max_backoff):
        raise ctx.error(node, path, "backoff must not exceed max_backoff")
    return patch


def retry(ctx: Ctx, node: Node, path: str) -> RetryPolicy:
    """Top-level ``retry:`` over the built-in defaults."""
    return replace(RetryPolicy(), **retry_patch(ctx, node, path))


def output(ctx: Ctx, node: Node, path: str) -> Output:
    """``output:``; paths are joined to the job directory."""
    return Output(**section(ctx, node, path, OUTPUT))


def session(ctx: Ctx, node: Node, path: str) -> SessionSpec:
    """``session:``."""
    spec: dict[str, Converter[Any]] = {
        "headers": cv.headers,
        "cookies": cv.cookies,
        "auth": _auth,
        "proxy": nullable(_proxy),
        "verify_tls": get_bool,
        "deny_private": get_bool,
    }
    values = section(ctx, node, path, spec)
    if values.get("deny_private") and values.get("proxy"):
        # The proxy resolves and dials the target: no address check could see it.
        key_node = as_map(ctx, node, path).entries["deny_private"][0]
        raise ctx.error(
            key_node,
            child_path(path, "deny_private"),
            "deny_private cannot be enforced through a proxy; remove 'proxy' or 'deny_private'",
        )
    return SessionSpec(**values)


def _auth(ctx: Ctx, node: Node, path: str) -> Auth:
    mapping = as_map(ctx, node, path, "a mapping with 'user' and 'password'")
    values = fields(ctx, mapping, path, AUTH, required=("user", "password"))
    if len(values) < 2:
        raise Invalid()
    return Auth(**values)


def _proxy(ctx: Ctx, node: Node, path: str) -> str:
    proxy = cv.url(ctx, node, path)
    # Credentials in a proxy URL are as secret as the password of ``auth:``.
    return cv.secret(ctx, proxy) if "@" in proxy else proxy


def body_of(
    ctx: Ctx, mapping: Map, path: str, values: dict[str, Any]
) -> JsonBody | DataBody | None:
    """The body from converted ``json`` / ``data`` keys; both at once is an error."""
    if "json" in mapping.entries and "data" in mapping.entries:
        key_node = mapping.entries["data"][0]
        ctx.error(
            key_node,
            f"{path}.data" if path else "data",
            "'json' and 'data' are mutually exclusive; keep one",
        )
        return None
    if "json" in values:
        return JsonBody(values["json"])
    if "data" in values:
        return DataBody(values["data"])
    return None


def defaults(ctx: Ctx, node: Node, path: str) -> RequestDefaults:
    """``defaults:``: per-request settings every request inherits."""
    mapping = as_map(ctx, node, path)
    values = fields(ctx, mapping, path, REQUEST_DEFAULTS, elsewhere=ELSEWHERE)
    body = body_of(ctx, mapping, path, values)
    values.pop("json", None)
    values.pop("data", None)
    if values.get("follow") is False:
        values.pop("follow")  # nothing to turn off at this level
    return RequestDefaults(body=body, **values)
