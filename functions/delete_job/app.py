"""DELETE /v1/jobs/{jobID}"""

from batchops.api.handler import endpoint_handler

lambda_handler = endpoint_handler(("DELETE", "/v1/jobs/{jobID}"))
