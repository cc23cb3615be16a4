"""The documented JSON shapes of the REST shim, as pydantic models.

They are the OpenAPI document's schemas (``rest.openapi``); the shim builds plain dicts
of exactly these shapes, and the tests check responses against the document.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Shape(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Error(_Shape):
    error: str = Field(description="What went wrong, for a human.")


class AgentError(Error):
    runId: str = Field(description="The FAILED run, stored with the user's message.")
    sessionId: str


class SessionSummary(_Shape):
    sessionId: str
    userId: str
    agentId: str | None
    createdAt: str = Field(description="RFC 3339, UTC")
    updatedAt: str = Field(description="RFC 3339, UTC")


class SessionList(_Shape):
    content: list[SessionSummary] = Field(description="Newest updatedAt first.")
    totalElements: int
    totalPages: int
    page: int = Field(description="0-based")
    size: int


class FunctionCall(_Shape):
    name: str
    arguments: str | None = Field(description="The raw JSON string the model produced.")


class ToolCall(_Shape):
    id: str
    type: Literal["function"]
    function: FunctionCall


class HistoryMessage(_Shape):
    role: Literal["user", "assistant", "tool", "system"]
    content: str | None
    tool_calls: list[ToolCall] | None = Field(
        default=None, description="Assistant messages that called tools."
    )
    tool_call_id: str | None = Field(default=None, description="Tool messages.")
    name: str | None = Field(default=None, description="Tool messages.")


class SessionDetail(_Shape):
    sessionId: str
    userId: str
    agentId: str | None
    messages: list[HistoryMessage] = Field(description="The stored history, in order.")
    createdAt: str
    updatedAt: str


class Chunk(_Shape):
    id: str
    text: str
    score: float | None
    retrieval_score: float | None
    reranker_score: float | None
    source_id: str | None
    source_name: str | None
    knowledge_base_id: str | None
    kb_name: str | None
    indexing_strategy: str | None
    meta: dict[str, Any] | None
    included_in_context: bool


class ChatMessage(_Shape):
    id: str
    role: Literal["user", "assistant", "tool", "system"]
    content: str | None
    run_id: str | None
    created_at: str
    tool_calls: list[ToolCall] | None = Field(
        default=None, description="Assistant messages that called tools."
    )
    retrieved_context: list[Chunk] | None = Field(
        default=None,
        description="Assistant messages: the chunks their run retrieved, in rank order.",
    )
    tool_call_id: str | None = Field(default=None, description="Tool messages.")
    name: str | None = Field(default=None, description="Tool messages.")


class Reasoning(_Shape):
    enabled: bool
    effort: str | None
    budgetTokens: int | None


class Usage(_Shape):
    inputTokens: int | None
    outputTokens: int | None
    reasoningTokens: int | None
    totalTokens: int | None


RunStatus = Literal["QUEUED", "RUNNING", "COMPLETED", "FAILED", "CANCELLED"]


class RunSummary(_Shape):
    runId: str
    sessionId: str
    agentId: str | None
    status: RunStatus
    content: str | None
    createdAt: str
    completedAt: str | None
    reasoning: Reasoning | None
    usage: Usage | None
    error: str | None


class Diagnostics(BaseModel):
    """The run's retrieval diagnostics, as recorded, marked with ``_type``."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)
    type_: Literal["retrieval_diagnostics"] = Field(alias="_type")


class RetrievedContext(_Shape):
    session_id: str
    run_id: str
    retrieved_context: list[Diagnostics | Chunk] = Field(
        description="The diagnostics entry first when the run has one, then the chunks by rank."
    )
