"""Live runs in GraphQL: the ``runEvents`` subscription and its event type."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from enum import Enum

import strawberry
from strawberry import ID, Info

from agent_sessions.agents import runs as agent_runs
from agent_sessions.agents.events import RunEvent as StoredRunEvent

from .enums import RunStatusEnum
from .scalars import JSON
from .types import argument


@strawberry.enum(description="What happened in a run; the server-sent event names, upper-cased.")
class RunEventType(Enum):
    START = strawberry.enum_value("start", description="First: the run exists, RUNNING.")
    RETRIEVAL = strawberry.enum_value(
        "retrieval", description="The chunks and diagnostics the backend retrieved."
    )
    DELTA = strawberry.enum_value("delta", description="More of the answer, in order.")
    TOOL_CALL = strawberry.enum_value("tool_call", description="The model called a tool.")
    TOOL_RESULT = strawberry.enum_value("tool_result", description="A tool answered.")
    END = strawberry.enum_value("end", description="Last on success (or cancel).")
    ERROR = strawberry.enum_value("error", description="Last on failure; the run is FAILED.")


@strawberry.type(description="One event of a run, as its server-sent event stream carries it.")
class RunEvent:
    id: int = strawberry.field(description="Increasing from 1 within the run.")
    type: RunEventType = strawberry.field(description="What happened.")
    run_id: ID = strawberry.field(description="The run this event belongs to.")
    session_id: ID = strawberry.field(description="The run's session.")
    content: str | None = strawberry.field(
        description="DELTA: the new text; END: the run's answer."
    )
    status: RunStatusEnum | None = strawberry.field(description="END: how the run ended.")
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
            status=RunStatusEnum(d["status"]) if event.name == "end" else None,
            error=d.get("error") if event.name == "error" else None,
            data=d,
        )


@strawberry.type(description="Live runs, over graphql-transport-ws.")
class Subscription:
    @strawberry.subscription(
        description=(
            "A run's events so far (after `after`), then each as it happens, to END or "
            "ERROR; from any server process on the same database. Over graphql-transport-ws."
        )
    )
    async def run_events(
        self,
        info: Info,
        session_id: argument("The run's session.", ID),
        run_id: argument("The run to follow.", ID),
        after: argument("Replay the events after this id (0: all).", int | None) = 0,
    ) -> AsyncGenerator[RunEvent, None]:
        events = agent_runs.run_events(info.context, session_id, run_id, max(after or 0, 0))
        async for event in events:
            yield RunEvent.of(session_id, run_id, event)
