"""GET /v1/batch/limits"""

from batchops.api.handler import endpoint_handler

lambda_handler = endpoint_handler(("GET", "/v1/batch/limits"))
