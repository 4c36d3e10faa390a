"""Test-wide environment: fake AWS credentials before anything can build a client.

A boto3 client created before moto is active would talk to real AWS, so the
credentials are fake and the region fixed here, at collection time.
"""

from __future__ import annotations

import os

os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_SERVICE_NAME": "batchops",
        "POWERTOOLS_METRICS_NAMESPACE": "Batchops",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        "BATCHOPS_TABLE_NAME": "DomainTable",
        "BATCHOPS_IDEMPOTENCY_TABLE_NAME": "IdempotencyTable",
    }
)
os.environ.pop("AWS_ENDPOINT_URL", None)
os.environ.pop("AWS_PROFILE", None)

# moto's conditional writes are not atomic across threads, and it copies whole tables for every
# TransactWriteItems (see local/batchops_local/moto_dynamodb.py).
from batchops_local.moto_dynamodb import install as install_moto_dynamodb

install_moto_dynamodb()
