"""HTTP: resolver factory, one router module per surface, error mapping, auth context."""
