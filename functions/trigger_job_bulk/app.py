"""POST /v1/jobs/{jobID}/trigger-bulk (the seed's path) and /v1/jobs/{jobID}/trigger/bulk (Strait's)"""

from batchops.api.handler import endpoint_handler

lambda_handler = endpoint_handler(("POST", "/v1/jobs/{jobID}/trigger-bulk"), ("POST", "/v1/jobs/{jobID}/trigger/bulk"))
