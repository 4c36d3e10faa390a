"""The installed distribution's version (one source of truth: client/pyproject.toml)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("batchops-client")
except PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0+unknown"
