"""Outbound URL safety (OWASP API7, server-side request forgery).

A URL is checked when it is registered and again right before each call, after DNS
resolution, so a name that later resolves to an internal address is still refused. Refused:
loopback, private (10/8, 172.16/12, 192.168/16, fc00::/7), shared (100.64/10), link-local
(169.254/16 with the cloud metadata endpoints, fe80::/10), unspecified, multicast, reserved,
and IPv6 addresses that carry one of these as an IPv4 address: IPv4-mapped, NAT64, 6to4 (2002::/16,
which any 6to4 relay routes to its embedded address, and which Python's ipaddress calls global:
[2002:a9fe:a9fe::] is 169.254.169.254) and Teredo (its server or client). Only http and https are called. The
local stack and tests may allow loopback (127.0.0.0/8 and ::1 only), through an explicit
setting that deployed stacks never set.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from urllib.parse import SplitResult, urlsplit

from batchops.errors import InvalidUrlError, UnsafeUrlError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]
SCHEMES = {"http": 80, "https": 443}
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def parse(url: str) -> SplitResult:
    """A syntactically callable http(s) URL, or InvalidUrlError."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise InvalidUrlError(f"Malformed URL: {url[:200]}") from None
    if parts.scheme.lower() not in SCHEMES:
        raise InvalidUrlError("Only http and https URLs can be called")
    if not parts.hostname or parts.username is not None or parts.password is not None:
        raise InvalidUrlError("The URL needs a host and must not carry credentials")
    if port == 0:
        raise InvalidUrlError("Port 0 cannot be called")
    return parts


def literal_address(host: str) -> IPAddress | None:
    """The address a host names literally, including the legacy numeric IPv4 forms that
    resolvers accept (2130706433, 0x7f.1, 0177.0.0.1); None for a DNS name."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def is_loopback(address: IPAddress) -> bool:
    return address.is_loopback and (address.version == 4 or address == ipaddress.IPv6Address("::1"))


def is_unsafe(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        # These reach exactly their IPv4 address: judged by it alone (NAT64 is "reserved" to Python).
        if address.ipv4_mapped is not None:
            return is_unsafe(address.ipv4_mapped)
        if address in _NAT64:
            return is_unsafe(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
        # These are routed to an embedded IPv4 address by relays: unsafe if it is, and otherwise
        # judged as IPv6 too (Python calls all of Teredo's 2001::/32 private today).
        embedded = [address.sixtofour] if address.sixtofour is not None else []
        embedded += list(address.teredo or ())
        if any(is_unsafe(inner) for inner in embedded):
            return True
    return (
        not address.is_global
        or address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_multicast
        or address.is_unspecified
        or address.is_reserved
    )


def _refuse(address: IPAddress, allow_loopback: bool) -> None:
    if allow_loopback and is_loopback(address):
        return
    if is_unsafe(address):
        raise UnsafeUrlError(f"Calls to {address} are not allowed (private, loopback or link-local address)")


def check_url(url: str, *, allow_loopback: bool) -> SplitResult:
    """At registration: the URL's form, and its host when it is an address."""
    parts = parse(url)
    host = (parts.hostname or "").lower().rstrip(".")
    address = literal_address(host)
    if address is not None:
        _refuse(address, allow_loopback)
    elif (host in {"localhost", "localhost.localdomain"} or host.endswith(".localhost")) and not allow_loopback:
        # RFC 6761: these names are loopback whatever DNS says.
        raise UnsafeUrlError("Calls to localhost are not allowed")
    return parts


def system_resolver(host: str, port: int) -> list[str]:
    return sorted({str(info[4][0]) for info in socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)})


def resolve_checked(url: str, *, allow_loopback: bool, resolver: Resolver = system_resolver) -> list[str]:
    """Right before a call: every address the host resolves to must be safe (a name with one
    safe and one internal address is refused: the client could be steered to either)."""
    parts = check_url(url, allow_loopback=allow_loopback)
    host = parts.hostname or ""
    port = parts.port or SCHEMES[parts.scheme.lower()]
    try:
        addresses = resolver(host, port)
    except OSError:
        raise InvalidUrlError(f"Cannot resolve {host}") from None
    if not addresses:
        raise InvalidUrlError(f"Cannot resolve {host}")
    for text in addresses:
        _refuse(ipaddress.ip_address(text.split("%")[0]), allow_loopback)
    return addresses
