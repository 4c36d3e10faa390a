"""IPv6 addresses that carry an IPv4 address are judged by it (OWASP API7, SSRF).

A 6to4 address (2002::/16) routes to the IPv4 address in its bits 16-47 through any 6to4 relay:
[2002:a9fe:a9fe::] is the cloud metadata endpoint 169.254.169.254, and Python's ipaddress calls it
global, so it passed. Teredo (2001::/32) carries its server and (inverted) client; IPv4-mapped
(::ffff:0:0/96) and NAT64 (64:ff9b::/96) the address itself. Both checks refuse them: the URL's
literal host when it is registered, and every address a name resolves to right before a call.
"""

from __future__ import annotations

import ipaddress

import pytest

from batchops.errors import UnsafeUrlError
from batchops.executors import http_call, url_safety

UNSAFE = [
    "2002:a9fe:a9fe::",  # 6to4 of 169.254.169.254
    "2002:a9fe:a9fe:1::1",
    "2002:7f00:1::",  # 6to4 of 127.0.0.1
    "2002:0a00:0001::",  # 6to4 of 10.0.0.1
    "2002:c0a8:0101::1",  # 6to4 of 192.168.1.1
    "2001:0:a9fe:a9fe::5601:5601",  # Teredo: server and client 169.254.169.254
    "2001:0:4136:e378:8000:63bf:f5ff:fffe",  # Teredo: client 10.0.0.1
    "::ffff:169.254.169.254",
    "::ffff:a9fe:a9fe",
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
    "64:ff9b::7f00:1",
    "::169.254.169.254",  # IPv4-compatible (deprecated)
]
SAFE = ["2002:0808:0808::1", "64:ff9b::808:808", "::ffff:8.8.8.8", "2606:4700:4700::1111"]


def test_the_cases_embed_what_they_say() -> None:
    assert ipaddress.IPv6Address("2002:a9fe:a9fe::").sixtofour == ipaddress.IPv4Address("169.254.169.254")
    teredo = ipaddress.IPv6Address("2001:0:4136:e378:8000:63bf:f5ff:fffe").teredo
    assert teredo is not None and teredo[1] == ipaddress.IPv4Address("10.0.0.1")


@pytest.mark.parametrize("address", UNSAFE)
def test_an_embedded_unsafe_ipv4_is_refused_at_registration(address: str) -> None:
    with pytest.raises(UnsafeUrlError):
        url_safety.check_url(f"http://[{address}]/latest/meta-data/", allow_loopback=False)


@pytest.mark.parametrize("address", UNSAFE)
def test_an_embedded_unsafe_ipv4_is_refused_when_a_name_resolves_to_it(address: str) -> None:
    with pytest.raises(UnsafeUrlError):
        url_safety.resolve_checked(
            "https://hooks.example.com/x", allow_loopback=False, resolver=lambda host, port: [address]
        )
    # and the run worker's call sends nothing
    out = http_call.call(
        "https://hooks.example.com/x",
        method="POST",
        headers={},
        body="{}",
        timeout_seconds=2,
        max_body_bytes=1024,
        allow_loopback=False,
        resolver=lambda host, port: [address],
    )
    assert out.error_code == "UNSAFE_URL"


@pytest.mark.parametrize("address", UNSAFE)
def test_local_mode_allows_no_embedded_loopback_either(address: str) -> None:
    with pytest.raises(UnsafeUrlError):
        url_safety.check_url(f"http://[{address}]/", allow_loopback=True)


@pytest.mark.parametrize("address", SAFE)
def test_an_embedded_public_ipv4_passes(address: str) -> None:
    url_safety.check_url(f"http://[{address}]/", allow_loopback=False)
    assert url_safety.resolve_checked(
        "https://hooks.example.com/x", allow_loopback=False, resolver=lambda host, port: [address]
    ) == [address]
