"""The GraphQL object types. Plain fields are plain attributes (no resolver call); only
fields that read more from the database are async resolvers."""

from typing import Any, Generic, TypeVar

import strawberry
from strawberry import ID, UNSET, Info

from agent_sessions.errors import NotFound
from agent_sessions.resolvers import reads
from agent_sessions.resolvers.cursors import position_cursor, session_cursor
from agent_sessions.storage.model import Page

from .enums import Role, RunStatus
from .scalars import JSON, DateTime

T = TypeVar("T")


def _default(value: Any, default: Any) -> Any:
    """A stored value, or ``default`` when it is absent or null (some servers return null
    for a projected field the item lacks)."""
    return default if value is None else value


def given(value: Any) -> Any:
    """An argument the client left out (no default in the SDL) reads as ``None``."""
    return None if value is UNSET else value


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type
class Edge(Generic[T]):
    cursor: str
    node: T


@strawberry.type
class Connection(Generic[T]):
    edges: list[Edge[T]]
    nodes: list[T]
    page_info: PageInfo
    total_count: int


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


@strawberry.type
class ToolCall:
    id: ID
    name: str
    arguments: str | None


@strawberry.type
class ReasoningConfig:
    enabled: bool
    effort: str | None
    budget_tokens: int | None


@strawberry.type
class TokenUsage:
    input_tokens: int | None
    output_tokens: int | None
    reasoning_tokens: int | None
    total_tokens: int | None


@strawberry.type
class RetrievedChunk:
    id: ID
    text: str
    score: float | None
    retrieval_score: float | None
    reranker_score: float | None
    source_id: ID | None
    source_name: str | None
    knowledge_base_id: ID | None
    kb_name: str | None
    indexing_strategy: str | None
    meta: JSON | None
    included_in_context: bool

    @classmethod
    def from_doc(cls, d: dict[str, Any]) -> "RetrievedChunk":
        g = d.get
        return cls(
            id=g("id"),
            text=g("text"),
            score=g("score"),
            retrieval_score=g("retrieval_score"),
            reranker_score=g("reranker_score"),
            source_id=g("source_id"),
            source_name=g("source_name"),
            knowledge_base_id=g("knowledge_base_id"),
            kb_name=g("kb_name"),
            indexing_strategy=g("indexing_strategy"),
            meta=g("meta"),
            included_in_context=_default(g("included_in_context"), True),
        )


def chunks(docs: list[dict[str, Any]]) -> list[RetrievedChunk]:
    return [RetrievedChunk.from_doc(d) for d in docs]


@strawberry.type
class Message:
    id: ID
    role: Role
    content: str | None
    created_at: DateTime
    run_id: ID | None
    name: str | None
    tool_calls: list[ToolCall]
    tool_call_id: ID | None
    session_id: strawberry.Private[str]

    @classmethod
    def from_doc(cls, session_id: str, d: dict[str, Any]) -> "Message":
        g = d.get
        calls = g("tool_calls")
        return cls(
            id=g("id"),
            role=g("role"),
            content=g("content"),
            created_at=g("created_at"),
            run_id=g("run_id"),
            name=g("name"),
            tool_calls=[
                ToolCall(id=c["id"], name=c["name"], arguments=c.get("arguments")) for c in calls
            ]
            if calls
            else [],
            tool_call_id=g("tool_call_id"),
            session_id=session_id,
        )

    @strawberry.field
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
        self, info: Info, included_only: bool | None = False, min_score: float | None = UNSET
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


