"""Enums; their values are the stored spellings, so stored strings serialize as they are."""

from enum import Enum

import strawberry


@strawberry.enum
class Role(Enum):
    USER = "user"
    ASSISTANT = "assistant"
    TOOL = "tool"
    SYSTEM = "system"


@strawberry.enum
class RunStatus(Enum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
