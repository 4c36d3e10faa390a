"""Use cases: plain functions, no HTTP or Lambda event types."""
