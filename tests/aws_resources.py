"""Create template.yaml's tables and queues in moto (temporary until the local stack's loader is shared)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
from cfnlint.decode.cfn_yaml import load

ROOT = Path(__file__).resolve().parent.parent


def create_template_resources() -> None:
    template: dict[str, Any] = load(str(ROOT / "template.yaml"))
    dynamodb = boto3.client("dynamodb")
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] == "AWS::DynamoDB::Table":
            props = resource["Properties"]
            kwargs: dict[str, Any] = {
                "TableName": logical_id,
                "AttributeDefinitions": props["AttributeDefinitions"],
                "KeySchema": props["KeySchema"],
                "BillingMode": "PAY_PER_REQUEST",
            }
            if props.get("GlobalSecondaryIndexes"):
                kwargs["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
            dynamodb.create_table(**kwargs)
