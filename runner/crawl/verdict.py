"""A checked link's verdict, and how long later runs may trust it.

* ``ok``: the final status is accepted;
* ``indeterminate``: the site would not say (401/403/429/999 by default, or
  a bot challenge such as Cloudflare's ``cf-mitigated: challenge``) after the
  retry budget: CI should not fail on it as if the link were dead;
* ``broken``: any other status, or no answer at all;
* ``excluded``: the target resolved to a private address and the run refuses
  those (the default for link checks: security.md H1).

Only answers that will likely hold are cached: ``ok`` and definite 4xx
(404, 410 ...). Server errors, timeouts, resets and indeterminate answers are
transient and asked again next run.
"""

from __future__ import annotations

from jobs import CheckSpec

from ..outcome import Outcome
from .page import PageInfo
from .state import CachedResult

PRIVATE_REFUSED = (
    "private address refused (allow with --allow-private or session.deny_private: false)"
)


def classify_result(
    outcome: Outcome, info: PageInfo, check: CheckSpec, now: float, url: str
) -> CachedResult:
    """The result to keep for ``url`` (``expires_at <= now``: not cached)."""
    status = outcome.status
    ttl = 0.0
    if outcome.error is not None and outcome.error.kind == "blocked_address":
        verdict, reason = "excluded", PRIVATE_REFUSED
    elif outcome.error is not None and status is None:
        verdict, reason = "broken", outcome.error.message
    elif status in check.accept and outcome.error is None:
        verdict, reason = "ok", ""
        ttl = check.cache.ok if check.cache is not None else 0.0
    elif info.challenge or status in check.indeterminate:
        verdict, reason = "indeterminate", _http(outcome, "the server refused to answer")
    else:
        verdict, reason = "broken", _http(outcome, "")
        if status is not None and 400 <= status < 500 and check.cache is not None:
            ttl = check.cache.broken
    return CachedResult(
        url, verdict, status, reason, outcome.final_url, now + ttl if ttl > 0 else now, info.ids
    )


def _http(outcome: Outcome, note: str) -> str:
    """The reason beside the status (reports print the status themselves)."""
    parts = [outcome.reason or ""]
    if outcome.error is not None:
        parts.append(outcome.error.message)
    elif note:
        parts.append(note)
    return "; ".join(p for p in parts if p)
