"""The GraphQL object types. Plain fields are plain attributes (no resolver call); only
fields that read more from the database are async resolvers."""

from typing import Annotated, Any, Generic, TypeVar

import strawberry
from strawberry import ID, UNSET, Info

from agent_sessions.errors import NotFound
from agent_sessions.resolvers import reads
from agent_sessions.resolvers.cursors import position_cursor, session_cursor
from agent_sessions.resolvers.fields import CHUNK, from_record
from agent_sessions.storage.model import Page

from .enums import Role, RunStatusEnum
from .records import output_type
from .scalars import JSON, DateTime

T = TypeVar("T")


def given(value: Any) -> Any:
    """An argument the client left out (no default in the SDL) reads as ``None``."""
    return None if value is UNSET else value


def doc(description: str) -> Any:
    """A plain field (no resolver) with its description."""
    return strawberry.field(description=description)


def argument(description: str, kind: Any) -> Any:
    """An argument's type with its description."""
    return Annotated[kind, strawberry.argument(description=description)]


@strawberry.type(description="Where a page sits in its list.")
class PageInfo:
    has_next_page: bool = doc("Whether there are items after this page.")
    has_previous_page: bool = doc("Whether there are items before this page.")
    start_cursor: str | None = doc(
        "The first item's cursor: pass it as `before` for the page before; null when empty."
    )
    end_cursor: str | None = doc(
        "The last item's cursor: pass it as `after` for the next page; null when empty."
    )


@strawberry.type(description="One item of a page, with its cursor.")
class Edge(Generic[T]):
    cursor: str = doc("Where this item is: pass it as `after` or `before` to page from it.")
    node: T = doc("The item.")


@strawberry.type(
    description="A page of a list: its items with their cursors (edges), the items alone "
    "(nodes), where the page sits (pageInfo) and the length of the whole list (totalCount)."
)
class Connection(Generic[T]):
    edges: list[Edge[T]] = doc("The page's items, each with its cursor.")
    nodes: list[T] = doc("The page's items alone, without cursors.")
    page_info: PageInfo = doc("Whether there is more before or after, and the cursors to go on.")
    total_count: int = doc("How many items the whole list has (with its filters), not the page.")


def connection(page: Page, kind: str, build: Any) -> Any:
    nodes = [build(pos, doc) for pos, doc in page.items]
    edges = [
        Edge(cursor=position_cursor(kind, pos), node=node)
        for (pos, _), node in zip(page.items, nodes, strict=True)
    ]
    info = PageInfo(
        has_next_page=page.has_next,
        has_previous_page=page.has_previous,
        start_cursor=edges[0].cursor if edges else None,
        end_cursor=edges[-1].cursor if edges else None,
    )
    return Connection(edges=edges, nodes=nodes, page_info=info, total_count=page.total)


@strawberry.type(
    name="ToolCall", description="A tool an assistant message called, as in OpenAI's tool_calls."
)
class ToolCallObject:
    id: ID = doc("The tool call's id; the tool message that answers it has it as toolCallId.")
    name: str = doc("The function the model called.")
    arguments: str | None = doc("The raw JSON string the model produced, as it produced it.")


@strawberry.type(description="How a run's model was asked to reason (per run).")
class ReasoningConfig:
    enabled: bool = doc("Whether reasoning was on.")
    effort: str | None = doc("The effort asked for (such as low, medium, high), as given.")
    budget_tokens: int | None = doc("At most this many reasoning tokens, when given.")


@strawberry.type(description="The tokens a run used, as its backend reported them.")
class TokenUsage:
    input_tokens: int | None = doc("Tokens of the prompt: system prompt, history, message.")
    output_tokens: int | None = doc("Tokens of the answer.")
    reasoning_tokens: int | None = doc("Tokens spent reasoning, when the backend says.")
    total_tokens: int | None = doc("All tokens of the run.")


RetrievedChunk = output_type(
    "RetrievedChunk",
    CHUNK,
    "A knowledge-base chunk fetched during a run's retrieval, with its scores and source; "
    "a run's chunks come in retrieval rank order, as recorded.",
    from_doc=classmethod(lambda cls, d: cls(**from_record("RetrievedChunk", d))),
)


def chunks(docs: list[dict[str, Any]]) -> list[Any]:  # RetrievedChunk objects
    return [RetrievedChunk.from_doc(d) for d in docs]


IncludedOnly = argument("Only the chunks that went into the model's context.", bool | None)
MinScore = argument("Only the chunks scored at least this.", float | None)


