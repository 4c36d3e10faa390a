"""pydantic models: requests, responses, entities, queue messages."""
