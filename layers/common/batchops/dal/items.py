"""Conversion between plain Python values and DynamoDB's typed attribute values."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from decimal import Decimal, DecimalException
from typing import Any

from boto3.dynamodb.types import Binary, TypeDeserializer, TypeSerializer

from batchops.errors import UnstorableValueError
from batchops.observability import logger

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


# DynamoDB's number range. boto3's decimal context traps too many digits and overflow, but lets a
# subnormal such as 1E-131 through, which DynamoDB then refuses (a ValidationException).
_SMALLEST = Decimal("1E-130")
_LARGEST = Decimal("9.9999999999999999999999999999999999999E+125")


def _number(value: Decimal) -> Decimal:
    # copy_abs, not abs(): abs() rounds to the thread's context (28 digits by default).
    if not value.is_finite() or (value and not _SMALLEST <= value.copy_abs() <= _LARGEST):
        raise DecimalException(f"{value:.3E} is outside DynamoDB's numbers")
    return value


def _to_dynamo(value: Any) -> Any:
    # DynamoDB has no float type; Decimal(str(x)) keeps the value a client sent.
    if isinstance(value, float):
        if not math.isfinite(value):
            raise DecimalException("NaN and Infinity cannot be stored")
        return _number(Decimal(str(value)))
    if isinstance(value, Decimal):
        return _number(value)
    if isinstance(value, dict):
        return {k: _to_dynamo(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_to_dynamo(v) for v in value]
    return value


def _from_dynamo(value: Any) -> Any:
    # Numbers come back as Decimal; JSON wants int or float.
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, Binary):
        return value.__bytes__()
    if isinstance(value, dict):
        return {k: _from_dynamo(v) for k, v in value.items()}
    if isinstance(value, list | set):
        return [_from_dynamo(v) for v in value]
    return value


def serialize(item: dict[str, Any]) -> dict[str, Any]:
    """DynamoDB's typed form of `item`. A number DynamoDB cannot hold (boto3 checks 38 digits and
    1E-130..9.99E+125 with the decimal module's traps) raises UnstorableValueError, a 422, instead
    of a raw decimal error, a 500."""
    typed: dict[str, Any] = {}
    for name, value in item.items():
        if value is None:
            continue
        try:
            typed[name] = _serializer.serialize(_to_dynamo(value))
        except DecimalException as error:
            # The models should have refused it: logged as the bug it is.
            logger().error("Unstorable number reached a write", extra={"attribute": name, "error": repr(error)})
            raise UnstorableValueError(
                f"A number in {name} cannot be stored: at most 38 significant digits, magnitude 1E-130 to"
                " 9.99E+125, and no NaN or Infinity",
                details=[{"field": name, "error": "number outside what DynamoDB can store"}],
            ) from None
        except TypeError as error:
            if "Infinity and NaN" not in str(error):
                raise  # another type boto3 cannot store is a bug in our code, not the client's
            raise UnstorableValueError(
                f"A number in {name} cannot be stored: NaN and Infinity are not numbers DynamoDB holds",
                details=[{"field": name, "error": "NaN or Infinity"}],
            ) from None
    return typed


def deserialize(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _from_dynamo(_deserializer.deserialize(v)) for k, v in item.items()}


def iso(value: datetime) -> str:
    """Fixed-width UTC timestamp, so stored timestamps compare correctly as strings."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
