"""What an AWS API request asks IAM to allow: its signer, and the action, resource and condition
keys of each authorization AWS makes for it.

Read from the request as it travels (method, URL, headers, body), so the same reading serves moto's
HTTP server (the local stack) and botocore's in-process hook (the integration tests). Per service:

- DynamoDB (JSON, `X-Amz-Target`): one authorization per table, per item of a batch or a
  transaction (TransactWriteItems is authorized as PutItem/UpdateItem/DeleteItem/ConditionCheckItem
  per item), with `dynamodb:LeadingKeys` the partition key values the request touches.
- SQS (JSON or query protocol): batch operations authorize as their single forms
  (SendMessageBatch is sqs:SendMessage) on the queue's ARN.
- S3 (REST): the object or bucket ARN; signed headers, presigned URLs and presigned POST forms.
- Step Functions (JSON), SES v1 (query), Lambda Invoke (REST), STS.

A request a function signs that cannot be read is refused (`Unreadable`) rather than let through.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from email.utils import parseaddr
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from batchops_local.iam import AccessRequest
from batchops_local.intrinsics import ACCOUNT_ID, REGION, bucket_arn, function_arn, queue_arn

LEADING_KEYS = "dynamodb:leadingkeys"


class Unreadable(Exception):
    """The request's action or resource could not be determined (so it cannot be allowed)."""


@dataclass(frozen=True)
class HttpRequest:
    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        return next((str(v) for k, v in self.headers.items() if k.lower() == wanted), None)

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.url).query, keep_blank_values=True)

    def json(self) -> dict[str, Any]:
        try:
            value = json.loads(self.body or b"{}")
        except ValueError as exc:
            raise Unreadable(f"the body is not JSON: {exc}") from None
        if not isinstance(value, dict):
            raise Unreadable("the body is not a JSON object")
        return value

    def form(self) -> dict[str, str]:
        """Query-protocol parameters: the URL's query and a form-encoded body."""
        values = {k: v[-1] for k, v in self.query.items()}
        content_type = (self.header("content-type") or "").lower()
        if self.body and "application/x-www-form-urlencoded" in content_type:
            values.update({k: v[-1] for k, v in parse_qs(self.body.decode(), keep_blank_values=True).items()})
        return values


@dataclass(frozen=True)
class TableKeys:
    """A table's partition key attribute, and each index's, for dynamodb:LeadingKeys."""

    partition_key: str
    index_partition_keys: Mapping[str, str]

    def partition_key_of(self, index: str | None) -> str:
        if index is None:
            return self.partition_key
        return self.index_partition_keys.get(index, self.partition_key)


_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/[^/]*/[^/]*/([^/,\s]+)/aws4_request")


def signer(request: HttpRequest, form: Mapping[str, str] | None = None) -> tuple[str | None, str | None]:
    """(access key id, signing service) from a SigV4 header, a presigned URL or a POST form."""
    authorization = request.header("authorization") or ""
    match = _CREDENTIAL.search(authorization)
    if match:
        return match.group(1), match.group(2)
    for source in (request.query, {k: [v] for k, v in (form or {}).items()}):
        for name, values in source.items():
            if name.lower() == "x-amz-credential" and values:
                parts = unquote(values[-1]).split("/")
                return parts[0], parts[3] if len(parts) > 3 else None
            if name == "AWSAccessKeyId" and values:  # SigV2 presigned URLs
                return values[-1], "s3"
    return None, None


def access_requests(
    request: HttpRequest, service: str, tables: Mapping[str, TableKeys], form: Mapping[str, str] | None = None
) -> list[AccessRequest]:
    """Every authorization AWS makes for `request`, signed for `service`."""
    target = request.header("x-amz-target") or ""
    if service == "dynamodb":
        return _dynamodb(target.rpartition(".")[2], request.json(), tables)
    if service == "sqs":
        return _sqs(request, target)
    if service == "s3":
        return _s3(request, form)
    if service == "states":
        return _states(target.rpartition(".")[2], request.json())
    if service in ("ses", "email"):
        return _ses(request)
    if service == "lambda":
        return _lambda(request)
    if service == "sts":
        action = request.form().get("Action") or target.rpartition(".")[2]
        return [AccessRequest(f"sts:{action}", "*")]
    raise Unreadable(f"the local stack does not authorize {service} requests")


