"""When to try a request again, and how long to wait first.

Backoff is exponential with *full jitter* (delay drawn uniformly from
``[0, min(max_backoff, backoff * 2**(attempt-1))]``), which spreads retries of
many clients instead of synchronising them. A server's ``Retry-After``
(seconds or an HTTP-date, RFC 9110 §10.2.3) wins over the computed delay, but
is capped so a hostile server cannot park a run for hours.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC
from email.utils import parsedate_to_datetime

from jobs import RetryPolicy

# Failures worth another try: the network or the server may do better soon.
TRANSIENT_ERRORS = frozenset(
    {"timeout", "connect_timeout", "read_timeout", "connect", "dns", "disconnected", "payload"}
)
# Retry-After is honoured up to this, or the policy's max_backoff if larger.
RETRY_AFTER_CAP = 120.0


def should_retry(
    policy: RetryPolicy, attempt: int, status: int | None, error_kind: str | None
) -> bool:
    """Whether attempt number ``attempt`` (1-based) deserves a successor."""
    if attempt >= policy.attempts:
        return False
    if error_kind is not None:
        return error_kind in TRANSIENT_ERRORS
    return status is not None and status in policy.on_status


def backoff_delay(
    policy: RetryPolicy, attempt: int, rand: Callable[[], float] = random.random
) -> float:
    """Full-jitter delay before attempt ``attempt + 1``."""
    ceiling = min(policy.max_backoff, policy.backoff * (2.0 ** (attempt - 1)))
    return ceiling * rand()


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After value (delta-seconds or HTTP-date).

    ``now`` is the current Unix time. Junk gives ``None``; a date in the past gives 0.
    """
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # delta-seconds: ASCII DIGITs only ("²" is a digit)
        return float(value) if len(value) <= 10 else None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        # asctime dates carry no zone; every HTTP-date is UTC (RFC 9110 §5.6.7).
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now)


def retry_delay(
    policy: RetryPolicy,
    attempt: int,
    retry_after: str | None,
    now: float,
    rand: Callable[[], float] = random.random,
) -> float:
    """The wait before the next attempt: Retry-After if given (capped), else backoff."""
    server = parse_retry_after(retry_after, now)
    if server is not None:
        return min(server, max(policy.max_backoff, RETRY_AFTER_CAP))
    return backoff_delay(policy, attempt, rand)
