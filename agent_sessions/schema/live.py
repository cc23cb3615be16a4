"""Live runs in GraphQL: the ``runEvents`` subscription and its event type."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from enum import Enum

import strawberry
from strawberry import ID, Info

from agent_sessions.agents.events import RunEvent as StoredRunEvent
from agent_sessions.resolvers import agents

from .enums import RunStatus
from .scalars import JSON


@strawberry.enum(description="What happened in a run; the server-sent event names, upper-cased.")
class RunEventType(Enum):
    START = "start"
    RETRIEVAL = "retrieval"
    DELTA = "delta"
    TOOL_CALL = "tool_call"
    TOOL_RESULT = "tool_result"
    END = "end"
    ERROR = "error"


@strawberry.type(description="One event of a run, as its server-sent event stream carries it.")
class RunEvent:
    id: int = strawberry.field(description="Increasing from 1 within the run.")
    type: RunEventType
    run_id: ID
    session_id: ID
    content: str | None = strawberry.field(
        description="DELTA: the new text; END: the run's answer."
    )
    status: RunStatus | None = strawberry.field(description="END: how the run ended.")
    error: str | None = strawberry.field(description="ERROR: why the run failed.")
    data: JSON = strawberry.field(description="The event's payload, snake_case, as in SSE.")

    @classmethod
    def of(cls, session_id: str, run_id: str, event: StoredRunEvent) -> RunEvent:
        d = event.data
        return cls(
            id=event.seq,
            type=RunEventType(event.name),
            run_id=run_id,
            session_id=session_id,
            content=d.get("content") if event.name in ("delta", "end") else None,
            status=RunStatus(d["status"]) if event.name == "end" else None,
            error=d.get("error") if event.name == "error" else None,
            data=d,
        )


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description=(
            "A run's events so far (after `after`), then each as it happens, to END or "
            "ERROR; from any server process on the same database. Over graphql-transport-ws."
        )
    )
    async def run_events(
        self, info: Info, session_id: ID, run_id: ID, after: int | None = 0
    ) -> AsyncGenerator[RunEvent, None]:
        events = agents.run_events(info.context, session_id, run_id, max(after or 0, 0))
        async for event in events:
            yield RunEvent.of(session_id, run_id, event)
