"""(being written)"""

from __future__ import annotations

from batchops_client._resource import D, Resource


class Operations(Resource[D]):
    pass
