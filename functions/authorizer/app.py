"""API key authorizer (Lambda REQUEST authorizer of the REST API)."""

from batchops.api.authorizer import authorizer_handler

lambda_handler = authorizer_handler()
