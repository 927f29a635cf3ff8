"""URL steps of a request: build, validate, compare origins, follow Location.

Checks happen on the *raw* string before yarl sees it: yarl silently drops
CR, LF and TAB from URLs (WHATWG rules), which would hide an injection
attempt instead of reporting it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

from multidict import MultiMapping
from yarl import URL

from .exceptions import (
    InvalidUrlClientError,
    InvalidUrlRedirectClientError,
    NonHttpUrlClientError,
    NonHttpUrlRedirectClientError,
)
from .resolver import check_host

HTTP_SCHEMES = frozenset(("http", "https"))
WS_SCHEMES = frozenset(("ws", "wss"))
_CTL = re.compile(r"[\x00-\x1f\x7f]")

StrOrURL = str | URL
Params = Mapping[str, Any] | Sequence[tuple[str, Any]] | MultiMapping[Any] | str | None


def to_url(value: StrOrURL, *, encoded: bool = False) -> URL:
    """Parse a user's URL, refusing control characters instead of dropping them."""
    if isinstance(value, URL):
        return value
    if not isinstance(value, str):
        raise InvalidUrlClientError(value, "URL must be a str or yarl.URL")
    if _CTL.search(value):
        raise InvalidUrlClientError(repr(value), "URL contains control characters")
    try:
        return URL(value, encoded=encoded)
    except (ValueError, TypeError) as exc:
        raise InvalidUrlClientError(value, str(exc)) from exc


def add_params(url: URL, params: Params) -> URL:
    """Append ``params``: a str is taken as an already-encoded query (``+`` kept)."""
    if not params:
        return url
    if isinstance(params, str):
        if _CTL.search(params):
            raise InvalidUrlClientError(repr(params), "params contain control characters")
        query = f"{url.raw_query_string}&{params}" if url.raw_query_string else params
        base = str(url.with_query(None).with_fragment(None))
        fragment = f"#{url.raw_fragment}" if url.raw_fragment else ""
        return URL(f"{base}?{query}{fragment}", encoded=True)
    items = params.items() if isinstance(params, Mapping) else params
    for name, value in items:
        for text in (str(name), str(value)):
            if _CTL.search(text):
                raise InvalidUrlClientError(repr(text), "params contain control characters")
    return url.extend_query(params)


def build_url(
    str_or_url: StrOrURL,
    base_url: URL | None,
    params: Params,
    allowed_schemes: frozenset[str],
) -> URL:
    """The absolute URL a request goes to, checked."""
    url = to_url(str_or_url)
    if base_url is not None and not url.absolute:
        url = base_url.join(url)
    url = add_params(url, params)
    check_url(url, allowed_schemes)
    return url


def check_url(url: URL, allowed_schemes: frozenset[str]) -> None:
    # Scheme first, as aiohttp: host-less file:/mailto:/data: URLs are "non-HTTP".
    if url.scheme and url.scheme not in allowed_schemes:
        raise NonHttpUrlClientError(url)
    if not url.scheme or not url.absolute or not url.raw_host:
        raise InvalidUrlClientError(url, "URL is not absolute")
    problem = _host_problem(url.raw_host)
    if problem is not None:
        raise InvalidUrlClientError(url, problem)


@lru_cache(maxsize=4096)
def _host_problem(host: str) -> str | None:
    """Why ``host`` is refused, or ``None``; cached since hosts repeat (hot path)."""
    try:
        check_host(host)
    except ValueError as exc:
        return str(exc)
    return None


def same_origin(a: URL, b: URL) -> bool:
    """Scheme, host and port equal - compared from parsed parts (security.md RED-03)."""
    return (a.scheme, a.raw_host, a.port) == (b.scheme, b.raw_host, b.port)


def resolve_location(
    current: URL, locations: Sequence[str], *, requote: bool, allowed_schemes: frozenset[str]
) -> URL | None:
    """The next hop of a redirect, or ``None`` when there is no Location.

    Two different Location values, or one with control characters or spaces,
    are refused (security.md RED-08); so is any non-HTTP scheme (RED-05).
    """
    if not locations:
        return None
    if len(set(locations)) > 1:
        raise InvalidUrlRedirectClientError(locations[0], "several different Location headers")
    location = locations[0]
    if _CTL.search(location) or " " in location.strip():
        raise InvalidUrlRedirectClientError(repr(location), "Location contains invalid characters")
    try:
        target = URL(location.strip(), encoded=not requote)
    except (ValueError, TypeError) as exc:
        raise InvalidUrlRedirectClientError(location, str(exc)) from exc
    scheme = target.scheme
    if scheme and scheme not in allowed_schemes:
        raise NonHttpUrlRedirectClientError(location)
    if not target.absolute or not scheme:  # scheme-relative "//host/p" too
        # Browser-style "http:path" is relative to the current URL, as aiohttp does.
        if scheme:
            target = URL(location.strip()[len(scheme) + 1 :], encoded=not requote)
        target = current.join(target)
    if current.fragment and not target.fragment:
        target = target.with_fragment(current.fragment)
    try:
        check_url(target, allowed_schemes)
    except InvalidUrlClientError as exc:
        raise InvalidUrlRedirectClientError(location, str(exc)) from exc
    except NonHttpUrlClientError as exc:
        raise NonHttpUrlRedirectClientError(location) from exc
    return target
