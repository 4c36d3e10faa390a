"""dal/items.py never lets a raw decimal error out of a write.

DynamoDB numbers hold 38 significant digits, magnitudes 1E-130 to 9.99...E+125, and no NaN or
Infinity. The models bound every number a client sends so that none of this is reached; should one
still arrive (a bug), the write is refused with a typed 422 naming the attribute, never a 500 from
the decimal module (1e-300 minutes was `decimal.Underflow`, a 40-digit integer `decimal.Inexact`).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from batchops.api.errors import status_of
from batchops.dal.items import deserialize, serialize
from batchops.errors import UnstorableValueError


@pytest.mark.parametrize(
    "value",
    [1e-300, 10**40, -(10**39), Decimal("1E-131"), Decimal("1E+126"), float("nan"), float("inf"), [1, {"x": 1e-200}]],
)
def test_a_number_dynamodb_cannot_hold_is_a_typed_422_naming_the_attribute(value: Any) -> None:
    with pytest.raises(UnstorableValueError) as caught:
        serialize({"pk": "WS#a", "timeout_minutes": value})
    assert "timeout_minutes" in caught.value.message
    assert status_of(caught.value) == 422


@pytest.mark.parametrize(
    "value",
    [
        1 / 60,
        0.1,
        2**63 - 1,
        10**37,
        -(10**37),
        Decimal("1E-130"),
        Decimal("9.9999999999999999999999999999999999999E+125"),
    ],
)
def test_every_number_it_can_hold_round_trips(value: Any) -> None:
    stored = deserialize(serialize({"n": value}))["n"]
    assert Decimal(str(stored)) == Decimal(str(value))
