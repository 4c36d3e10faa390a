"""Refuse what a function's role does not allow, the way AWS refuses it.

A request signed with a function's credentials (`iam.Role.environment()`) is judged against that
function's role; any other signer (the stack itself, a developer's `aws --endpoint-url`, moto's own
Step Functions client) is let through, as moto would. A refusal is the service's own
AccessDenied answer (status, body and error code as botocore parses them), and one log line names
the function, the action and the resource.

Two places apply it: `EnforcingApp` wraps moto's server (the local stack, where functions run in
their own processes and call moto over HTTP), and `install_botocore_hook` sits in front of moto's
in-process stub (the integration tests, where handlers run in the test process).
"""

from __future__ import annotations

import io
import json
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape

from batchops_local.aws_requests import HttpRequest, TableKeys, Unreadable, access_requests, signer
from batchops_local.iam import AccessRequest, Decision, Role, by_access_key, describe
from batchops_local.template import Table

Log = Callable[[str], None]


@dataclass(frozen=True)
class Denial:
    role: Role
    service: str
    message: str  # what AWS answers
    reason: str  # why, for the log
    request: AccessRequest | None  # None: the request could not be read

    def response(self) -> tuple[int, dict[str, str], bytes]:
        """Status, headers and body of AWS's AccessDenied answer for the service."""
        request_id = str(uuid.uuid4())
        if self.service in ("dynamodb", "states"):
            body = {"__type": "com.amazon.coral.service#AccessDeniedException", "Message": self.message}
            headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": request_id}
            return 400, headers, json.dumps(body).encode()
        if self.service == "sqs":
            # SQS speaks JSON but keeps its query-era codes (awsQueryCompatible): botocore takes
            # the code from x-amzn-query-error, as it does for SQS's real AccessDenied.
            body = {"__type": "com.amazon.coral.service#AccessDeniedException", "message": self.message}
            headers = {
                "Content-Type": "application/x-amz-json-1.0",
                "x-amzn-RequestId": request_id,
                "x-amzn-query-error": "AccessDenied;Sender",
            }
            return 403, headers, json.dumps(body).encode()
        if self.service == "lambda":
            headers = {"Content-Type": "application/json", "x-amzn-ErrorType": "AccessDeniedException"}
            return 403, headers, json.dumps({"Type": "User", "Message": self.message}).encode()
        if self.service == "s3":
            xml = (
                '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
                f"<Message>{escape(self.message)}</Message><RequestId>{request_id}</RequestId></Error>"
            )
            return 403, {"Content-Type": "application/xml", "x-amz-request-id": request_id}, xml.encode()
        xml = (
            "<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code>"
            f"<Message>{escape(self.message)}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>"
        )
        return 403, {"Content-Type": "text/xml", "x-amzn-RequestId": request_id}, xml.encode()

    def log_line(self) -> str:
        if self.request is None:
            what = f"a {self.service} request"
        else:
            keys = "".join(f" with {k}={list(v)}" for k, v in self.request.context.items())
            what = f"{self.request.action} on {self.request.resource}{keys}"
        return f"IAM AccessDenied: {self.role.function} (role {self.role.name}) may not {what}: {self.reason}"


def table_keys(tables: Iterable[Table]) -> dict[str, TableKeys]:
    found: dict[str, TableKeys] = {}
    for table in tables:
        hash_key = next(k["AttributeName"] for k in table.key_schema if k["KeyType"] == "HASH")
        indexes = {
            index["IndexName"]: next(k["AttributeName"] for k in index["KeySchema"] if k["KeyType"] == "HASH")
            for index in [*table.global_secondary_indexes, *table.local_secondary_indexes]
        }
        found[table.name] = TableKeys(hash_key, indexes)
    return found


class Enforcer:
    def __init__(self, roles: Iterable[Role], tables: Mapping[str, TableKeys], log: Log) -> None:
        self._roles = by_access_key(roles)
        self._tables = tables
        self._log = log

    def check(self, request: HttpRequest, form: Mapping[str, str] | None = None) -> Denial | None:
        """The denial AWS would answer with, or None when the request may go on."""
        access_key, service = signer(request, form)
        role = self._roles.get(access_key or "")
        if role is None:
            return None
        service = service or ""
        try:
            wanted = access_requests(request, service, self._tables, form)
        except (Unreadable, KeyError, TypeError, ValueError, StopIteration) as exc:
            reason = f"the local stack could not read the request ({type(exc).__name__}: {exc}), so it refuses it"
            return self._deny(Denial(role, service, reason, reason, None))
        for access in wanted:
            if access.action == "sts:GetCallerIdentity":
                continue  # always allowed, whatever the policies say
            decision = role.decide(access)
            if decision is not Decision.ALLOWED:
                return self._deny(Denial(role, service, describe(access, role, decision), decision.value, access))
        return None

    def _deny(self, denial: Denial) -> Denial:
        self._log(denial.log_line())
        return denial


