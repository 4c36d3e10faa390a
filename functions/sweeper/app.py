"""Sweeper (EventBridge schedule): fails operations jobs that can no longer finish."""

from batchops.api.workers import sweeper_handler

lambda_handler = sweeper_handler()
