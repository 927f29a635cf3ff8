"""TLS settings: the ``ssl=`` argument turned into an ``SSLContext``.

Contexts are built on first use, not at import (aiohttp builds two at import,
about 40 ms of its import time), and cached: building one loads the system
trust store.
"""

from __future__ import annotations

import ssl
import warnings
from functools import cache
from typing import Any

from .helpers import Fingerprint

SSLSetting = bool | ssl.SSLContext | Fingerprint


@cache
def verified_context() -> ssl.SSLContext:
    """The default: system trust store, hostname checked, HTTP/1.1 over ALPN."""
    ctx = ssl.create_default_context()
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


@cache
def unverified_context() -> ssl.SSLContext:
    """``ssl=False``: encrypt, but check neither chain nor hostname."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def context_for(setting: Any, base: Any = True) -> ssl.SSLContext:
    """The context to connect with for an ``ssl=`` value (for https URLs).

    A ``Fingerprint`` is checked on top of ``base``, the connector's own
    setting: full verification by default (security.md F3: a pin never
    silently replaces chain and hostname checks), the connector's context if
    it has one, and no verification only when the connector itself says
    ``ssl=False`` -- aiohttp's pin-only behaviour, but asked for explicitly.
    """
    if isinstance(setting, Fingerprint):
        setting = True if isinstance(base, Fingerprint) else base
    if setting is True or setting is None:
        return verified_context()
    if setting is False:
        return unverified_context()
    if isinstance(setting, ssl.SSLContext):
        return setting
    raise TypeError(f"ssl should be True, False, an SSLContext or a Fingerprint, not {setting!r}")


def merge_ssl_args(
    ssl_value: Any,
    verify_ssl: bool | None = None,
    ssl_context: ssl.SSLContext | None = None,
    fingerprint: bytes | None = None,
) -> SSLSetting:
    """Fold aiohttp's deprecated ``verify_ssl``/``ssl_context``/``fingerprint`` into ``ssl``.

    They stay accepted (the seeds use them) with a DeprecationWarning, and are
    mutually exclusive with each other and with a non-default ``ssl``.
    """
    given = [
        name
        for name, value in (
            ("verify_ssl", verify_ssl),
            ("ssl_context", ssl_context),
            ("fingerprint", fingerprint),
        )
        if value is not None
    ]
    if not given:
        if ssl_value is None:
            return True
        if not isinstance(ssl_value, bool | ssl.SSLContext | Fingerprint):
            raise TypeError(
                f"ssl should be True, False, an SSLContext or a Fingerprint, not {ssl_value!r}"
            )
        return ssl_value
    if len(given) > 1 or ssl_value not in (True, None):
        raise ValueError(
            "verify_ssl, ssl_context, fingerprint and ssl parameters are mutually exclusive"
        )
    name = given[0]
    warnings.warn(
        f"{name} is deprecated, use ssl={'...'} instead", DeprecationWarning, stacklevel=3
    )
    if verify_ssl is not None:
        return bool(verify_ssl)
    if ssl_context is not None:
        return ssl_context
    assert fingerprint is not None
    return Fingerprint(fingerprint)
