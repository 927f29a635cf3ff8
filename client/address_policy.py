"""Which IP addresses a connector may dial: the crawler's SSRF guard (security.md SSRF-01..03).

``TCPConnector(address_policy=deny_private())`` checks every address right before
the socket is opened: the literal IP of the URL, or each address the resolver
returned (one resolution per connection, and ``create_connection`` gets that very
numeric address, so a DNS answer that changes between "check" and "connect"
cannot slip through). Redirect hops dial through the same connector, so every hop
is checked. Addresses the policy refuses are skipped; when none is left the
request fails with :class:`ClientConnectorBlockedError` and no connection is
attempted.

What :func:`deny_private` refuses: every address that is not globally routable -
loopback, RFC 1918, link-local (cloud metadata at 169.254.169.254), shared
100.64/10, 0/8, documentation and benchmarking ranges, multicast, broadcast and
reserved space, IPv6 ULA/link-local/site-local, and IPv6 forms that carry an
IPv4 address (``::ffff:10.0.0.1``, NAT64 ``64:ff9b::/96``) are judged by that
IPv4 address. 6to4 (``2002::/16``) and Teredo are refused outright: their
gateways may sit inside our own network. A host that is not a numeric address
(a resolver that answered a name) is refused too: it cannot be checked.

Limits: a policy cannot see what a proxy connects to, so a connector with a policy
refuses to dial through a proxy (fail closed). A connection already pooled was
checked when it was opened.
"""

from __future__ import annotations

import errno
import ipaddress
from collections.abc import Callable, Iterable
from typing import Any, TypeAlias

from .exceptions import ClientConnectorError
from .resolver import ResolveResult

__all__ = (
    "AddressCheck",
    "AddressPolicy",
    "ClientConnectorBlockedError",
    "deny_private",
    "permitted",
)

IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network
AddressCheck: TypeAlias = Callable[[str, int], bool]
"""``(numeric address, port) -> allowed``: what ``TCPConnector(address_policy=)`` takes."""


def _nets(*pairs: tuple[str, str]) -> tuple[tuple[IPNetwork, str], ...]:
    return tuple((ipaddress.ip_network(net), label) for net, label in pairs)


