"""``ClientTimeout``: the frozen timeout policy, with aiohttp's field meanings.

* ``total`` - everything from the call to the end of the body read, including
  the wait for a pool slot, every redirect hop and the body.
* ``connect`` - waiting for a pool slot plus opening a new connection
  (DNS, TCP, TLS, proxy CONNECT).
* ``sock_connect`` - one TCP+TLS connect attempt to one peer address.
* ``sock_read`` - the longest gap between two reads from the peer.
* ``pool`` - ours (aiohttp #10313): the longest wait for a free pool slot.

``None`` or ``0`` disables a limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class ClientTimeout:
    """Timeout policy for a session or a single request."""

    total: float | None = None
    connect: float | None = None
    sock_read: float | None = None
    sock_connect: float | None = None
    ceil_threshold: float = 5
    pool: float | None = None

    def __post_init__(self) -> None:
        for name in ("total", "connect", "sock_read", "sock_connect", "pool"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int | float) or value < 0):
                raise ValueError(
                    f"ClientTimeout.{name} must be None or a number >= 0, not {value!r}"
                )


# aiohttp's default since 3.10.9: five minutes overall, 30 s per connect attempt.
DEFAULT_TIMEOUT = ClientTimeout(total=300, sock_connect=30)


def coerce_timeout(value: Any, default: ClientTimeout) -> ClientTimeout:
    """Turn a request's ``timeout=`` argument into a ``ClientTimeout``.

    A plain number means ``total`` (as in aiohttp); ``None`` disables every
    limit; the sentinel ``...`` (not given) means the session's default.
    """
    if value is ...:
        return default
    if value is None:
        return ClientTimeout(total=None)
    if isinstance(value, ClientTimeout):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return ClientTimeout(total=float(value))
    raise TypeError(f"timeout must be a ClientTimeout, a number or None, not {type(value)!r}")


def active(value: float | None) -> float | None:
    """A limit that is actually on: ``None`` for ``None`` and ``0``."""
    return value if value else None
