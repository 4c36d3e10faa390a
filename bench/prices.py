"""AWS list prices the billing bench multiplies its units by: us-east-1, on-demand, Lambda on arm64.

Taken 2026-12-07. The pricing pages themselves could not be read from this sandbox (only the
`search` tool's stored copies), so these are the published list prices as of the November 2024
DynamoDB on-demand price cut, which a stored third-party copy of the DynamoDB page confirms
(https://airbyte.com/data-engineering-resources/dynamodb-pricing: $0.625/M WRU, $0.125/M RRU).
Free tiers are ignored: a cost per million items is a marginal cost.
"""

from __future__ import annotations

from typing import Final

PRICES_TAKEN: Final = "2026-12-07 (list prices; DynamoDB after the Nov 2024 on-demand price cut)"

# https://aws.amazon.com/dynamodb/pricing/on-demand/
DYNAMODB_PER_WRU: Final[float] = 0.625 / 1_000_000
DYNAMODB_PER_RRU: Final[float] = 0.125 / 1_000_000
# https://aws.amazon.com/sqs/pricing/ (standard queue, per request = per 64 KB chunk)
SQS_PER_REQUEST: Final[float] = 0.40 / 1_000_000
# https://aws.amazon.com/lambda/pricing/ (Arm, first pricing tier)
LAMBDA_PER_GB_SECOND: Final[float] = 0.0000133334
LAMBDA_PER_REQUEST: Final[float] = 0.20 / 1_000_000
# https://aws.amazon.com/api-gateway/pricing/ (REST API, first 333 million requests)
API_GATEWAY_REST_PER_REQUEST: Final[float] = 3.50 / 1_000_000
# https://aws.amazon.com/s3/pricing/ (S3 Standard: PUT, COPY, POST, LIST / GET, SELECT and all other)
S3_PER_PUT: Final[float] = 0.005 / 1000
S3_PER_GET: Final[float] = 0.0004 / 1000
# https://aws.amazon.com/step-functions/pricing/ (Standard workflows, per state transition)
STEP_FUNCTIONS_PER_TRANSITION: Final[float] = 0.025 / 1000
