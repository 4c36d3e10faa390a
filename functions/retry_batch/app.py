"""POST /v1/batches/{batch_id}/retry"""

from batchops.api.handler import endpoint_handler

lambda_handler = endpoint_handler(("POST", "/v1/batches/{batch_id}/retry"))