# Explicit ranges (IANA special-purpose registries, RFC 6890), so the verdict does not
# depend on the Python patch release: ``is_private``/``is_global`` changed in 3.11.10
# and 3.12.4. The ipaddress properties are consulted as well, after these.
_SPECIAL_V4 = _nets(
    ("0.0.0.0/8", "'this network' (0.0.0.0/8)"),
    ("10.0.0.0/8", "private (10/8)"),
    ("100.64.0.0/10", "shared address space (100.64/10)"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local (169.254/16, cloud metadata)"),
    ("172.16.0.0/12", "private (172.16/12)"),
    ("192.0.0.0/24", "IETF protocol assignments (192.0.0/24)"),
    ("192.0.2.0/24", "documentation (192.0.2/24)"),
    ("192.88.99.0/24", "6to4 relay anycast (192.88.99/24)"),
    ("192.168.0.0/16", "private (192.168/16)"),
    ("198.18.0.0/15", "benchmarking (198.18/15)"),
    ("198.51.100.0/24", "documentation (198.51.100/24)"),
    ("203.0.113.0/24", "documentation (203.0.113/24)"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved (240/4, broadcast)"),
)
_SPECIAL_V6 = _nets(
    ("::1/128", "loopback"),
    ("::/128", "unspecified"),
    ("::/96", "IPv4-compatible (deprecated)"),
    ("64:ff9b:1::/48", "local-use NAT64"),
    ("100::/64", "discard-only"),
    ("2001::/32", "Teredo"),
    ("2001::/23", "IETF protocol assignments (2001::/23)"),
    ("2001:db8::/32", "documentation"),
    ("2002::/16", "6to4"),
    ("3fff::/20", "documentation"),
    ("5f00::/16", "segment routing"),
    ("fc00::/7", "unique local (fc00::/7)"),
    ("fe80::/10", "link-local"),
    ("fec0::/10", "site-local (deprecated)"),
    ("ff00::/8", "multicast"),
)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class ClientConnectorBlockedError(ClientConnectorError):
    """The address policy refused every address of the host; nothing was dialed.

    ``address`` is the (last) refused address, or ``None`` when the policy refused
    the connection as a whole (through a proxy).
    """

    def __init__(self, connection_key: Any, address: str | None, reason: str) -> None:
        self._address = address
        shown = f"address {address} refused: {reason}" if address else reason
        super().__init__(connection_key, OSError(errno.EACCES, shown))
        self.args = (connection_key, address, reason)  # what pickle passes back to __init__

    @property
    def address(self) -> str | None:
        """The refused numeric address (``None`` for a refused proxy)."""
        return self._address


def _parse(address: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(address.partition("%")[0])  # "fe80::1%eth0": drop the zone
    except ValueError:
        return None


def _v4_reason(ip: ipaddress.IPv4Address) -> str | None:
    for net, label in _SPECIAL_V4:
        if ip in net:
            return label
    if ip.is_private or ip.is_reserved or ip.is_multicast or not ip.is_global:
        return "not globally routable"
    return None


def _v6_reason(ip: ipaddress.IPv6Address) -> str | None:
    embedded = ip.ipv4_mapped
    if embedded is None and ip in _NAT64:
        embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if embedded is not None:
        # The kernel (IPv4-mapped) or a NAT64 gateway connects to the IPv4 address.
        reason = _v4_reason(embedded)
        return f"carries {embedded}, {reason}" if reason else None
    for net, label in _SPECIAL_V6:
        if ip in net:
            return label
    if (
        ip.is_private
        or ip.is_reserved
        or ip.is_multicast
        or ip.is_site_local
        or ip.is_link_local
        or not ip.is_global
    ):
        return "not globally routable"
    return None


def special_reason(ip: IPAddress) -> str | None:
    """Why *ip* is not a public, globally routable unicast address; ``None`` if it is."""
    return _v4_reason(ip) if isinstance(ip, ipaddress.IPv4Address) else _v6_reason(ip)


def _networks(items: Iterable[str | IPNetwork]) -> tuple[IPNetwork, ...]:
    return tuple(
        item if not isinstance(item, str) else ipaddress.ip_network(item, strict=False)
        for item in items
    )


class AddressPolicy:
    """Allow/deny rules for the numeric addresses a connector dials.

    An address is allowed when it (or the IPv4 address an IPv4-mapped/NAT64
    address carries) is inside an ``allow`` network; otherwise it is refused when
    it is inside a ``deny`` network or, with ``deny_special``, is not a public
    globally routable address. Non-numeric input is always refused.
    Networks are CIDR strings (``"10.1.0.0/16"``, ``"127.0.0.1"``) or
    ``ipaddress`` networks.
    """

    __slots__ = ("_allow", "_deny", "_deny_special")

    def __init__(
        self,
        *,
        deny: Iterable[str | IPNetwork] = (),
        allow: Iterable[str | IPNetwork] = (),
        deny_special: bool = False,
    ) -> None:
        self._deny = _networks(deny)
        self._allow = _networks(allow)
        self._deny_special = deny_special

    def __repr__(self) -> str:
        allow = ", ".join(map(str, self._allow))
        deny = ", ".join(map(str, self._deny))
        return f"<AddressPolicy deny_special={self._deny_special} allow=[{allow}] deny=[{deny}]>"

    def __call__(self, address: str, port: int) -> bool:
        """Whether a connection to ``address`` (numeric) may be opened; ``port`` is unused."""
        return self.check(address) is None

    def check(self, address: str) -> str | None:
        """``None`` when *address* may be dialed, else why not (for the error message)."""
        ip = _parse(address)
        if ip is None:
            return "not a numeric IP address"
        if self._allowed(ip):
            return None
        for net in self._deny:
            if ip in net:
                return f"in denied network {net}"
        return special_reason(ip) if self._deny_special else None

    def _allowed(self, ip: IPAddress) -> bool:
        if not self._allow:
            return False
        inner = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
        return any(ip in net or (inner is not None and inner in net) for net in self._allow)


def deny_private(*, allow: Iterable[str | IPNetwork] = ()) -> AddressPolicy:
    """The crawler policy: only public, globally routable unicast addresses.

    ``allow`` lists networks to permit anyway (an intranet for CI link checks).
    """
    return AddressPolicy(allow=allow, deny_special=True)


def permitted(
    policy: AddressCheck, key: Any, addresses: list[ResolveResult]
) -> list[ResolveResult]:
    """The addresses *policy* allows, in order; raise when it allows none."""
    allowed = [a for a in addresses if policy(a["host"], a["port"])]
    if allowed:
        return allowed
    last = addresses[-1]["host"] if addresses else None
    reason = "refused by the address policy"
    if isinstance(policy, AddressPolicy) and last is not None:
        reason = policy.check(last) or reason
    raise ClientConnectorBlockedError(key, last, reason)


def refuse_proxy(key: Any) -> ClientConnectorBlockedError:
    """The error for a proxied connection under a policy: the proxy picks the address."""
    return ClientConnectorBlockedError(
        key, None, "an address policy cannot be enforced through a proxy (it resolves the target)"
    )
