"""``RequestInfo``: what was asked, as shown on responses and errors."""

from __future__ import annotations

from typing import NamedTuple

from multidict import CIMultiDictProxy
from yarl import URL


class RequestInfo(NamedTuple):
    """The URL, method and headers of the request that got a response."""

    url: URL
    method: str
    headers: CIMultiDictProxy[str]
    real_url: URL