@strawberry.type(
    description="One message of a session: a user input, an assistant response (which may "
    "call tools), a tool result or a system prompt. Each assistant message carries the "
    "retrieved context that grounded it, so citations can be shown beside the reply."
)
class Message:
    id: ID = doc("The message's id.")
    role: Role = doc("Who wrote it.")
    content: str | None = doc("Its text; null for an assistant message that only calls tools.")
    created_at: DateTime = doc("When it was written.")
    run_id: ID | None = doc("The id of the run that added it.")
    name: str | None = doc("Tool messages: the tool's name.")
    tool_calls: list[ToolCallObject] = doc(
        "Assistant messages: the tools it called ([] otherwise)."
    )
    tool_call_id: ID | None = doc("Tool messages: the id of the tool call it answers.")
    session_id: strawberry.Private[str]

    @classmethod
    def from_doc(cls, session_id: str, d: dict[str, Any]) -> "Message":
        calls = d.get("tool_calls") or ()
        return cls(
            **from_record("Message", d),
            tool_calls=[ToolCallObject(**from_record("ToolCall", c)) for c in calls],
            session_id=session_id,
        )

    @strawberry.field(description="The run that added it.")
    async def run(self, info: Info) -> "Run | None":
        if self.run_id is None:
            return None
        doc = await reads.run(info, self.session_id, self.run_id)
        return Run.from_doc(self.session_id, doc) if doc is not None else None

    @strawberry.field(
        description=(
            "The chunks that grounded this answer: its run's retrieved context. "
            "[] unless assistant."
        )
    )
    async def retrieved_context(
        self, info: Info, included_only: IncludedOnly = False, min_score: MinScore = UNSET
    ) -> list[RetrievedChunk]:
        if self.role != "assistant" or self.run_id is None:
            return []
        return chunks(
            await reads.run_chunks(
                info, self.session_id, self.run_id, bool(included_only), given(min_score)
            )
        )


def message_connection(session_id: str, page: Page) -> Connection[Message]:
    return connection(page, "m", lambda _pos, d: Message.from_doc(session_id, d))


@strawberry.type(
    description="One agent run within a session: the message that started it, the answer, "
    "its status, the reasoning configuration and token usage, and the retrieved context "
    "(knowledge-base chunks fetched during retrieval) the agent saw before answering."
)
class Run:
    id: ID = doc("Run ID.")
    session_id: ID = doc("The session the run belongs to.")
    agent_id: str | None = doc("The agent that ran.")
    status: RunStatusEnum = doc(
        "Where the run is: RUNNING while the agent works, then the outcome."
    )
    input: str | None = doc("The user message that started the run (its first USER message).")
    content: str | None = doc("The final answer (by default its last ASSISTANT message's).")
    error: str | None = doc("Why the run FAILED; null otherwise.")
    reasoning: ReasoningConfig | None = doc(
        "The run's reasoning configuration, when the agent reasons."
    )
    usage: TokenUsage | None = doc("The tokens the run used, when the backend reported them.")
    created_at: DateTime = doc("When the run was created.")
    started_at: DateTime | None = doc("When the agent started on it.")
    completed_at: DateTime | None = doc("When it finished.")
    retrieval_diagnostics: JSON | None = doc(
        "What the retrieval step reported about itself (a JSON object, as recorded)."
    )

    @classmethod
    def from_doc(cls, session_id: str, d: dict[str, Any]) -> "Run":
        r, u = d.get("reasoning"), d.get("usage")
        return cls(
            **from_record("Run", d),
            session_id=session_id,
            reasoning=ReasoningConfig(**from_record("ReasoningConfig", r)) if r else None,
            usage=TokenUsage(**from_record("TokenUsage", u)) if u else None,
        )

    @strawberry.field(description="The session the run belongs to.")
    async def session(self, info: Info) -> "Session":
        doc = await reads.session(info, self.session_id)
        if doc is None:  # deleted while this request ran
            raise NotFound("session not found")
        return Session.from_doc(doc)

    @strawberry.field(description="The messages the run added, in order.")
    async def messages(self, info: Info) -> list[Message]:
        found = await reads.run_messages(info, self.session_id, self.id)
        return [Message.from_doc(self.session_id, d) for _, d in found]

    @strawberry.field(
        description="The run's retrieved context in rank order: exactly which chunks the "
        "agent saw before generating its answer (useful for debugging RAG behavior)."
    )
    async def retrieved_context(
        self, info: Info, included_only: IncludedOnly = False, min_score: MinScore = UNSET
    ) -> list[RetrievedChunk]:
        return chunks(
            await reads.run_chunks(
                info, self.session_id, self.id, bool(included_only), given(min_score)
            )
        )


def run_connection(session_id: str, page: Page) -> Connection[Run]:
    return connection(page, "r", lambda _pos, d: Run.from_doc(session_id, d))


After = argument("A cursor: the items after it.", str | None)
Before = argument("A cursor: the items before it.", str | None)
FirstItems = argument("The first this many items (after `after`); default 100, at most 1000.",
                       int | None)  # fmt: skip
LastItems = argument("The last this many items (before `before`); at most 1000.", int | None)


@strawberry.type(description="Where a forked session came from.")
class ForkedFrom:
    session_id: ID = doc("The session it was forked from (it may have been deleted since).")
    message_id: ID = doc("The last message the fork copied.")


