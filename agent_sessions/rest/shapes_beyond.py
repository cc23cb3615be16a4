"""Request and response shapes of the paths beyond the reference documents (``beyond``)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .shapes import _at_most_one, _one_spelling, _Shape

KEY_PATTERN = "^(?![$])[^.\u0000]*$"  # what MongoDB stores as a key (the JSON scalar's rule)


# An RFC 3339 date-time from 1970 on (earlier ones, with an offset, may not be a UTC date).
DATE_TIME = {"format": "date-time", "pattern": "^(19[7-9][0-9]|[2-9][0-9]{3})-"}


class ForkedFrom(_Shape):
    sessionId: str
    messageId: str


class SessionInfo(_Shape):
    """A session's own fields, as ``PATCH`` and ``fork`` answer them."""

    sessionId: str
    userId: str
    agentId: str | None
    title: str | None = Field(description="Given, or taken from the first user message.")
    metadata: dict[str, Any] | None
    createdAt: str = Field(description="RFC 3339, UTC")
    updatedAt: str = Field(description="RFC 3339, UTC")
    expiresAt: str | None = Field(description="RFC 3339, UTC; null: kept until deleted.")
    messageCount: int
    runCount: int
    forkedFrom: ForkedFrom | None


class SessionChange(BaseModel):
    """The body of ``PATCH /api/sessions/{id}``: the keys given change, ``null`` clears."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra=_one_spelling(("expiresAt", "expires_at")) | {"minProperties": 1},
    )

    @model_validator(mode="before")
    @classmethod
    def one_spelling(cls, data: Any) -> Any:
        return _at_most_one(data, ("expiresAt", "expires_at"))

    title: str | None = Field(default=None, min_length=1, max_length=256)
    metadata: dict[str, Any] | None = Field(
        default=None,
        description="Replaces the session's metadata (null: none). Keys may not start "
        "with $ or hold a dot, at any depth.",
        json_schema_extra={"propertyNames": {"pattern": KEY_PATTERN}},
    )
    expiresAt: str | None = Field(
        default=None,
        description="RFC 3339; from then on the session is gone (null: never).",
        json_schema_extra=DATE_TIME,
    )
    expires_at: str | None = Field(
        default=None, description="Same as expiresAt.", json_schema_extra=DATE_TIME
    )

    def variables(self, session_id: str) -> dict[str, Any]:
        given = self.model_fields_set
        out: dict[str, Any] = {"id": session_id}
        if "title" in given:
            out["title"] = self.title
        if "metadata" in given:
            out["metadata"] = self.metadata
        if "expiresAt" in given or "expires_at" in given:
            out["expiresAt"] = self.expiresAt if "expiresAt" in given else self.expires_at
        return out


class ForkRequest(BaseModel):
    """The body of ``POST /api/sessions/{id}/fork``."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra=_one_spelling(("messageId", "message_id"))
        | {"anyOf": [{"required": ["messageId"]}, {"required": ["message_id"]}]},
    )

    @model_validator(mode="before")
    @classmethod
    def one_spelling(cls, data: Any) -> Any:
        data = _at_most_one(data, ("messageId", "message_id"))
        if isinstance(data, dict) and "messageId" not in data and "message_id" not in data:
            raise ValueError("messageId is required: the last message the fork keeps")
        return data

    # Strings (null is not a message id), absent by default: the validator wants one.
    messageId: str = Field(
        default=None,  # type: ignore[assignment]
        min_length=1,
        description="The last message the fork keeps.",
    )
    message_id: str = Field(default=None, min_length=1, description="Same as messageId.")  # type: ignore[assignment]
    title: str | None = Field(
        default=None, min_length=1, max_length=256, description="Default: the original's."
    )

    def at(self) -> str:
        return self.messageId if self.messageId is not None else self.message_id  # type: ignore[return-value]


class SearchHit(_Shape):
    sessionId: str
    messageId: str
    runId: str | None
    role: str = Field(description="user, assistant, tool or system")
    snippet: str = Field(description="HTML: the text around the match, escaped, matches in <mark>.")
    score: float = Field(description="BM25: higher is a better match.")
    createdAt: str = Field(description="RFC 3339, UTC")


class SearchResults(_Shape):
    content: list[SearchHit] = Field(description="Best match first, or newest (order=newest).")
    page: int = Field(description="0-based")
    size: int
    hasNext: bool = Field(description="Whether the next page may have more hits.")