# --- DynamoDB ------------------------------------------------------------------------------------


def table_arn(table: str, index: str | None = None) -> str:
    base = table if table.startswith("arn:") else f"arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/{table}"
    return f"{base}/index/{index}" if index else base


def _table_name(table: str) -> str:
    return table.rsplit("/", 1)[-1] if table.startswith("arn:") else table


def _key_value(attribute: Any) -> str:
    if isinstance(attribute, dict) and len(attribute) == 1:
        return str(next(iter(attribute.values())))
    raise Unreadable(f"not a DynamoDB attribute value: {attribute!r}")


def _item_request(
    action: str, table: str, item: Mapping[str, Any] | None, tables: Mapping[str, TableKeys]
) -> AccessRequest:
    keys = tables.get(_table_name(table))
    context: dict[str, tuple[str, ...]] = {}
    if keys is not None and item is not None and keys.partition_key in item:
        context[LEADING_KEYS] = (_key_value(item[keys.partition_key]),)
    return AccessRequest(f"dynamodb:{action}", table_arn(table), context)


_TRANSACT_WRITE = {"Put": ("PutItem", "Item"), "Update": ("UpdateItem", "Key"), "Delete": ("DeleteItem", "Key")}


def _dynamodb(operation: str, body: Mapping[str, Any], tables: Mapping[str, TableKeys]) -> list[AccessRequest]:
    if operation in ("GetItem", "DeleteItem", "UpdateItem"):
        return [_item_request(operation, body["TableName"], body.get("Key"), tables)]
    if operation == "PutItem":
        return [_item_request(operation, body["TableName"], body.get("Item"), tables)]
    if operation == "BatchWriteItem":
        found = []
        for table, writes in (body.get("RequestItems") or {}).items():
            for write in writes:
                item = (write.get("PutRequest") or {}).get("Item") or (write.get("DeleteRequest") or {}).get("Key")
                found.append(_item_request(operation, table, item, tables))
        return found
    if operation == "BatchGetItem":
        return [
            _item_request(operation, table, key, tables)
            for table, spec in (body.get("RequestItems") or {}).items()
            for key in spec.get("Keys") or []
        ]
    if operation == "TransactWriteItems":
        found = []
        for entry in body.get("TransactItems") or []:
            kind, spec = next(iter(entry.items()))
            action, field = _TRANSACT_WRITE.get(kind, ("ConditionCheckItem", "Key"))
            found.append(_item_request(action, spec["TableName"], spec.get(field), tables))
        return found
    if operation == "TransactGetItems":
        return [
            _item_request("GetItem", entry["Get"]["TableName"], entry["Get"].get("Key"), tables)
            for entry in body.get("TransactItems") or []
        ]
    if operation == "Query":
        table, index = body["TableName"], body.get("IndexName")
        keys = tables.get(_table_name(table))
        context = {LEADING_KEYS: (_query_partition_value(body, keys.partition_key_of(index)),)} if keys else {}
        return [AccessRequest("dynamodb:Query", table_arn(table, index), context)]
    if "TableName" in body:  # Scan, DescribeTable, CreateTable, UpdateTimeToLive, ...
        return [AccessRequest(f"dynamodb:{operation}", table_arn(body["TableName"], body.get("IndexName")))]
    return [AccessRequest(f"dynamodb:{operation}", "*")]  # ListTables and the like


