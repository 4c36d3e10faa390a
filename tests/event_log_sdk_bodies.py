"""Event-log bodies exactly as the platform's Java SDK (srinathv31/logging-architecture,
`java-sdk/eventlog-sdk`) serializes them: its model classes compiled and written by its
ObjectMapper (compact, NON_NULL, its field order; `identifiers` and `metadata` always present).
Kept as the bytes that go on the wire, not as dicts, so nothing reorders or reformats them."""

from __future__ import annotations

# EventLogClient.createEvent(entry) with only the builder's required fields (spanId and
# eventTimestamp fixed so the body is deterministic; the builder fills them otherwise).
MINIMAL = (
    '{"correlationId":"4bf92f3577b34da6a3ce929d0e0e4736","traceId":"0af7651916cd43dd8448eb211c80319c","sp'
    'anId":"00f067aa0ba902b7","applicationId":"hr-portal","targetSystem":"workday","originatingSystem":"h'
    'r-portal","processName":"EMPLOYEE_ONBOARDING","eventType":"PROCESS_START","eventStatus":"IN_PROGRESS'
    '","identifiers":{},"summary":"Started onboarding for employee E-1001","result":"STARTED","metadata":'
    '{},"eventTimestamp":"2026-03-01T10:00:00.123456Z"}'
)

# Every field set.
ALL_FIELDS = (
    '{"correlationId":"4bf92f3577b34da6a3ce929d0e0e4736","accountId":"ACCT-000123","traceId":"0af7651916c'
    'd43dd8448eb211c80319c","spanId":"00f067aa0ba902b7","parentSpanId":"b7ad6b7169203331","spanLinks":["a'
    '3ce929d0e0e4736"],"batchId":"batch-hr-upload-20260301","applicationId":"hr-portal","targetSystem":"w'
    'orkday","originatingSystem":"hr-portal","processName":"EMPLOYEE_ONBOARDING","stepSequence":2,"stepNa'
    'me":"CREATE_WORKER","eventType":"STEP","eventStatus":"FAILURE","identifiers":{"employeeId":"E-1001"}'
    ',"summary":"Create worker E-1001 in Workday - rejected","result":"REJECTED","metadata":{"source":"cs'
    'v","row":4},"eventTimestamp":"2026-03-01T10:00:01.500Z","executionTimeMs":350,"endpoint":"/api/worke'
    'rs","httpMethod":"POST","httpStatusCode":422,"errorCode":"WD_VALIDATION","errorMessage":"Missing hir'
    'e date","requestPayload":"{\\"id\\":\\"E-1001\\"}","responsePayload":"{\\"error\\":\\"hireDate required\\"}"'
    ',"idempotencyKey":"E-1001-step-2"}'
)

# EventLogClient.createEvents(List.of(minimal, allFields)): `{"events": [...]}`, never a top-level batchId.
BATCH = '{"events":[' + MINIMAL + "," + ALL_FIELDS + "]}"

# The keys of a stored entry, in the order the platform answers them.
RECORD_KEYS = [
    "eventLogId", "executionId", "correlationId", "accountId", "traceId", "spanId", "parentSpanId",
    "spanLinks", "batchId", "applicationId", "targetSystem", "originatingSystem", "processName",
    "stepSequence", "stepName", "eventType", "eventStatus", "identifiers", "summary", "result",
    "metadata", "eventTimestamp", "createdAt", "executionTimeMs", "endpoint", "httpStatusCode",
    "httpMethod", "errorCode", "errorMessage", "requestPayload", "responsePayload", "idempotencyKey",
    "isDeleted",
]  # fmt: skip


def unique(body: str, tag: str) -> str:
    """The same bytes with the all-fields entry's batchId and idempotencyKey made unique by `tag`
    (a shared stack keeps what earlier tests stored); shape, order and every other value stay."""
    return body.replace('"batch-hr-upload-20260301"', f'"batch-hr-upload-{tag}"').replace(
        '"E-1001-step-2"', f'"E-1001-step-2-{tag}"'
    )


# The platform's answers list their keys in this order (GET /v1/events/batch/{batchId} and its summary).
PAGE_KEYS = [
    "batchId",
    "events",
    "totalCount",
    "uniqueCorrelationIds",
    "successCount",
    "failureCount",
    "page",
    "pageSize",
    "hasMore",
]
SUMMARY_KEYS = [
    "batchId",
    "totalProcesses",
    "completed",
    "inProgress",
    "failed",
    "correlationIds",
    "startedAt",
    "lastEventAt",
]
