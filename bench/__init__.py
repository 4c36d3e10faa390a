"""Benchmarks: AWS requests per item (counted, deterministic), CPU per item, cold-start import time."""
