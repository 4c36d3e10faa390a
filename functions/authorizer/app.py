"""API key authorizer (Lambda REQUEST authorizer of the REST API)."""

from batchops.api.handler import authorizer_handler

lambda_handler = authorizer_handler()
