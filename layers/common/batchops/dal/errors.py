"""The AWS errors the rest of batchops may need to recognise, without importing botocore itself.

Only dal imports boto3 and botocore (an import-linter contract); api/errors.py maps what escapes a
route through here: any AWS error is 503 STORAGE_ERROR with a generic message, the real one logged.
"""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError

# ClientError: AWS answered with an error (throttling, access denied, a refused request);
# BotoCoreError: no usable answer (endpoint unreachable, read timeout, retries exhausted).
AWS_ERRORS: tuple[type[Exception], ...] = (ClientError, BotoCoreError)

# Codes AWS uses for "too many requests, slow down" (DynamoDB, SQS, S3, Step Functions, SES, STS):
# expected under load, so they are logged as warnings; any other AWS error is a fault to look at.
THROTTLING_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "Throttling",
        "ThrottledException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "RequestThrottledException",
        "AWS.SimpleQueueService.RequestThrottled",
        "TooManyRequestsException",
        "SlowDown",
    }
)
# How far down an exception's `__cause__` chain to look (Powertools wraps AWS errors once).
_MAX_CAUSES = 5


def aws_error_in(error: BaseException) -> Exception | None:
    """The AWS error `error` is, or was raised from (`raise ... from aws_error`, as Powertools'
    idempotency layer does); None when AWS is not involved."""
    current: BaseException | None = error
    for _ in range(_MAX_CAUSES):
        if current is None:
            return None
        if isinstance(current, AWS_ERRORS):
            return current
        current = current.__cause__
    return None


def error_code(error: Exception) -> str:
    """AWS's error code (`ProvisionedThroughputExceededException`), or the botocore class name."""
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code") or "Unknown")
    return type(error).__name__


def is_throttling(error: Exception) -> bool:
    return error_code(error) in THROTTLING_CODES