_EQUALITY = re.compile(r"(#?[\w.\-]+)\s*=\s*(:[\w\-]+)|(:[\w\-]+)\s*=\s*(#?[\w.\-]+)")


def _query_partition_value(body: Mapping[str, Any], partition_key: str) -> str:
    """The partition key value a Query names: the equality on the key in KeyConditionExpression
    (names and values through their placeholders), or the legacy KeyConditions."""
    names = body.get("ExpressionAttributeNames") or {}
    values = body.get("ExpressionAttributeValues") or {}
    expression = body.get("KeyConditionExpression")
    if expression:
        for match in _EQUALITY.finditer(expression):
            name, placeholder = (match.group(1), match.group(2)) if match.group(1) else (match.group(4), match.group(3))
            if names.get(name, name) == partition_key and placeholder in values:
                return _key_value(values[placeholder])
    legacy = (body.get("KeyConditions") or {}).get(partition_key)
    if legacy and legacy.get("AttributeValueList"):
        return _key_value(legacy["AttributeValueList"][0])
    raise Unreadable(f"no equality on the partition key {partition_key} in the Query's key condition")


# --- SQS -----------------------------------------------------------------------------------------

_SQS_ACTIONS = {
    "SendMessageBatch": "SendMessage",
    "DeleteMessageBatch": "DeleteMessage",
    "ChangeMessageVisibilityBatch": "ChangeMessageVisibility",
}


def _sqs(request: HttpRequest, target: str) -> list[AccessRequest]:
    if target:
        operation, params = target.rpartition(".")[2], request.json()
    else:
        params = request.form()
        operation = params.get("Action", "")
        if "QueueUrl" not in params and urlsplit(request.url).path.count("/") >= 2:
            params["QueueUrl"] = request.url  # query protocol posts to the queue's own URL
    if not operation:
        raise Unreadable("an SQS request without an action")
    action = f"sqs:{_SQS_ACTIONS.get(operation, operation)}"
    if "QueueUrl" in params:
        name = urlsplit(str(params["QueueUrl"])).path.rstrip("/").rsplit("/", 1)[-1]
        return [AccessRequest(action, queue_arn(name))]
    if "QueueName" in params:
        return [AccessRequest(action, queue_arn(str(params["QueueName"])))]
    return [AccessRequest(action, "*")]  # ListQueues


# --- S3 ------------------------------------------------------------------------------------------

_VIRTUAL_HOST = re.compile(r"^(?P<bucket>[a-z0-9][a-z0-9.\-]*?)\.s3[.\-]")
_BUCKET_SUBRESOURCES = {
    "location": "GetBucketLocation",
    "cors": "GetBucketCORS",
    "notification": "GetBucketNotification",
    "policy": "GetBucketPolicy",
    "versioning": "GetBucketVersioning",
    "lifecycle": "GetLifecycleConfiguration",
    "encryption": "GetEncryptionConfiguration",
    "tagging": "GetBucketTagging",
    "acl": "GetBucketAcl",
    "uploads": "ListBucketMultipartUploads",
}


def bucket_and_key(request: HttpRequest) -> tuple[str, str]:
    parts = urlsplit(request.url)
    host = (request.header("host") or parts.netloc).split(":")[0]
    path = unquote(parts.path)
    virtual = _VIRTUAL_HOST.match(host)
    if virtual:
        return virtual.group("bucket"), path.lstrip("/")
    bucket, _, key = path.lstrip("/").partition("/")
    return bucket, key


