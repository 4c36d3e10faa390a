"""What the Lambda runtime gives a handler, shared by the registry and its sandboxes: the context
object, and the JSON marshalling of events and results with Lambda's size limits."""

from __future__ import annotations

import decimal
import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

# Lambda's synchronous invocation limits, as Lambda counts them (the response gets 100 bytes more).
MAX_PAYLOAD_BYTES = 6_291_456
MAX_RESPONSE_BYTES = 6_291_556


class LambdaContext:
    """The attributes and method of the Python runtime's context object that handlers use."""

    def __init__(
        self,
        *,
        function_name: str,
        invoked_function_arn: str,
        memory_limit_in_mb: int,
        deadline: float,
        aws_request_id: str | None = None,
    ) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = invoked_function_arn
        self.memory_limit_in_mb = memory_limit_in_mb
        self.aws_request_id = aws_request_id or str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = f"{datetime.now(UTC):%Y/%m/%d}/[$LATEST]{uuid.uuid4().hex}"
        self.identity: Any = None
        self.client_context: Any = None
        self._deadline = deadline  # time.monotonic() at which the invocation times out

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class _LambdaJSONEncoder(json.JSONEncoder):
    """The Python runtime serialises Decimal (what DynamoDB returns) as a JSON number."""

    def default(self, o: Any) -> Any:
        if isinstance(o, decimal.Decimal):
            return int(o) if o == o.to_integral_value() else float(o)
        return super().default(o)


def to_json(value: Any) -> str:
    return json.dumps(value, cls=_LambdaJSONEncoder)