# --- moto's HTTP server (the local stack) ---------------------------------------------------------

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class EnforcingApp:
    """WSGI middleware in front of moto's server application. The server starts before the
    roles are known (queue URLs carry its port), so the enforcer is set once they are."""

    def __init__(self) -> None:
        self._app: WsgiApp | None = None
        self.enforcer: Enforcer | None = None

    def wrap(self, app: WsgiApp) -> None:
        self._app = app

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        assert self._app is not None, "wrap() moto's application first"
        if self.enforcer is None:
            return self._app(environ, start_response)
        body = _read_body(environ)
        # moto reads the body again: hand it a fresh stream of the same bytes.
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        request = HttpRequest(environ["REQUEST_METHOD"], _url(environ), _headers(environ), body)
        denial = self.enforcer.check(request, _post_form(environ, body))
        if denial is None:
            return self._app(environ, start_response)
        status, headers, payload = denial.response()
        start_response(f"{status} Forbidden" if status == 403 else f"{status} Bad Request", list(headers.items()))
        return [payload]


def _read_body(environ: Mapping[str, Any]) -> bytes:
    stream = environ["wsgi.input"]
    length = environ.get("CONTENT_LENGTH")
    if length:
        return bytes(stream.read(int(length)))
    if environ.get("wsgi.input_terminated"):  # chunked: the server ends the stream for us
        return bytes(stream.read())
    return b""


def _url(environ: Mapping[str, Any]) -> str:
    # The raw request target keeps percent-encoding (S3 keys); PATH_INFO is already decoded.
    target = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if not target:
        query = environ.get("QUERY_STRING")
        target = environ.get("PATH_INFO", "/") + (f"?{query}" if query else "")
    return f"{environ.get('wsgi.url_scheme', 'http')}://{environ.get('HTTP_HOST', 'localhost')}{target}"


def _headers(environ: Mapping[str, Any]) -> dict[str, str]:
    headers = {k[5:].replace("_", "-").title(): str(v) for k, v in environ.items() if k.startswith("HTTP_")}
    for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(key):
            headers[key.replace("_", "-").title()] = str(environ[key])
    return headers


def _post_form(environ: Mapping[str, Any], body: bytes) -> dict[str, str] | None:
    """The fields of a multipart POST (S3's presigned POST upload), else None."""
    if environ.get("REQUEST_METHOD") != "POST" or "multipart/form-data" not in environ.get("CONTENT_TYPE", ""):
        return None
    from werkzeug.formparser import parse_form_data

    copy = {**environ, "wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body))}
    _, form, files = parse_form_data(copy)
    fields = {str(k): str(v) for k, v in form.items()}
    upload = files.get("file")
    if upload is not None and upload.filename:
        fields.setdefault("filename", upload.filename)
    return fields


# --- botocore in-process (the integration tests) -------------------------------------------------

_hook_lock = threading.Lock()
_hook_enforcer: list[Enforcer] = []


def install_botocore_hook(enforcer: Enforcer) -> None:
    """Judge every request of every boto3 client created from now on, before moto's in-process
    stub answers it. botocore calls `before-send` handlers in registration order until one
    answers, so ours goes first in the handlers every new session registers."""
    from botocore.handlers import BUILTIN_HANDLERS

    with _hook_lock:
        _hook_enforcer[:] = [enforcer]
        if not any(handler is _before_send for _, handler, *_ in BUILTIN_HANDLERS):
            BUILTIN_HANDLERS.insert(0, ("before-send", _before_send))


def from_botocore(request: Any) -> HttpRequest:
    """A botocore AWSPreparedRequest as the enforcer reads it."""
    body = request.body
    if hasattr(body, "read"):
        body = b""  # a streamed upload; no authorization decision reads an object's bytes
    raw = body.encode() if isinstance(body, str) else bytes(body or b"")
    headers = {str(k): v.decode() if isinstance(v, bytes) else str(v) for k, v in request.headers.items()}
    return HttpRequest(request.method, request.url, headers, raw)


def to_botocore(request: Any, denial: Denial) -> Any:
    """The denial as the AWSResponse botocore parses."""
    from botocore.awsrequest import AWSResponse
    from botocore.compat import HTTPHeaders
    from moto.core.botocore_stubber import MockRawResponse

    status, headers, payload = denial.response()
    return AWSResponse(request.url, status, HTTPHeaders.from_dict(headers), MockRawResponse(payload))


def _before_send(request: Any, **_: Any) -> Any:
    if not _hook_enforcer:
        return None
    denial = _hook_enforcer[0].check(from_botocore(request))
    return None if denial is None else to_botocore(request, denial)
