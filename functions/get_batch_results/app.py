"""GET /v1/batches/{batch_id}/results"""

from batchops.api.handler import endpoint_handler

lambda_handler = endpoint_handler(("GET", "/v1/batches/{batch_id}/results"))