@strawberry.type
class Run:
    id: ID
    session_id: ID
    agent_id: str | None
    status: RunStatus
    input: str | None
    content: str | None
    error: str | None
    reasoning: ReasoningConfig | None
    usage: TokenUsage | None
    created_at: DateTime
    started_at: DateTime | None
    completed_at: DateTime | None
    retrieval_diagnostics: JSON | None

    @classmethod
    def from_doc(cls, session_id: str, d: dict[str, Any]) -> "Run":
        g = d.get
        r, u = g("reasoning"), g("usage")
        return cls(
            id=g("id"),
            session_id=session_id,
            agent_id=g("agent_id"),
            status=g("status"),
            input=g("input"),
            content=g("content"),
            error=g("error"),
            reasoning=ReasoningConfig(
                enabled=_default(r.get("enabled"), True),
                effort=r.get("effort"),
                budget_tokens=r.get("budget_tokens"),
            )
            if r
            else None,
            usage=TokenUsage(
                input_tokens=u.get("input_tokens"),
                output_tokens=u.get("output_tokens"),
                reasoning_tokens=u.get("reasoning_tokens"),
                total_tokens=u.get("total_tokens"),
            )
            if u
            else None,
            created_at=g("created_at"),
            started_at=g("started_at"),
            completed_at=g("completed_at"),
            retrieval_diagnostics=g("retrieval_diagnostics"),
        )

    @strawberry.field
    async def session(self, info: Info) -> "Session":
        doc = await reads.session(info, self.session_id)
        if doc is None:  # deleted while this request ran
            raise NotFound("session not found")
        return Session.from_doc(doc)

    @strawberry.field
    async def messages(self, info: Info) -> list[Message]:
        found = await reads.run_messages(info, self.session_id, self.id)
        return [Message.from_doc(self.session_id, d) for _, d in found]

    @strawberry.field
    async def retrieved_context(
        self, info: Info, included_only: bool | None = False, min_score: float | None = UNSET
    ) -> list[RetrievedChunk]:
        return chunks(
            await reads.run_chunks(
                info, self.session_id, self.id, bool(included_only), given(min_score)
            )
        )


def run_connection(session_id: str, page: Page) -> Connection[Run]:
    return connection(page, "r", lambda _pos, d: Run.from_doc(session_id, d))


@strawberry.type
class Session:
    id: ID
    user_id: str
    agent_id: str | None
    title: str | None
    metadata: JSON | None
    created_at: DateTime
    updated_at: DateTime
    message_count: int
    run_count: int

    @classmethod
    def from_doc(cls, d: dict[str, Any]) -> "Session":
        g = d.get
        return cls(
            id=d["id"],
            user_id=g("user_id"),
            agent_id=g("agent_id"),
            title=g("title"),
            metadata=g("metadata"),
            created_at=g("created_at"),
            updated_at=g("updated_at"),
            message_count=g("message_count"),
            run_count=g("run_count"),
        )

    @strawberry.field
    async def messages(
        self,
        info: Info,
        first: int | None = UNSET,
        after: str | None = UNSET,
        last: int | None = UNSET,
        before: str | None = UNSET,
        roles: list[Role] | None = UNSET,
    ) -> Connection[Message]:
        args = {"first": given(first), "after": given(after), "last": given(last),
                "before": given(before), "roles": given(roles)}  # fmt: skip
        page = await reads.session_messages(info, self.id, args)
        return message_connection(self.id, page)

    @strawberry.field
    async def runs(
        self,
        info: Info,
        first: int | None = UNSET,
        after: str | None = UNSET,
        last: int | None = UNSET,
        before: str | None = UNSET,
        status: list[RunStatus] | None = UNSET,
    ) -> Connection[Run]:
        args = {"first": given(first), "after": given(after), "last": given(last),
                "before": given(before), "status": given(status)}  # fmt: skip
        page = await reads.session_runs(info, self.id, args)
        return run_connection(self.id, page)

    @strawberry.field
    async def run(self, info: Info, id: ID) -> Run | None:
        doc = await reads.run(info, self.id, id)
        return Run.from_doc(self.id, doc) if doc is not None else None


@strawberry.type
class SessionConnection:
    edges: list[Edge[Session]]
    nodes: list[Session]
    page_info: PageInfo
    total_count: int


def session_connection(listing: reads.SessionList) -> SessionConnection:
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
    content: list[Session]
    total_elements: int
    total_pages: int
    page: int
    size: int


@strawberry.type
class Viewer:
    user_id: str | None
    is_admin: bool


@strawberry.type
class ApiKeyPayload:
    id: ID
    key: str
