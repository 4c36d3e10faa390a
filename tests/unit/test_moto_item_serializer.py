"""moto's responses with items placed as they are (local/batchops_local/moto_dynamodb.py): the same
responses as moto's own serializer gives, for any item, binary and nested values included."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws
from moto.core.serialize import BaseJSONSerializer

from batchops_local.moto_dynamodb import install

names = st.text(alphabet="abcxyz_", min_size=1, max_size=4)
scalars = st.one_of(
    st.builds(lambda s: {"S": s}, st.text(max_size=5)),
    st.builds(lambda n: {"N": str(n)}, st.integers(-1000, 1000)),
    st.builds(lambda b: {"B": b}, st.binary(min_size=1, max_size=4)),
    st.builds(lambda b: {"BOOL": b}, st.booleans()),
    st.just({"NULL": True}),
    st.builds(lambda s: {"SS": sorted(s)}, st.sets(st.text(min_size=1, max_size=3), min_size=1, max_size=3)),
    st.builds(lambda s: {"NS": sorted(str(n) for n in s)}, st.sets(st.integers(0, 99), min_size=1, max_size=3)),
    st.builds(lambda s: {"BS": sorted(s)}, st.sets(st.binary(min_size=1, max_size=3), min_size=1, max_size=2)),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.builds(lambda v: {"L": v}, st.lists(inner, max_size=3)),
        st.builds(lambda v: {"M": v}, st.dictionaries(names, inner, max_size=3)),
    ),
    max_leaves=6,
)
items = st.dictionaries(names, values, max_size=5)


@contextmanager
def moto_serializing_every_value() -> Iterator[None]:
    patched = BaseJSONSerializer._serialize
    BaseJSONSerializer._serialize = patched.__wrapped__  # type: ignore[attr-defined,method-assign]
    try:
        yield
    finally:
        BaseJSONSerializer._serialize = patched  # type: ignore[method-assign]


def responses(client: Any) -> list[Any]:
    key = {"pk": {"S": "p"}, "sk": {"S": "s"}}
    return [
        client.get_item(TableName="T", Key=key)["Item"],
        client.query(TableName="T", KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "p"}})[
            "Items"
        ],
        client.scan(TableName="T")["Items"],
    ]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(attributes=items)
def test_items_come_back_as_moto_serializes_them(attributes):
    install()
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName="T",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        item = {**attributes, "pk": {"S": "p"}, "sk": {"S": "s"}}
        client.put_item(TableName="T", Item=item)
        found = responses(client)
        with moto_serializing_every_value():
            expected = responses(client)
        assert found == expected
        assert found[0] == item
