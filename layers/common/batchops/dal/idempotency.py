"""The Powertools idempotency store, on our lazily created DynamoDB client."""

from __future__ import annotations

from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

from batchops.dal import clients


def persistence_layer(table: str) -> DynamoDBPersistenceLayer:
    return DynamoDBPersistenceLayer(table_name=table, boto3_client=clients.dynamodb())
