"""``NO_PROXY``: which hosts bypass the environment's proxies (security.md G3, PRX-02).

The rules, on the parsed, lower-cased host with trailing dots dropped:
``*`` bypasses everything; a name (a leading ``.`` or ``*.`` is ignored)
matches itself and its subdomains on a label boundary (``example.com``
matches ``sub.example.com``, never ``notexample.com``); an IP or CIDR entry
matches only IP-literal hosts (an IPv6 zone id is ignored), and a name never
matches an IP literal (``[::1%25.example.com]`` is not ``example.com``);
``host:port`` / ``[v6]:port`` entries match that port only. Entries are
separated by commas or spaces; one with an unparseable port is ignored.
"""

from __future__ import annotations

import ipaddress

from yarl import URL

from .helpers import is_ip_address

__all__ = ("NoProxy",)

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class NoProxy:
    """A parsed ``NO_PROXY`` list; see the module docstring for the rules."""

    __slots__ = ("_all", "_names", "_networks")

    def __init__(self, value: str = "") -> None:
        self._all = False
        self._names: list[tuple[str, int | None]] = []
        self._networks: list[tuple[IPNetwork, int | None]] = []
        for raw in value.replace(" ", ",").split(","):
            entry = raw.strip().lower()
            if entry == "*":
                self._all = True
            elif entry:
                self._add(entry)

    def _add(self, entry: str) -> None:
        host, port = _split_port(entry)
        if port == -1:
            return  # unparseable port: ignore the entry rather than guess
        network = _network(host)
        if network is not None:
            self._networks.append((network, port))
            return
        if host.startswith("*."):
            host = host[1:]
        host = _idna(host.lstrip(".").rstrip("."))
        if host:
            self._names.append((host, port))

    def bypass(self, url: URL) -> bool:
        """True when ``url`` must be fetched directly (no proxy)."""
        if self._all:
            return True
        host = (url.raw_host or "").lower()
        port = url.port
        if ":" in host or _is_ipv4(host):
            # An IP literal: only IP/CIDR entries apply, never names (a zone id
            # like "%25.example.com" must not look like a domain suffix).
            try:
                address = ipaddress.ip_address(host.partition("%")[0])
            except ValueError:
                return False
            return any(
                address in net and (want is None or want == port) for net, want in self._networks
            )
        host = host.rstrip(".")
        for name, want in self._names:
            if want is not None and want != port:
                continue
            if host == name or host.endswith("." + name):
                return True
        return False


def _split_port(entry: str) -> tuple[str, int | None]:
    """``host[:port]`` / ``[v6][:port]`` / bare v6 (with or without /prefix); -1 = bad port."""
    if entry.startswith("["):
        host, sep, rest = entry[1:].partition("]")
        if not sep:
            return entry, -1
        if not rest:
            return host, None
        port = rest[1:] if rest.startswith(":") else ""
        return host, int(port) if port.isdigit() and port.isascii() else -1
    if entry.count(":") == 1:
        host, _, port = entry.partition(":")
        return host, int(port) if port.isdigit() and port.isascii() else -1
    return entry, None  # a name, IPv4, or a bare IPv6 literal / network


def _network(host: str) -> IPNetwork | None:
    try:
        return ipaddress.ip_network(host.partition("%")[0], strict=False)
    except ValueError:
        return None


def _is_ipv4(host: str) -> bool:
    return host[-1:].isdigit() and host.count(".") == 3 and is_ip_address(host)


def _idna(host: str) -> str:
    if host.isascii():
        return host
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return ""
