"""BatchJobQueue consumer - runs medium/low priority batch jobs."""

from batchops.api.workers import batch_job_worker_handler

lambda_handler = batch_job_worker_handler(expedited=False)
