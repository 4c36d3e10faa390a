"""The naive baseline the billing bench measures every path against: the pipeline of the public
AWS serverless samples (API Gateway -> ingest Lambda -> SQS -> worker Lambda -> DynamoDB), one
SendMessage per item at ingest and one PutItem per record in a Powertools BatchProcessor worker
(event source mapping BatchSize 10), into a table keyed by `pk` alone.

The handlers take their clients from `batchops.dal.clients`, so the bench's counting clients
(`bench.billing.Meter`) see both pipelines through the same hooks.
"""

from __future__ import annotations

TABLE = "NaiveTable"
QUEUE = "NaiveQueue"
BATCH_SIZE = 10
MEMORY_MB = 128  # the samples' SAM default (MemorySize omitted)
