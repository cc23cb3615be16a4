"""GraphQL input types."""

import dataclasses
from typing import Any

import strawberry
from strawberry import ID, UNSET

from agent_sessions.resolvers.fields import CHUNK

from .enums import Role, RunStatusEnum
from .records import input_type
from .scalars import JSON, DateTime


class _Input:
    """Input fields left out arrive as ``None`` (the SDL shows no default for them)."""

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            if getattr(self, f.name) is UNSET:
                setattr(self, f.name, None)


def given(description: str, default: Any = UNSET) -> Any:
    """An input field with its description; left out, it is ``default``."""
    return strawberry.field(default=default, description=description)


def required(description: str) -> Any:
    return strawberry.field(description=description)


@strawberry.input(
    name="SessionFilter", description="Which sessions to list; the conditions combine."
)
class SessionFilterInput(_Input):
    user_id: str | None = given("Filter sessions to those belonging to a specific user.")
    agent_id: str | None = given("Filter sessions to those involving a specific agent.")
    updated_after: DateTime | None = given("Sessions updated after this instant (exclusive).")
    updated_before: DateTime | None = given("Sessions updated before this instant (exclusive).")
    metadata: JSON | None = given(
        'Sessions whose metadata has these top-level values, such as {"team": "finance"}: '
        "every key must match; a value is a string (up to 256 characters), a number or a "
        "boolean, or a list of them (any matches)."
    )


@strawberry.input(description="A tool call of an assistant message, as in OpenAI's tool_calls.")
class ToolCallInput(_Input):
    id: ID = required("The tool call's id; the tool message answering it names it.")
    name: str = required("The function the model called.")
    arguments: str | None = given("The raw JSON string the model produced.")


@strawberry.input(description="One message a run added.")
class MessageInput(_Input):
    role: Role = required("Who wrote it.")
    content: str | None = given("Its text; may be absent for an assistant that only calls tools.")
    name: str | None = given("Tool messages: the tool's name.")
    tool_calls: list[ToolCallInput] | None = given("Assistant messages: the tools it called.")
    tool_call_id: ID | None = given("Tool messages: the id of the tool call it answers.")
    created_at: DateTime | None = given("When it was written; default: the run's createdAt.")


@strawberry.input(description="How the model is asked to reason on a run.")
class ReasoningInput(_Input):
    enabled: bool | None = given("Whether reasoning is on.", default=True)
    effort: str | None = given(
        "The effort (such as low, medium, high); sent to OpenAI-compatible servers as "
        "reasoning_effort."
    )
    budget_tokens: int | None = given("At most this many reasoning tokens (0 or more).")


@strawberry.input(description="The tokens a run used, as its backend reported them.")
class TokenUsageInput(_Input):
    input_tokens: int | None = given("Tokens of the prompt (0 or more).")
    output_tokens: int | None = given("Tokens of the answer (0 or more).")
    reasoning_tokens: int | None = given("Tokens spent reasoning (0 or more).")
    total_tokens: int | None = given("All tokens of the run (0 or more).")


RetrievedChunkInput = input_type(
    "RetrievedChunkInput",
    CHUNK,
    "A knowledge-base chunk fetched during the run's retrieval.",
    _Input,
)


@strawberry.input(
    description="A finished (or imported) run: its messages in order, and what it "
    "retrieved, reasoned and used."
)
class RecordRunInput(_Input):
    agent_id: str = required("The agent that ran.")
    messages: list[MessageInput] = required(
        "What the run added, in order: the user input, tool calls, tool results, the answer."
    )
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
    status: RunStatusEnum | None = given("The run's status.", default=RunStatusEnum.COMPLETED)
    content: str | None = strawberry.field(
        default=UNSET,
        description="The final answer; default: the last assistant message's content.",
    )
    reasoning: ReasoningInput | None = given("How the model was asked to reason.")
    usage: TokenUsageInput | None = given("The tokens the run used.")
    error: str | None = given("Why the run failed (with status FAILED).")
    retrieval_diagnostics: JSON | None = given(
        "What the retrieval step reported about itself (a JSON object)."
    )
    retrieved_context: list[RetrievedChunkInput] | None = given(
        "The chunks retrieval fetched, in rank order."
    )
    created_at: DateTime | None = strawberry.field(
        default=UNSET, description="For imports; default: now."
    )
    completed_at: DateTime | None = given("When it finished; default: none.")


@strawberry.input(description="A new, empty session.")
class CreateSessionInput(_Input):
    id: ID | None = given("Its id (1-128 of A-Z a-z 0-9 . _ : -); default: a new UUID.")
    user_id: str | None = given("The user it belongs to (administrators only); default: you.")
    agent_id: str | None = given("The agent it is for.")
    title: str | None = given("A title.")
    metadata: JSON | None = given("Anything to keep with it (a JSON object).")
    expires_at: DateTime | None = given(
        "When it expires: from then on it is gone from every read; default: the configured "
        "retention (retention_days) after now, or never."
    )
