"""One outbound call of a run to its job's endpoint, safe against SSRF.

The URL is checked again right before the call, after DNS resolution, and the connection goes
to the address that was checked (the Host header and TLS server name keep the original host),
so a name that re-resolves to an internal address between check and connect (DNS rebinding)
is never reached. Redirects are not followed, proxies from the environment are ignored, the
whole exchange must finish within the job's timeout, at most `max_body_bytes` + 1 bytes of the
response are read, and a name with several checked addresses is tried address by address
(IPv4 first) while connecting fails.
"""

from __future__ import annotations

import ipaddress
import ssl
import threading
import zlib
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING
from urllib.parse import SplitResult

from batchops.errors import InvalidUrlError, UnsafeUrlError
from batchops.executors import url_safety
from batchops.models.headers import header_problem
from batchops.observability import logger

if TYPE_CHECKING:
    # Imported where a call is made: the webhook service imports this module in every function
    # that may emit an event, and httpx (with anyio, httpcore, ssl) is 78 ms of CPU at import from the built layer.
    import httpx

USER_AGENT = "batchops-run-worker/1"
MAX_CONNECT_SECONDS = 10.0


@dataclass(frozen=True)
class CallOutcome:
    """What happened: an HTTP status with the body read (up to the cap), or an error code
    (TIMEOUT, CONNECTION_ERROR, UNSAFE_URL, INVALID_URL) when no status came back."""

    http_status: int | None = None
    body: bytes = b""
    body_too_large: bool = False
    retry_after: str | None = None
    error_code: str | None = None
    message: str = ""


@lru_cache(maxsize=1)
def _client() -> httpx.Client:
    import httpx

    # One client per process, created on first use; trust_env=False so HTTP(S)_PROXY cannot
    # route a call around the address check.
    return httpx.Client(
        follow_redirects=False,
        trust_env=False,
        # No pooled connections: a pool keyed by the pinned address could hand a TLS connection
        # verified for one hostname to a call for another hostname on the same address.
        limits=httpx.Limits(max_keepalive_connections=0),
        # Raw bytes only: the body is decompressed here, with a bound (see _decoded).
        headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"},
    )


def _pinned(parts: SplitResult, address: str) -> str:
    ip = ipaddress.ip_address(address.split("%")[0])
    host = f"[{ip}]" if ip.version == 6 else str(ip)
    netloc = f"{host}:{parts.port}" if parts.port else host
    return parts._replace(netloc=netloc).geturl()


def _host_header(parts: SplitResult) -> str:
    return parts.netloc.rsplit("@", 1)[-1]


def call(
    url: str,
    *,
    method: str,
    headers: dict[str, str],
    body: str,
    timeout_seconds: float,
    max_body_bytes: int,
    allow_loopback: bool,
    resolver: url_safety.Resolver = url_safety.system_resolver,
    client: httpx.Client | None = None,
) -> CallOutcome:
    try:
        parts = url_safety.check_url(url, allow_loopback=allow_loopback)
    except UnsafeUrlError as error:
        return CallOutcome(error_code=UnsafeUrlError.code, message=error.message)
    except InvalidUrlError as error:
        return CallOutcome(error_code=InvalidUrlError.code, message=error.message)
    try:
        addresses = url_safety.resolve_checked(url, allow_loopback=allow_loopback, resolver=resolver)
    except UnsafeUrlError as error:
        return CallOutcome(error_code=UnsafeUrlError.code, message=error.message)
    except InvalidUrlError as error:  # the form was checked above: only resolution can fail here
        return CallOutcome(error_code="CONNECTION_ERROR", message=error.message)

    for name, value in headers.items():
        # Validated when the job was saved; a header stored before that could never be sent.
        problem = header_problem(name, value)
        if problem is not None:
            return CallOutcome(error_code="CONNECTION_ERROR", message=f"The request could not be sent: {problem}")
    # Latin-1 bytes: httpx encodes str values as ASCII, so an obs-text value (é) that HTTP allows
    # raised UnicodeEncodeError inside the exchange, which then looked like a TIMEOUT.
    raw_headers = {name.encode("ascii"): value.encode("latin-1") for name, value in headers.items()}

    http = client or _client()
    finished: list[CallOutcome] = []
    streams: list[httpx.Response] = []

    def exchange() -> None:
        try:
            outcome = _exchange(
                http, parts, _ipv4_first(addresses), method, raw_headers, body, timeout_seconds, max_body_bytes, streams
            )
        except Exception:  # noqa: BLE001 - in this thread it would vanish, and the call report a TIMEOUT
            # A bug, not the endpoint's doing: said at once rather than waited out as a TIMEOUT.
            logger().exception("Outbound call failed before an answer", extra={"host": parts.hostname})
            outcome = CallOutcome(error_code="CONNECTION_ERROR", message="The request could not be sent")
        finished.append(outcome)

    # httpx's timeouts apply per step (connect, write, each read); the job's timeout is for the
    # whole exchange, so the exchange runs in a thread the call waits for at most that long.
    worker = threading.Thread(target=exchange, name="run-call", daemon=True)
    worker.start()
    worker.join(timeout_seconds)
    if worker.is_alive() or not finished:
        for stream in streams:
            stream.close()  # stops the abandoned thread at its next read
        return _timed_out(timeout_seconds)
    return finished[0]


