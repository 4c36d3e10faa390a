"""The base of every batchops model."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Model(BaseModel):
    """A pydantic model whose validator and serializer are built on first use, not at import
    (`defer_build`): a function builds only the models its own path touches. Building all of a
    surface's models at import was most of the ~65 ms pydantic spent in an HTTP function's cold
    start (cProfile of GetBatchFunction from the built layer: 70 ModelMetaclass.__new__ calls)."""

    model_config = ConfigDict(defer_build=True)
