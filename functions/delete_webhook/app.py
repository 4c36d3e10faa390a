"""DELETE /v1/webhooks/{webhook_id}"""

from batchops.api.handler import endpoint_handler

lambda_handler = endpoint_handler(("DELETE", "/v1/webhooks/{webhook_id}"))
