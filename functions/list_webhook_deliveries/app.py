"""GET /v1/webhooks/{webhook_id}/deliveries"""

from batchops.api.handler import endpoint_handler

lambda_handler = endpoint_handler(("GET", "/v1/webhooks/{webhook_id}/deliveries"))
