"""The public GraphQL shape: root types, and the Schema with its limits and extensions."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import strawberry
from strawberry import ID, UNSET, Info
from strawberry.extensions import (
    AddValidationRules,
    DisableIntrospection,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    QueryDepthLimiter,
    SchemaExtension,
)
from strawberry.schema.config import StrawberryConfig

from agent_sessions.agents import runs as agent_runs
from agent_sessions.resolvers import edits, reads, sessions, writes
from agent_sessions.resolvers import search as searching
from agent_sessions.resolvers.compiled import CompiledExecutor

from .extensions import CompiledExecution, DocumentCache, Documents, ErrorCodes, ServiceSchema
from .inputs import CreateSessionInput, ReasoningInput, RecordRunInput, SessionFilterInput
from .live import Subscription
from .scalars import JSON, SCALARS, DateTime
from .search import SearchHitConnection, SearchOrder, search_connection
from .types import (
    ApiKeyPayload,
    Run,
    Session,
    SessionConnection,
    SessionPage,
    Viewer,
    argument,
    given,
    session_connection,
)

MAX_DEPTH = 10
MAX_ALIASES = 30
MAX_TOKENS = 10_000


SessionId = argument("Session ID.", ID)
# The arguments of runAgent and startRun, declared once.
AgentId = argument("An agent declared in the config file.", str)
UserMessage = argument("The user's new message.", str)
RunSessionId = argument(
    "Continue this session; absent: a new one. An id that does not exist (never, or "
    "deleted) starts a new session with that id and no memory.",
    ID | None,
)
RunReasoning = argument("How the model should reason on this run.", ReasoningInput | None)
RunForUser = argument("Run for this user (administrators only).", str | None)
Filter = argument(
    "Which sessions: by user, agent, updatedAt range and metadata.", SessionFilterInput | None
)


@strawberry.type(description="Sessions, runs, and who you are.")
class Query:
    @strawberry.field(description="Get a session by ID; null when it is missing or not yours.")
    async def session(self, info: Info, id: SessionId) -> Session | None:
        doc = await reads.session(info, id)
        return Session.from_doc(doc) if doc is not None else None

    @strawberry.field(
        description="A paginated list of sessions, newest updatedAt first; a user sees only "
        "their own. `last`/`before` page backwards."
    )
    async def sessions(
        self,
        info: Info,
        filter: Filter = UNSET,
        first: argument(
            "The first this many sessions (after `after`); at most 100.", int | None
        ) = 20,
        after: argument("A cursor: the sessions after it.", str | None) = UNSET,
        last: argument(
            "The last this many sessions (before `before`); at most 100.", int | None
        ) = UNSET,
        before: argument("A cursor: the sessions before it.", str | None) = UNSET,
    ) -> SessionConnection:
        listing = await reads.sessions(
            info, given(filter), first, given(after), given(last), given(before)
        )
        return session_connection(listing)

    @strawberry.field(description="Sessions by page number (0-based), newest updatedAt first.")
    async def session_page(
        self,
        info: Info,
        filter: Filter = UNSET,
        page: argument("The page number, from 0.", int) = 0,
        size: argument("Sessions per page, 1-100.", int) = 20,
    ) -> SessionPage:
        docs, total = await reads.session_page(info, given(filter), page, size)
        return SessionPage(
            content=[Session.from_doc(d) for d in docs],
            total_elements=total,
            total_pages=-(-total // size),
            page=page,
            size=size,
        )

    @strawberry.field(
        description="One run with its retrieved context; null when the session is missing or "
        "not yours, or has no such run."
    )
    async def run(
        self,
        info: Info,
        session_id: SessionId,
        run_id: argument("Run ID (a run belonging to this session).", ID),
    ) -> Run | None:
        doc = await reads.run_with_chunks(info, session_id, run_id)
        return Run.from_doc(session_id, doc) if doc is not None else None

    @strawberry.field(
        description="Messages matching a query, across your sessions (an administrator's: "
        "everyone's, or a filter's userId/agentId): words, case- and accent-insensitive, "
        'every word must match, "a phrase" in quotes.'
    )
    async def search(
        self,
        info: Info,
        query: argument('Words and "quoted phrases", all of which must match.', str),
        filter: argument("Whose sessions: userId and agentId.", SessionFilterInput | None) = UNSET,
        first: argument("At most this many hits; default 20, at most 100.", int | None) = 20,
        after: argument("A cursor: the hits after it.", str | None) = UNSET,
        order: argument("Best match first, or newest first.", SearchOrder) = SearchOrder.BEST,
    ) -> SearchHitConnection:
        hits, more, offset = await searching.search(
            info.context, query, given(filter), first, given(after), order is SearchOrder.NEWEST
        )
        return search_connection(hits, more, offset)

    @strawberry.field(description="Who the request acts as.")
    def viewer(self, info: Info) -> Viewer:
        caller = info.context.caller
        return Viewer(user_id=caller.user_id, is_admin=caller.is_admin)


@strawberry.type(description="Recording sessions and runs, running agents, managing API keys.")
class Mutation:
    @strawberry.mutation(
        description="Create an empty session (recordRun and runAgent create theirs themselves)."
    )
    async def create_session(
        self, info: Info, input: argument("The new session.", CreateSessionInput)
    ) -> Session:
        return Session.from_doc(await writes.create_session(info, input))

    @strawberry.mutation(
        description=(
            "Run.input = first USER message, "
            "Run.content = last ASSISTANT message's content unless given."
        )
    )
    async def record_run(
        self, info: Info, input: argument("The run with its messages and context.", RecordRunInput)
    ) -> Run:
        session_id, run = await writes.record_run(info, input)
        return Run.from_doc(session_id, run)

    @strawberry.mutation(
        description="Change a session's title, metadata or expiry: what is given changes, "
        "null clears it (no title, no metadata, never expires). Null when the session is "
        "missing or not yours."
    )
    async def update_session(
        self,
        info: Info,
        id: SessionId,
        title: argument("Its new title (1-256 characters).", str | None) = UNSET,
        metadata: argument(
            "Its new metadata (a JSON object), replacing the old.", JSON | None
        ) = UNSET,
        expires_at: argument(
            "When it expires: from then on it is gone from every read.", DateTime | None
        ) = UNSET,
    ) -> Session | None:
        doc = await sessions.update_session(
            info.context, id, title=title, metadata=metadata, expires_at=expires_at
        )
        return Session.from_doc(doc) if doc is not None else None

    @strawberry.mutation(
        description="Delete one run with its messages and retrieved context (the rest of the "
        "session is unchanged); false when the session is missing or not yours, or has no "
        "such run. A QUEUED or RUNNING run must be cancelled first."
    )
    async def delete_run(
        self,
        info: Info,
        session_id: argument("The session the run belongs to.", ID),
        run_id: argument("The run to delete.", ID),
    ) -> bool:
        return await edits.delete_run(info.context, session_id, run_id)

    @strawberry.mutation(
        description="A new session with this session's messages up to and including one "
        "message, the runs that added them and their retrieved context, and forkedFrom; the "
        "original is unchanged. NOT_FOUND when the session is missing or not yours, or has "
        "no such message."
    )
    async def fork_session(
        self,
        info: Info,
        session_id: argument("The session to fork.", ID),
        at_message_id: argument("The last message the fork keeps.", ID),
        title: argument("The fork's title; default: the original's.", str | None) = None,
    ) -> Session:
        fork = await edits.fork_session(info.context, session_id, at_message_id, title)
        return Session.from_doc(fork)

    @strawberry.mutation(
        description="Delete a session and all its runs, messages and retrieved context; "
        "false when it is missing or not yours."
    )
    async def delete_session(self, info: Info, id: SessionId) -> bool:
        return await writes.delete_session(info, id)

    @strawberry.mutation(
        description=(
            "Run an agent from the config file on a new message; the session's history is "
            "replayed first. No sessionId: a new session. userId: administrators only."
        )
    )
    async def run_agent(
        self,
        info: Info,
        agent_id: AgentId,
        message: UserMessage,
        session_id: RunSessionId = UNSET,
        reasoning: RunReasoning = UNSET,
        user_id: RunForUser = UNSET,
    ) -> Run:
        session, run = await agent_runs.run_agent(
            info.context,
            agent_id=agent_id,
            message=message,
            session_id=given(session_id),
            reasoning=writes.reasoning_doc(given(reasoning)),
            user_id=given(user_id),
        )
        return Run.from_doc(session, run)

    @strawberry.mutation(
        description=(
            "Start an agent run and return it at once, RUNNING, so a client can subscribe "
            "to runEvents; the same arguments as runAgent."
        )
    )
    async def start_run(
        self,
        info: Info,
        agent_id: AgentId,
        message: UserMessage,
        session_id: RunSessionId = UNSET,
        reasoning: RunReasoning = UNSET,
        user_id: RunForUser = UNSET,
    ) -> Run:
        session, live = await agent_runs.start_run(
            info.context,
            agent_id=agent_id,
            message=message,
            session_id=given(session_id),
            reasoning=writes.reasoning_doc(given(reasoning)),
            user_id=given(user_id),
        )
        return Run.from_doc(session, live.run)

    @strawberry.mutation(
        description=(
            "Cancel a run, from any server process: it ends CANCELLED with what it produced "
            "so far. A finished run is returned unchanged; one still RUNNING after 5 s has "
            "the cancel on its way. NOT_FOUND when missing or not yours."
        )
    )
    async def cancel_run(
        self,
        info: Info,
        session_id: argument("The session the run belongs to.", ID),
        run_id: argument("The run to cancel.", ID),
    ) -> Run:
        run = await agent_runs.cancel_run(info.context, session_id, run_id)
        return Run.from_doc(session_id, run)

    @strawberry.mutation(description="Administrators only. The key is returned here, once.")
    async def create_api_key(
        self,
        info: Info,
        user_id: argument("The user the key acts as.", str),
        admin: argument("Whether the key may act for any user.", bool | None) = False,
    ) -> ApiKeyPayload:
        key_id, key = await writes.create_api_key(info, user_id, bool(admin))
        return ApiKeyPayload(id=key_id, key=key)

    @strawberry.mutation(
        description="Revoke an API key from the next request on; false when there is no such "
        "live key (of yours)."
    )
    async def revoke_api_key(
        self, info: Info, id: argument("The key's id (not the key).", ID)
    ) -> bool:
        return await writes.revoke_api_key(info, id)


# The limit rules, made once: the validation cache is keyed by the rule classes, so rules
# made anew per request (as the limiter extensions do) would never hit it.
LIMIT_RULES = [
    *QueryDepthLimiter(max_depth=MAX_DEPTH).validation_rules,
    *MaxAliasesLimiter(max_alias_count=MAX_ALIASES).validation_rules,
]
NO_INTROSPECTION_RULES = [*DisableIntrospection().validation_rules]


def build_schema(
    *,
    introspection: bool = True,
    compiled: bool = True,
    extensions: Sequence[Callable[[], SchemaExtension]] = (),
) -> ServiceSchema:
    """The schema; ``compiled`` answers the queries it can through compiled plans.
    ``extensions`` run after ours, around compiled and normal answers alike."""
    rules = LIMIT_RULES if introspection else LIMIT_RULES + NO_INTROSPECTION_RULES
    documents = Documents()
    pipeline: list[Callable[[], SchemaExtension]] = [
        ErrorCodes,
        lambda: MaxTokensLimiter(max_token_count=MAX_TOKENS),
        lambda: AddValidationRules(rules),
        lambda: DocumentCache(documents),
        *extensions,
    ]
    schema = ServiceSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=pipeline,
        config=StrawberryConfig(scalar_map=SCALARS),
    )
    schema.documents = documents
    if compiled:
        executor = CompiledExecutor(schema._schema)
        schema.compiled = executor
        # Last, so that every extension before it wraps the compiled answers too.
        schema.extensions = (*schema.extensions, lambda: CompiledExecution(executor, documents))
    return schema
