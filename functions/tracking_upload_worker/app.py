"""Tracking upload worker: ingests bulk-track bodies uploaded to S3 (TrackingUploadQueue, S3 notifications)."""

from batchops.api.workers import tracking_upload_worker_handler

lambda_handler = tracking_upload_worker_handler()
