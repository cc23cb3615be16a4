"""GraphQL input types."""

import dataclasses

import strawberry
from strawberry import ID, UNSET

from .enums import Role, RunStatus
from .scalars import JSON, DateTime


class _Input:
    """Input fields left out arrive as ``None`` (the SDL shows no default for them)."""

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            if getattr(self, f.name) is UNSET:
                setattr(self, f.name, None)


@strawberry.input
class SessionFilter(_Input):
    user_id: str | None = UNSET
    agent_id: str | None = UNSET
    updated_after: DateTime | None = strawberry.field(default=UNSET, description="Exclusive bound.")
    updated_before: DateTime | None = strawberry.field(
        default=UNSET, description="Exclusive bound."
    )


@strawberry.input
class ToolCallInput(_Input):
    id: ID
    name: str
    arguments: str | None = UNSET


@strawberry.input
class MessageInput(_Input):
    role: Role
    content: str | None = UNSET
    name: str | None = UNSET
    tool_calls: list[ToolCallInput] | None = UNSET
    tool_call_id: ID | None = UNSET
    created_at: DateTime | None = UNSET


@strawberry.input
class ReasoningInput(_Input):
    enabled: bool | None = True
    effort: str | None = UNSET
    budget_tokens: int | None = UNSET


@strawberry.input
class TokenUsageInput(_Input):
    input_tokens: int | None = UNSET
    output_tokens: int | None = UNSET
    reasoning_tokens: int | None = UNSET
    total_tokens: int | None = UNSET


@strawberry.input
class RetrievedChunkInput(_Input):
    id: ID
    text: str
    score: float | None = UNSET
    retrieval_score: float | None = UNSET
    reranker_score: float | None = UNSET
    source_id: ID | None = UNSET
    source_name: str | None = UNSET
    knowledge_base_id: ID | None = UNSET
    kb_name: str | None = UNSET
    indexing_strategy: str | None = UNSET
    meta: JSON | None = UNSET
    included_in_context: bool | None = True


@strawberry.input
class RecordRunInput(_Input):
    agent_id: str
    messages: list[MessageInput]
    session_id: ID | None = strawberry.field(
        default=UNSET, description="Absent: a new session is created."
    )
    run_id: ID | None = strawberry.field(
        default=UNSET,
        description=(
            "Absent: generated. Already in the session: the stored run is returned, "
            "nothing changes."
        ),
    )
    user_id: str | None = strawberry.field(
        default=UNSET, description="Administrators only; default: the caller."
    )
    status: RunStatus | None = RunStatus.COMPLETED
    content: str | None = strawberry.field(
        default=UNSET,
        description="The final answer; default: the last assistant message's content.",
    )
    reasoning: ReasoningInput | None = UNSET
    usage: TokenUsageInput | None = UNSET
    error: str | None = UNSET
    retrieval_diagnostics: JSON | None = UNSET
    retrieved_context: list[RetrievedChunkInput] | None = UNSET
    created_at: DateTime | None = strawberry.field(
        default=UNSET, description="For imports; default: now."
    )
    completed_at: DateTime | None = UNSET


@strawberry.input
class CreateSessionInput(_Input):
    id: ID | None = UNSET
    user_id: str | None = UNSET
    agent_id: str | None = UNSET
    title: str | None = UNSET
    metadata: JSON | None = UNSET
