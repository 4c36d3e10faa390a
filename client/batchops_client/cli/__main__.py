"""`python -m batchops_client.cli`."""

from __future__ import annotations

from batchops_client.cli import main

if __name__ == "__main__":
    main()
