"""The base of every response model."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class Model(BaseModel):
    """A typed API answer that keeps every field the API sent, typed or not (`extra="allow"`),
    so a field added to the API reaches callers before the SDK names it.

    Fields are attributes in snake_case (`batch.batch_id`, `entry.correlation_id`); `model["key"]`
    also reads them under the API's own key (`status["progress"]["percentage"]`, as the Batches
    document's Python example does), and `to_dict()` gives the answer back as the API sent it.
    """

    # defer_build: a model's validator is built on its first answer, not at import; building all
    # ~60 at import took most of `batchops --version`'s 0.55 s.
    model_config = ConfigDict(extra="allow", populate_by_name=True, protected_namespaces=(), defer_build=True)

    def __getitem__(self, key: str) -> Any:
        fields = type(self).model_fields
        if key in fields:
            return getattr(self, key)
        for name, info in fields.items():
            if info.alias == key:
                return getattr(self, name)
        extra = self.__pydantic_extra__ or {}
        if key in extra:
            return extra[key]
        raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        try:
            self[str(key)]
        except KeyError:
            return False
        return True

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default

    def to_dict(self) -> dict[str, Any]:
        """The answer as the API sent it: its own keys, only the fields it sent."""
        return self.model_dump(mode="json", by_alias=True, exclude_unset=True)
