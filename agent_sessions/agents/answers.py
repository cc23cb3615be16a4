"""What agents answer: the reply models, the events a backend call yields, and the error
raised when there is no answer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class AgentBackendError(Exception):
    """The backend did not produce an answer; the message says why."""


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ReplyToolCall(_Lenient):
    id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    arguments: str | None = None


class ReplyMessage(_Lenient):
    role: Literal["assistant", "tool", "system"]
    content: str | None = None
    name: str | None = None
    tool_calls: list[ReplyToolCall] | None = None
    tool_call_id: str | None = None


# What the API can serve back: GraphQL's Int is 32 bits, and JSON has no NaN or infinity.
Score = Annotated[float, Field(allow_inf_nan=False)]
Tokens = Annotated[int, Field(ge=0, le=2**31 - 1)]


class ReplyChunk(_Lenient):
    id: str = Field(min_length=1)
    text: str
    score: Score | None = None
    retrieval_score: Score | None = None
    reranker_score: Score | None = None
    source_id: str | None = None
    source_name: str | None = None
    knowledge_base_id: str | None = None
    kb_name: str | None = None
    indexing_strategy: str | None = None
    meta: dict[str, Any] = Field(default_factory=dict)
    included_in_context: bool = True


class ReplyUsage(_Lenient):
    input_tokens: Tokens | None = None
    output_tokens: Tokens | None = None
    reasoning_tokens: Tokens | None = None
    total_tokens: Tokens | None = None


class AgentReply(_Lenient):
    """An agent's answer: ``http`` agents send it as is; ``openai`` answers are mapped to it."""

    content: str | None
    messages: list[ReplyMessage] | None = None
    retrieved_context: list[ReplyChunk] | None = None
    retrieval_diagnostics: dict[str, Any] | None = None
    usage: ReplyUsage | None = None


# --- what a backend call yields ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Delta:
    """More text of the answer."""

    content: str


@dataclass(frozen=True, slots=True)
class ToolCalled:
    """The assistant called a tool (the call is complete)."""

    call: ReplyToolCall


@dataclass(frozen=True, slots=True)
class ToolAnswered:
    """A tool's result, as the agent reports it."""

    tool_call_id: str
    name: str | None
    content: str | None


@dataclass(frozen=True, slots=True)
class Retrieved:
    """Chunks the agent retrieved (added to the run's), and its diagnostics."""

    chunks: list[ReplyChunk]
    diagnostics: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class Finished:
    """The last event. ``reply`` is set when the backend answered with one JSON document:
    its messages are then stored as given, instead of the ones the events built."""

    usage: ReplyUsage | None = None
    reply: AgentReply | None = None


BackendEvent = Delta | ToolCalled | ToolAnswered | Retrieved | Finished
