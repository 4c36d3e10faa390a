"""GET /v1/events/batch/{batchId}/summary"""

from batchops.api.handler import endpoint_handler

lambda_handler = endpoint_handler(("GET", "/v1/events/batch/{batchId}/summary"))
