"""Transaction step: one operation of a fail-fast batch, run as a Step Functions task."""

from batchops.api.workers import transaction_step_handler

lambda_handler = transaction_step_handler()
