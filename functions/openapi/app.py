"""GET /openapi.json, GET /docs"""

from batchops.api.handler import endpoint_handler

lambda_handler = endpoint_handler(("GET", "/openapi.json"), ("GET", "/docs"))