def _s3(request: HttpRequest, form: Mapping[str, str] | None) -> list[AccessRequest]:
    bucket, key = bucket_and_key(request)
    if not bucket:
        return [AccessRequest("s3:ListAllMyBuckets", "*")]
    query = request.query
    method = request.method.upper()
    if not key:
        if method == "POST" and "delete" in query:
            return [AccessRequest("s3:DeleteObject", f"{bucket_arn(bucket)}/{k}") for k in _deleted_keys(request.body)]
        if method == "POST" and form is not None:  # a presigned POST form upload
            key = form.get("key", "").replace("${filename}", form.get("filename", ""))
            return [AccessRequest("s3:PutObject", f"{bucket_arn(bucket)}/{key}")]
        if method in ("GET", "HEAD"):
            sub = next((_BUCKET_SUBRESOURCES[name] for name in query if name in _BUCKET_SUBRESOURCES), None)
            return [AccessRequest(f"s3:{sub or 'ListBucket'}", bucket_arn(bucket))]
        raise Unreadable(f"S3 {method} on bucket {bucket} with {sorted(query)}")
    resource = f"{bucket_arn(bucket)}/{key}"
    if method in ("GET", "HEAD"):
        if "uploadId" in query:
            return [AccessRequest("s3:ListMultipartUploadParts", resource)]
        suffix = "Tagging" if "tagging" in query else "Acl" if "acl" in query else ""
        version = "Version" if "versionId" in query else ""
        return [AccessRequest(f"s3:GetObject{version}{suffix}", resource)]
    if method in ("PUT", "POST"):
        if "tagging" in query:
            return [AccessRequest("s3:PutObjectTagging", resource)]
        requests = [AccessRequest("s3:PutObject", resource)]
        source = request.header("x-amz-copy-source")
        if source:  # a copy also reads its source
            source_bucket, _, source_key = unquote(source).lstrip("/").partition("/")
            requests.append(AccessRequest("s3:GetObject", f"{bucket_arn(source_bucket)}/{source_key.split('?')[0]}"))
        return requests
    if method == "DELETE":
        action = "s3:AbortMultipartUpload" if "uploadId" in query else "s3:DeleteObject"
        return [AccessRequest(action, resource)]
    raise Unreadable(f"S3 {method} on {resource}")


def _deleted_keys(body: bytes) -> Iterable[str]:
    try:
        root = ElementTree.fromstring(body)  # noqa: S314 - our own clients' DeleteObjects bodies
    except ElementTree.ParseError as exc:
        raise Unreadable(f"a DeleteObjects body that is not XML: {exc}") from None
    return [element.text or "" for element in root.iter() if element.tag.endswith("Key")]


# --- Step Functions, SES, Lambda -----------------------------------------------------------------


def _states(operation: str, body: Mapping[str, Any]) -> list[AccessRequest]:
    for field in ("executionArn", "stateMachineArn", "activityArn"):
        if field in body:
            return [AccessRequest(f"states:{operation}", str(body[field]))]
    return [AccessRequest(f"states:{operation}", "*")]


def _ses(request: HttpRequest) -> list[AccessRequest]:
    params = request.form()
    action = params.get("Action")
    if not action:
        raise Unreadable("an SES request without an Action (SES v2 is not read locally)")
    source = params.get("Source") or params.get("FromArn")
    if action in ("SendEmail", "SendRawEmail", "SendTemplatedEmail") and source:
        address = parseaddr(source)[1] or source
        return [AccessRequest(f"ses:{action}", f"arn:aws:ses:{REGION}:{ACCOUNT_ID}:identity/{address}")]
    return [AccessRequest(f"ses:{action}", "*")]


_LAMBDA_PATH = re.compile(r"^/[\d-]+/functions/(?P<name>[^/]+)(?P<rest>/.*)?$")


def _lambda(request: HttpRequest) -> list[AccessRequest]:
    match = _LAMBDA_PATH.match(unquote(urlsplit(request.url).path))
    if not match:
        raise Unreadable(f"Lambda {request.method} {urlsplit(request.url).path}")
    name = match.group("name")
    arn = name if name.startswith("arn:") else function_arn(name)
    if (match.group("rest") or "").startswith("/invocations"):
        return [AccessRequest("lambda:InvokeFunction", arn)]
    raise Unreadable(f"Lambda {request.method} {match.group(0)} (only Invoke is read locally)")
