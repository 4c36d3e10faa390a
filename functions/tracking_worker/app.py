"""Tracking worker: stores packed tracked events (TrackingQueue, partial batch failures)."""

from batchops.api.workers import tracking_worker_handler

lambda_handler = tracking_worker_handler()
