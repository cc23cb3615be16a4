"""What the client returns: pydantic models named as the API names them.

Attributes are the data model's snake_case names (``user_id``, ``retrieved_context``);
each model also reads the GraphQL spelling (``userId``). Timestamps are aware UTC
datetimes. Lists of results have ``to_pandas()`` (``pip install 'agent-sessions[notebook]'``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

if TYPE_CHECKING:
    import pandas as pd

    from .frames import Frames

Role = Literal["user", "assistant", "tool", "system"]
RunStatus = Literal["QUEUED", "RUNNING", "COMPLETED", "FAILED", "CANCELLED"]
# The server answers RFC 3339 UTC; this makes the tzinfo datetime.UTC itself.
UtcDatetime = Annotated[datetime, AfterValidator(lambda t: t.astimezone(UTC))]


class Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, frozen=True, extra="ignore"
    )


class ToolCall(Model):
    id: str
    name: str
    arguments: str | None = None  # the raw JSON string the model produced


class ReasoningConfig(Model):
    enabled: bool = True
    effort: str | None = None
    budget_tokens: int | None = None


class TokenUsage(Model):
    input_tokens: int | None = None
    output_tokens: int | None = None
    reasoning_tokens: int | None = None
    total_tokens: int | None = None


class RetrievedChunk(Model):
    id: str
    text: str
    score: float | None = None
    retrieval_score: float | None = None
    reranker_score: float | None = None
    source_id: str | None = None
    source_name: str | None = None
    knowledge_base_id: str | None = None
    kb_name: str | None = None
    indexing_strategy: str | None = None
    meta: dict[str, Any] | None = None
    included_in_context: bool = True


class ForkedFrom(Model):
    session_id: str
    message_id: str


class Session(Model):
    id: str
    user_id: str
    agent_id: str | None = None
    title: str | None = None
    metadata: dict[str, Any] | None = None
    created_at: UtcDatetime
    updated_at: UtcDatetime
    message_count: int = 0
    run_count: int = 0
    expires_at: UtcDatetime | None = None
    forked_from: ForkedFrom | None = None


class SearchHit(Model):
    """A message that matched a search; ``snippet`` is HTML (escaped, matches in <mark>)."""

    session_id: str
    message_id: str
    run_id: str | None = None
    role: Role
    snippet: str
    score: float
    created_at: UtcDatetime

    @field_validator("role", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value


class Message(Model):
    id: str
    session_id: str  # not a GraphQL field of Message: the client adds it, to join on
    role: Role
    content: str | None = None
    run_id: str | None = None
    created_at: UtcDatetime
    name: str | None = None
    tool_calls: list[ToolCall] = Field(default_factory=list)
    tool_call_id: str | None = None
    retrieved_context: list[RetrievedChunk] = Field(default_factory=list)  # assistant only

    @field_validator("role", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        # GraphQL's enum is USER/ASSISTANT/…; the data model and REST say user/assistant/….
        return value.lower() if isinstance(value, str) else value


class Run(Model):
    id: str
    session_id: str
    agent_id: str | None = None
    status: RunStatus
    input: str | None = None
    content: str | None = None
    error: str | None = None
    reasoning: ReasoningConfig | None = None
    usage: TokenUsage | None = None
    created_at: UtcDatetime
    started_at: UtcDatetime | None = None
    completed_at: UtcDatetime | None = None
    retrieval_diagnostics: dict[str, Any] | None = None
    # None: not asked for (``runs(..., retrieved_context=False)``); [] : the run had none.
    retrieved_context: list[RetrievedChunk] | None = None


class RetrievedContext(Model):
    """A run's retrieved context: its diagnostics (``None`` when it has none) and chunks
    in retrieval rank order."""

    session_id: str
    run_id: str
    retrieval_diagnostics: dict[str, Any] | None = None
    chunks: list[RetrievedChunk] = Field(default_factory=list)

    def to_pandas(self) -> pd.DataFrame:
        from .frames import chunks_frame

        return chunks_frame([(self.session_id, self.run_id, self.chunks)])


class Conversation(Model):
    """A session with every message and every run (with its chunks)."""

    session: Session
    messages: list[Message]
    runs: list[Run]


# --- lists ----------------------------------------------------------------------------------


class SessionList(list[Session]):
    def to_pandas(self) -> pd.DataFrame:
        """One row per session: ``session_id``, ``user_id``, …, UTC datetimes."""
        from .frames import sessions_frame

        return sessions_frame(self)


class MessageList(list[Message]):
    def to_pandas(self) -> pd.DataFrame:
        """One row per message, in order: ``message_id``, ``session_id``, ``position``,
        ``role`` (category), ``run_id``, … (chunks: the runs' ``to_pandas``)."""
        from .frames import messages_frame

        return messages_frame(self)


class RunList(list[Run]):
    def to_pandas(self) -> pd.DataFrame:
        """One row per run, reasoning and usage flattened into columns."""
        from .frames import runs_frame

        return runs_frame(self)

    def chunks_to_pandas(self) -> pd.DataFrame:
        """One row per retrieved chunk of these runs (loaded with ``retrieved_context=True``)."""
        from .frames import chunks_frame

        return chunks_frame((r.session_id, r.id, r.retrieved_context or []) for r in self)


class Dataset(list[Conversation]):
    """Conversations (sessions with their messages, runs and chunks), as ``load`` returns them."""

    @property
    def sessions(self) -> SessionList:
        return SessionList(c.session for c in self)

    @property
    def messages(self) -> MessageList:
        return MessageList(m for c in self for m in c.messages)

    @property
    def runs(self) -> RunList:
        return RunList(r for c in self for r in c.runs)

    def to_pandas(self) -> Frames:
        """Four frames with ids to join them: ``sessions``, ``messages``, ``runs``, ``chunks``."""
        from .frames import Frames, chunks_frame, messages_frame, runs_frame, sessions_frame

        runs = self.runs
        return Frames(
            sessions=sessions_frame(self.sessions),
            messages=messages_frame(self.messages),
            runs=runs_frame(runs),
            chunks=chunks_frame((r.session_id, r.id, r.retrieved_context or []) for r in runs),
        )
