"""BatchUrgentJobQueue consumer - runs urgent/high priority batch jobs."""

from batchops.api.workers import batch_job_worker_handler

lambda_handler = batch_job_worker_handler(expedited=True)
