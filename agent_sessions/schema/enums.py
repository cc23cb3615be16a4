"""Enums; their values are the stored spellings, so stored strings serialize as they are."""

from enum import Enum

import strawberry


@strawberry.enum(description="Who wrote a message.")
class Role(Enum):
    USER = strawberry.enum_value("user", description="The user's input.")
    ASSISTANT = strawberry.enum_value(
        "assistant", description="The model's response, which may call tools."
    )
    TOOL = strawberry.enum_value("tool", description="A tool's result, answering a tool call.")
    SYSTEM = strawberry.enum_value("system", description="A system prompt.")


@strawberry.enum(name="RunStatus", description="Where a run is.")
class RunStatusEnum(Enum):
    QUEUED = strawberry.enum_value("QUEUED", description="Accepted, not started yet.")
    RUNNING = strawberry.enum_value(
        "RUNNING", description="The agent is working; the user's message is already stored."
    )
    COMPLETED = strawberry.enum_value("COMPLETED", description="Finished with an answer.")
    FAILED = strawberry.enum_value("FAILED", description="The backend failed: error says why.")
    CANCELLED = strawberry.enum_value("CANCELLED", description="Stopped before it finished.")
