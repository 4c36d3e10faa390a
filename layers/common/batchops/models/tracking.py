"""Tracked events (seed 004): what one event must carry. Other top-level fields are allowed
and kept as sent."""

from __future__ import annotations

from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

MAX_EVENT_BYTES = 64 * 1024  # one event, serialized
MAX_MESSAGE_ID_CHARS = 100


class TrackedEvent(BaseModel):
    model_config = ConfigDict(extra="allow")

    event: str = Field(min_length=1, description="The name/type of the event")
    properties: dict[str, Any] = Field(description="Event-specific key/value pairs")
    timestamp: AwareDatetime = Field(description="When the event occurred (RFC 3339, with an offset or Z)")
    messageId: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_MESSAGE_ID_CHARS,
        description="Unique id for de-duplication; generated (UUID) when absent",
    )
