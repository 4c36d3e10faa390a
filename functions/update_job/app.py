"""PATCH /v1/jobs/{jobID}"""

from batchops.api.handler import endpoint_handler

lambda_handler = endpoint_handler(("PATCH", "/v1/jobs/{jobID}"))
