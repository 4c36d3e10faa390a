"""(being written)"""

from __future__ import annotations

from batchops_client._resource import D, Resource


class Track(Resource[D]):
    pass
