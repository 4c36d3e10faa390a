"""Async batch worker: runs queued operations jobs (SQS, partial batch failures)."""

from batchops.api.workers import async_worker_handler

lambda_handler = async_worker_handler()
