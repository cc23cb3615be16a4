"""The documented JSON shapes of the REST shim, as pydantic models.

They are the OpenAPI document's schemas (``rest.openapi``); the shim builds plain dicts
of exactly these shapes, and the tests check responses against the document.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, create_model, model_validator

from agent_sessions.agents.runs import MAX_MESSAGE_CHARS
from agent_sessions.resolvers.fields import CHUNK, RecordField
from agent_sessions.resolvers.validation import CLIENT_ID_PATTERN, NAME_PATTERN, NON_BLANK_PATTERN
from agent_sessions.storage.model import RunStatus


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


def _shape_type(f: RecordField) -> Any:
    return f.type | None if f.optional else f.type


# A chunk as REST shows it: its record's keys and types (``storage.model.ChunkRecord``),
# every key always present.
Chunk = create_model(
    "Chunk", __base__=_Shape, __module__=__name__, **{f.key: (_shape_type(f), ...) for f in CHUNK}
)


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


INT32_MAX = 2**31 - 1


def _integral(value: Any) -> Any:
    # JSON Schema's integer includes 2.0; strict validation would not.
    return int(value) if isinstance(value, float) and value.is_integer() else value


TokenCount = Annotated[int, Field(ge=0, le=INT32_MAX), BeforeValidator(_integral)]
SessionId = Annotated[str, Field(pattern=CLIENT_ID_PATTERN)]
UserId = Annotated[str, Field(pattern=NAME_PATTERN)]


def _one_spelling(*pairs: tuple[str, str]) -> dict[str, Any]:
    """JSON Schema: at most one spelling of each pair."""
    return {"not": {"anyOf": [{"required": list(pair)} for pair in pairs]}}


def _at_most_one(data: Any, *pairs: tuple[str, str]) -> Any:
    if isinstance(data, dict):
        for camel, snake in pairs:
            if camel in data and snake in data:
                raise ValueError(f"give {camel} or {snake}, not both")
    return data


class ReasoningRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra=_one_spelling(("budgetTokens", "budget_tokens")),
    )

    @model_validator(mode="before")
    @classmethod
    def one_spelling(cls, data: Any) -> Any:
        return _at_most_one(data, ("budgetTokens", "budget_tokens"))

    enabled: bool | None = True
    effort: str | None = None
    budgetTokens: TokenCount | None = None
    budget_tokens: TokenCount | None = Field(default=None, description="Same as budgetTokens.")


class AgentRunRequest(BaseModel):
    """The body of ``POST /api/agents/{agentId}/runs``; unknown keys are ignored."""

    model_config = ConfigDict(
        extra="allow",
        strict=True,
        json_schema_extra=_one_spelling(("sessionId", "session_id"), ("userId", "user_id")),
    )

    @model_validator(mode="before")
    @classmethod
    def one_spelling(cls, data: Any) -> Any:
        return _at_most_one(data, ("sessionId", "session_id"), ("userId", "user_id"))

    message: str = Field(
        max_length=MAX_MESSAGE_CHARS,
        pattern=NON_BLANK_PATTERN,
        description="The user's new message: a string with at least one non-blank character.",
    )
    sessionId: SessionId | None = Field(
        default=None, description="Continue this session (or session_id)."
    )
    session_id: SessionId | None = None
    userId: UserId | None = Field(default=None, description="Administrators only (or user_id).")
    user_id: UserId | None = None
    reasoning: ReasoningRequest | None = None
    stream: bool | None = Field(
        default=None,
        description=(
            "true: answer with the run's server-sent events (as Accept: text/event-stream "
            "does); false: the JSON answer whatever Accept says."
        ),
    )

    def variables(self, agent_id: str) -> dict[str, Any]:
        """The runAgent operation's variables."""
        reasoning = None
        if self.reasoning is not None:
            r = self.reasoning
            budget = r.budgetTokens if r.budgetTokens is not None else r.budget_tokens
            reasoning = {"enabled": r.enabled, "effort": r.effort, "budgetTokens": budget}
        return {
            "agentId": agent_id,
            "message": self.message,
            "sessionId": self.sessionId if self.sessionId is not None else self.session_id,
            "userId": self.userId if self.userId is not None else self.user_id,
            "reasoning": reasoning,
        }


class AgentRunResponse(_Shape):
    runId: str
    sessionId: str
    content: str | None
    status: RunStatus


# --- run events (the data of each server-sent event) ------------------------------------


class StartEvent(_Shape):
    run_id: str
    session_id: str = Field(description="Pass it back to continue the conversation.")
    agent_id: str | None
    created_at: str = Field(description="RFC 3339, UTC")


class RetrievalEvent(_Shape):
    retrieved_context: list[Chunk] = Field(description="The chunks retrieved, by rank.")
    retrieval_diagnostics: dict[str, Any] | None


class DeltaEvent(_Shape):
    content: str = Field(description="More of the answer; the deltas concatenate to it.")


class ToolCallEvent(_Shape):
    id: str
    name: str
    arguments: str | None = Field(description="The raw JSON string the model produced.")


class ToolResultEvent(_Shape):
    tool_call_id: str | None
    name: str | None
    content: str | None


class EventUsage(_Shape):
    input_tokens: int | None
    output_tokens: int | None
    reasoning_tokens: int | None
    total_tokens: int | None


class EndEvent(_Shape):
    run_id: str
    session_id: str
    status: Literal["COMPLETED", "CANCELLED"]
    content: str | None = Field(description="The answer (so far, when CANCELLED).")
    usage: EventUsage | None


class ErrorEvent(_Shape):
    error: str = Field(description="Why the run failed; the run is stored FAILED.")
    run_id: str
    session_id: str


RUN_EVENTS = {
    "start": StartEvent,
    "retrieval": RetrievalEvent,
    "delta": DeltaEvent,
    "tool_call": ToolCallEvent,
    "tool_result": ToolResultEvent,
    "end": EndEvent,
    "error": ErrorEvent,
}
