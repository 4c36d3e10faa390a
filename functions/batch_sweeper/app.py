"""Batch sweeper (EventBridge schedule) - times out batches, repairs stuck jobs."""

from batchops.api.workers import batch_sweeper_handler

lambda_handler = batch_sweeper_handler()