@strawberry.type(
    description="A conversation between a user and an agent. It holds the messages (user "
    "inputs, assistant responses, tool calls, tool results, and the retrieved context that "
    "grounded each assistant turn) and spans the agent runs that added them. Sessions "
    "persist until deleted or until they expire (expiresAt)."
)
class Session:
    id: ID = doc("Session ID.")
    user_id: str = doc("The user the session belongs to.")
    agent_id: str | None = doc("The agent the session was started with.")
    title: str | None = doc("A title, when one was given.")
    metadata: JSON | None = doc("Anything recorded with the session (a JSON object).")
    created_at: DateTime = doc("When the session was created.")
    updated_at: DateTime = doc("When it last changed: lists sort by this, newest first.")
    message_count: int = doc("How many messages it has.")
    run_count: int = doc("How many runs it has.")
    expires_at: DateTime | None = doc(
        "When it expires: from then on it is gone from every read, and deleted soon after. "
        "Null: it is kept until deleted."
    )
    forked_from: ForkedFrom | None = doc("The session and message it was forked from, if any.")

    @classmethod
    def from_doc(cls, d: dict[str, Any]) -> "Session":
        fork = d.get("forked_from")
        return cls(
            **from_record("Session", d),
            forked_from=ForkedFrom(session_id=fork["session_id"], message_id=fork["message_id"])
            if fork
            else None,
        )

    @strawberry.field(
        description="The assembled chat messages in order, a page at a time. Each assistant "
        "message includes its retrievedContext, so you can surface citations alongside replies."
    )
    async def messages(
        self,
        info: Info,
        first: FirstItems = UNSET,
        after: After = UNSET,
        last: LastItems = UNSET,
        before: Before = UNSET,
        roles: argument("Only the messages of these roles.", list[Role] | None) = UNSET,
    ) -> Connection[Message]:
        args = {"first": given(first), "after": given(after), "last": given(last),
                "before": given(before), "roles": given(roles)}  # fmt: skip
        page = await reads.session_messages(info, self.id, args)
        return message_connection(self.id, page)

    @strawberry.field(description="All agent runs within the session, oldest first.")
    async def runs(
        self,
        info: Info,
        first: FirstItems = UNSET,
        after: After = UNSET,
        last: LastItems = UNSET,
        before: Before = UNSET,
        status: argument("Only the runs in these states.", list[RunStatusEnum] | None) = UNSET,
    ) -> Connection[Run]:
        args = {"first": given(first), "after": given(after), "last": given(last),
                "before": given(before), "status": given(status)}  # fmt: skip
        page = await reads.session_runs(info, self.id, args)
        return run_connection(self.id, page)

    @strawberry.field(description="One run of this session; null when it has no such run.")
    async def run(
        self, info: Info, id: argument("Run ID (a run belonging to this session).", ID)
    ) -> Run | None:
        doc = await reads.run(info, self.id, id)
        return Run.from_doc(self.id, doc) if doc is not None else None


@strawberry.type(description="A page of sessions, newest updatedAt first.")
class SessionConnection:
    edges: list[Edge[Session]] = doc("The page's sessions, each with its cursor.")
    nodes: list[Session] = doc("The page's sessions alone, without cursors.")
    page_info: PageInfo = doc("Whether there is more before or after, and the cursors to go on.")
    total_count: int = doc("How many sessions match the filter in all, not the page.")


def session_connection(listing: reads.SessionListing) -> SessionConnection:
    nodes = [Session.from_doc(d) for d in listing.sessions]
    edges = [Edge(cursor=session_cursor(n.updated_at, n.id), node=n) for n in nodes]
    return SessionConnection(
        edges=edges,
        nodes=nodes,
        page_info=PageInfo(
            has_next_page=listing.has_next,
            has_previous_page=listing.has_previous,
            start_cursor=edges[0].cursor if edges else None,
            end_cursor=edges[-1].cursor if edges else None,
        ),
        total_count=listing.total if listing.total is not None else 0,
    )


@strawberry.type(description="A page of sessions by number, as the REST list serves it.")
class SessionPage:
    content: list[Session] = doc("The page's sessions, newest updatedAt first.")
    total_elements: int = doc("How many sessions match the filter in all.")
    total_pages: int = doc("How many pages of this size there are (0 when none match).")
    page: int = doc("This page's number, 0-based.")
    size: int = doc("The page size.")


@strawberry.type(description="Who the request acts as.")
class Viewer:
    user_id: str | None = doc(
        "The user id the request acts as: 'local' in open mode, 'admin' for the bootstrap key."
    )
    is_admin: bool = doc("Whether it may see every session and act for any user.")


@strawberry.type(description="A new API key. The key is shown here once; only its hash is kept.")
class ApiKeyPayload:
    id: ID = doc("The key's id, for revokeApiKey and agent-sessions keys revoke.")
    key: str = doc("The key itself: send it as Authorization: Bearer <key>.")
