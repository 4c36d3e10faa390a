"""SSRF refusals, proved by validation alone: no test sends traffic to any of these addresses."""

from __future__ import annotations

import pytest

from batchops.errors import InvalidUrlError, UnsafeUrlError
from batchops.executors.url_safety import check_url, resolve_checked

UNSAFE = [
    "http://127.0.0.1/",
    "http://127.1.2.3:8080/x",
    "http://localhost/",
    "http://api.localhost/",
    "http://0.0.0.0/",
    "http://10.0.0.1/",
    "http://172.16.5.4/",
    "http://172.31.255.255/",
    "http://192.168.1.1/",
    "http://100.64.0.1/",
    "http://169.254.169.254/latest/meta-data/",
    "http://169.254.170.2/v2/credentials",
    "http://[::1]/",
    "http://[::]/",
    "http://[fe80::1]/",
    "http://[fc00::1]/",
    "http://[fd12:3456::1]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:169.254.169.254]/",
    "http://[64:ff9b::a9fe:a9fe]/",
    "http://224.0.0.1/",
    "http://[ff02::1]/",
    "http://2130706433/",
    "http://0x7f.1/",
    "http://0177.0.0.1/",
    "http://240.0.0.1/",
    "http://255.255.255.255/",
]

INVALID = [
    "ftp://example.com/",
    "file:///etc/passwd",
    "gopher://x/",
    "http://",
    "not a url",
    "http://user:pw@example.com/",
    "http://[::1/",
    "http://example.com:0/",
]


@pytest.mark.parametrize("url", UNSAFE)
def test_unsafe_addresses_are_refused(url):
    with pytest.raises(UnsafeUrlError) as refused:
        check_url(url, allow_loopback=False)
    assert refused.value.code == "UNSAFE_URL"


@pytest.mark.parametrize("url", INVALID)
def test_invalid_urls_are_refused(url):
    with pytest.raises(InvalidUrlError) as refused:
        check_url(url, allow_loopback=False)
    assert refused.value.code == "INVALID_URL"


@pytest.mark.parametrize(
    "url", ["https://example.com/hook", "http://93.184.216.34:8080/x", "https://[2606:4700::1111]/"]
)
def test_public_urls_pass(url):
    assert check_url(url, allow_loopback=False).hostname


def test_local_mode_allows_loopback_only():
    assert check_url("http://127.0.0.1:9000/hook", allow_loopback=True)
    assert check_url("http://[::1]:9000/hook", allow_loopback=True)
    assert check_url("http://localhost:9000/hook", allow_loopback=True)
    for url in ("http://0.0.0.0/", "http://10.0.0.1/", "http://169.254.169.254/"):
        with pytest.raises(UnsafeUrlError):
            check_url(url, allow_loopback=True)


def test_resolution_is_checked_at_call_time():
    def resolver(addresses):
        return lambda host, port: addresses

    assert resolve_checked("https://hooks.example/x", allow_loopback=False, resolver=resolver(["93.184.216.34"]))
    # a public name that resolves (now) to an internal address
    with pytest.raises(UnsafeUrlError):
        resolve_checked("https://rebind.example/x", allow_loopback=False, resolver=resolver(["169.254.169.254"]))
    # one internal address among several is enough to refuse
    with pytest.raises(UnsafeUrlError):
        resolve_checked(
            "https://mixed.example/x", allow_loopback=False, resolver=resolver(["93.184.216.34", "10.1.1.1"])
        )
    with pytest.raises(UnsafeUrlError):
        resolve_checked("https://v6.example/x", allow_loopback=False, resolver=resolver(["::ffff:10.0.0.1"]))

    def fails(host, port):
        raise OSError("no such host")

    with pytest.raises(InvalidUrlError):
        resolve_checked("https://nowhere.example/x", allow_loopback=False, resolver=fails)


def test_signatures_verify_with_the_standard_webhooks_library():
    import json
    from datetime import UTC, datetime

    from standardwebhooks import Webhook

    from batchops.executors.webhook_signing import new_signing_secret, signed_headers

    secret = new_signing_secret()
    assert secret.startswith("whsec_")
    body = json.dumps({"run_id": "run_1", "attempt": 1, "payload": {"a": 1}})
    headers = signed_headers(secret, "msg_1", body, datetime.now(UTC))
    assert Webhook(secret).verify(body, headers) == json.loads(body)
    tampered = body.replace('"a": 1', '"a": 2')
    with pytest.raises(Exception, match="signature"):
        Webhook(secret).verify(tampered, headers)
