"""A Python client of agent-sessions: ``Client`` (blocking) and ``AsyncClient`` (asyncio),
typed results, and DataFrames with the ``notebook`` extra."""

from __future__ import annotations

from ._async import AsyncClient, AsyncSessionPager
from ._sync import Client, SessionPager
from .errors import AgentSessionsError
from .events import (
    DeltaEvent,
    EndEvent,
    ErrorEvent,
    RetrievalEvent,
    RunEvent,
    StartEvent,
    ToolCallEvent,
    ToolResultEvent,
    UnknownEvent,
)
from .models import (
    Conversation,
    Dataset,
    Message,
    MessageList,
    ReasoningConfig,
    RetrievedChunk,
    RetrievedContext,
    Run,
    RunList,
    SearchHit,
    Session,
    SessionList,
    TokenUsage,
    ToolCall,
)

__all__ = [
    "AgentSessionsError",
    "AsyncClient",
    "AsyncSessionPager",
    "Client",
    "Conversation",
    "Dataset",
    "DeltaEvent",
    "EndEvent",
    "ErrorEvent",
    "Message",
    "MessageList",
    "ReasoningConfig",
    "RetrievalEvent",
    "RetrievedChunk",
    "RetrievedContext",
    "Run",
    "RunEvent",
    "RunList",
    "SearchHit",
    "Session",
    "SessionList",
    "SessionPager",
    "StartEvent",
    "TokenUsage",
    "ToolCall",
    "ToolCallEvent",
    "ToolResultEvent",
    "UnknownEvent",
]
