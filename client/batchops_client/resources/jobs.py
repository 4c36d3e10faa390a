"""(being written)"""

from __future__ import annotations

from batchops_client._resource import D, Resource


class Jobs(Resource[D]):
    pass


class Runs(Resource[D]):
    pass


class BatchOperations(Resource[D]):
    pass
