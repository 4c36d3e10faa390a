"""Run worker: calls job endpoints for queued runs (RunQueue, partial batch failures)."""

from batchops.api.workers import run_worker_handler

lambda_handler = run_worker_handler()
