"""POST /v1/webhooks"""

from batchops.api.handler import endpoint_handler

lambda_handler = endpoint_handler(("POST", "/v1/webhooks"))