def _ipv4_first(addresses: list[str]) -> list[str]:
    # Lambda outside a VPC has no IPv6 egress: try IPv4 addresses first, in resolver order.
    return sorted(addresses, key=lambda a: ":" in a)


def _exchange(
    http: httpx.Client,
    parts: SplitResult,
    addresses: list[str],
    method: str,
    headers: dict[bytes, bytes],
    body: str,
    timeout_seconds: float,
    max_body_bytes: int,
    streams: list[httpx.Response],
) -> CallOutcome:
    import httpx

    for n, address in enumerate(addresses):
        request = http.build_request(
            method,
            _pinned(parts, address),
            headers={**headers, b"Host": _host_header(parts).encode("ascii")},
            content=body.encode(),
            timeout=httpx.Timeout(timeout_seconds, connect=min(timeout_seconds, MAX_CONNECT_SECONDS)),
            extensions={"sni_hostname": parts.hostname} if parts.scheme.lower() == "https" else None,
        )
        try:
            response = http.send(request, stream=True)
            streams.append(response)
            try:
                received = bytearray()
                for chunk in response.iter_raw():  # raw: a compressed body is decoded below, bounded
                    received.extend(chunk)
                    if len(received) > max_body_bytes:
                        break
            finally:
                response.close()
        except httpx.ConnectError as error:
            if n + 1 < len(addresses):
                continue  # nothing was sent: the next checked address may answer
            return _failed(error, parts)
        except httpx.TimeoutException:
            return _timed_out(timeout_seconds)
        except httpx.HTTPError as error:
            return _failed(error, parts)
        decoded = _decoded(bytes(received), response.headers.get("content-encoding", ""), max_body_bytes)
        return CallOutcome(
            http_status=response.status_code,
            body=decoded[:max_body_bytes],
            body_too_large=len(received) > max_body_bytes or len(decoded) > max_body_bytes,
            retry_after=response.headers.get("retry-after"),
        )
    return CallOutcome(error_code="CONNECTION_ERROR", message="No address to connect to")


def _failed(error: httpx.HTTPError, parts: SplitResult) -> CallOutcome:
    """A stable message a client may read (it is shown on the run), by kind of failure; the
    exception's own text (addresses, OpenSSL's reasons, Python's errno lines) goes to the log."""
    logger().warning(
        "Outbound call failed", extra={"host": parts.hostname, "error_type": type(error).__name__, "error": str(error)}
    )
    return CallOutcome(error_code="CONNECTION_ERROR", message=_failure_message(error))


def _failure_message(error: httpx.HTTPError) -> str:
    cause: BaseException | None = error
    for _ in range(5):  # httpx wraps httpcore's error, which wraps the ssl one
        if cause is None:
            break
        if isinstance(cause, ssl.SSLCertVerificationError):
            return "The endpoint's TLS certificate could not be verified"
        if isinstance(cause, ssl.SSLError):
            return "The TLS handshake with the endpoint failed"
        cause = cause.__cause__ or cause.__context__
    import httpx

    if isinstance(error, httpx.ConnectError):
        return "Could not connect to the endpoint"
    if isinstance(error, httpx.LocalProtocolError):
        return "The request could not be sent: it is not valid HTTP"
    if isinstance(error, httpx.RemoteProtocolError):
        return "The endpoint closed the connection or did not answer with valid HTTP"
    if isinstance(error, httpx.NetworkError):
        return "The connection to the endpoint failed during the exchange"
    return "The call to the endpoint failed"


def _decoded(raw: bytes, encoding: str, limit: int) -> bytes:
    """A gzip or deflate body inflated to at most limit + 1 bytes (a small body cannot expand
    into gigabytes); other encodings are kept as sent."""
    kind = encoding.strip().lower()
    if kind not in ("gzip", "x-gzip", "deflate"):
        return raw
    # wbits 47: a zlib or gzip header, detected; -15: raw deflate, which some servers send.
    for wbits in (47, -15):
        try:
            return zlib.decompressobj(wbits=wbits).decompress(raw, limit + 1)
        except zlib.error:
            continue
    return raw


def _timed_out(timeout_seconds: float) -> CallOutcome:
    return CallOutcome(error_code="TIMEOUT", message=f"No complete response within {timeout_seconds:g} s")
