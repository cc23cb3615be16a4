"""What each read field does: arguments checked, look-ahead turned into a storage read,
the read made through the request's loaders. Results are storage's records and pages
(``storage.model``); ``schema`` turns them into GraphQL objects."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from graphql import GraphQLObjectType, GraphQLResolveInfo, VariableNode, get_named_type

from agent_sessions.errors import BadInput
from agent_sessions.storage.model import (
    EMPTY_PAGE,
    ChunkRecord,
    MessageRecord,
    Page,
    RunRecord,
    SessionFilter,
    SessionRecord,
)

from .context import Context
from .cursors import decode_session_cursor
from .lookahead import (
    CHUNK_READS,
    MESSAGE_READS,
    RUN_READS,
    SESSION_READS,
    Walk,
)
from .planner import plan_run, plan_session, prime
from .sessions import metadata_filter
from .specs import bounded, chunk_spec, message_spec, run_spec

SESSIONS_DEFAULT, SESSIONS_MAX = 20, 100
PAGE_SIZE_MAX = 100
# Page numbers become a skip of page * size, which the database walks entry by entry:
# at most 1,000 pages of 100 (a skip of 10^5, where 1,000,000 allowed 10^8). Beyond that,
# sessions(after:) pages by cursor at any depth.
PAGE_MAX = 1_000


def _raw(info: Any) -> GraphQLResolveInfo:
    # Strawberry's Info wraps graphql-core's; the look-ahead needs its field nodes.
    return info._raw_info


def _context(info: Any) -> Context:
    return info.context


def _explicit(info: Any, name: str) -> bool:
    """Whether the client gave argument ``name`` (a variable it left out does not count)."""
    raw = _raw(info)
    for node in raw.field_nodes:
        for arg in node.arguments or ():
            if arg.name.value == name:
                if isinstance(arg.value, VariableNode):
                    return arg.value.name.value in raw.variable_values
                return True
    return False


# --- look-ahead: the stored fields a selection reads --------------------------------------


def _selected(info: Any, key: str, compute: Callable[[Walk, GraphQLObjectType], Any]) -> Any:
    """``compute(walk, type)`` for the current field (``type``: what it returns), once per
    field group and request."""
    raw = _raw(info)

    def run(walk: Walk) -> Any:
        type_ = get_named_type(raw.return_type)
        assert isinstance(type_, GraphQLObjectType)
        return compute(walk, type_)

    return _context(info).selection.of(raw, key, run)


def session_fields(info: Any, paths: tuple[tuple[str, ...], ...] = ((),)) -> frozenset[str]:
    """Stored session fields read under the current field (at ``paths``)."""
    return _selected(
        info,
        f"session{paths}",
        lambda walk, t: walk.reads(t, _raw(info).field_nodes, SESSION_READS, paths) | {"user_id"},
    )


def item_fields(info: Any, table: Mapping[str, tuple[str, ...]], key: str) -> frozenset[str]:
    """Stored message/run fields read by a connection's items (``nodes`` and ``edges.node``)."""

    def compute(walk: Walk, connection: GraphQLObjectType) -> frozenset[str]:
        items = walk.items(connection, _raw(info).field_nodes)
        return frozenset().union(*(walk.reads(item, group, table) for item, group in items))

    return _selected(info, key, compute)


def list_fields(info: Any, table: Mapping[str, tuple[str, ...]], key: str) -> frozenset[str]:
    """Stored fields read by the current field's object (or a list's items)."""
    return _selected(info, key, lambda walk, t: walk.reads(t, _raw(info).field_nodes, table))


def connection_wants(info: Any, *path: str) -> bool:
    """Whether the connection's selection includes ``path`` (e.g. ``totalCount``)."""

    def compute(walk: Walk, connection: GraphQLObjectType) -> bool:
        parent_path, last = path[:-1], path[-1]
        return any(
            last in walk.names(t, group)
            for t, group in walk.groups(connection, _raw(info).field_nodes, parent_path)
        )

    return _selected(info, f"wants{path}", compute)


# --- sessions -----------------------------------------------------------------------------


async def session(info: Any, session_id: str) -> SessionRecord | None:
    """A session by id. When nested connections or runs are selected too, everything is
    read in one aggregate and handed to the loaders the nested fields will ask."""
    ctx = _context(info)
    fields = session_fields(info)
    shape = _selected(info, "plan", lambda walk, _t: plan_session(walk, _raw(info).field_nodes))
    planned = shape.read(ctx.selection.walk(_raw(info)), strict=False) if shape.nested else None
    if planned is None:
        return await ctx.loaders.session.load((session_id, fields))
    view = await ctx.loaders.session_read.load((session_id, planned.read))
    if view is None:
        return None
    prime(ctx.loaders, session_id, planned, view)
    ctx.loaders.session.prime((session_id, fields), view.doc)
    return view.doc


@dataclass(slots=True)
class SessionListing:
    sessions: list[SessionRecord]
    has_next: bool
    has_previous: bool
    total: int | None


def session_filter(filt: Any | None) -> SessionFilter:
    if filt is None:
        return SessionFilter()
    return SessionFilter(
        user_id=filt.user_id,
        agent_id=filt.agent_id,
        updated_after=filt.updated_after,
        updated_before=filt.updated_before,
        metadata=metadata_filter(getattr(filt, "metadata", None)),
    )


async def sessions(
    info: Any,
    filt: Any | None,
    first: int | None,
    after: str | None,
    last: int | None,
    before: str | None,
) -> SessionListing:
    """A keyset page of sessions, newest ``updatedAt`` first."""
    ctx = _context(info)
    store, owner = ctx.storage.sessions, ctx.owner
    bounded("first", first, SESSIONS_MAX)
    bounded("last", last, SESSIONS_MAX)
    if last is not None and not _explicit(info, "first"):
        first = None  # `first` has a default; `last` alone pages backwards
    a, b = decode_session_cursor(after, "after"), decode_session_cursor(before, "before")
    sf = session_filter(filt)
    fields = session_fields(info, (("nodes",), ("edges", "node"))) | {"updated_at"}
    if first is None and last is not None:
        page = await store.list_sessions(
            sf, owner=owner, limit=last, after=a, before=b, backwards=True, fields=fields
        )
        docs, has_previous, has_next = page.sessions, page.has_more, None
    else:
        page = await store.list_sessions(
            sf,
            owner=owner,
            limit=first if first is not None else SESSIONS_DEFAULT,
            after=a,
            before=b,
            fields=fields,
        )
        docs, has_next, has_previous = page.sessions, page.has_more, None
        if last is not None and len(docs) > last:
            docs, has_previous = docs[len(docs) - last :], True
    if has_next is None and connection_wants(info, "pageInfo", "hasNextPage"):
        edge = (docs[-1]["updated_at"], docs[-1]["id"]) if docs else b
        has_next = edge is not None and await store.any_sessions_beyond(
            sf, owner=owner, edge=edge, newer=False
        )
    if has_previous is None and connection_wants(info, "pageInfo", "hasPreviousPage"):
        edge = (docs[0]["updated_at"], docs[0]["id"]) if docs else a
        has_previous = edge is not None and await store.any_sessions_beyond(
            sf, owner=owner, edge=edge, newer=True
        )
    total = None
    if connection_wants(info, "totalCount"):
        total = await store.count_sessions(sf, owner=owner)
    return SessionListing(docs, bool(has_next), bool(has_previous), total)


async def session_page(
    info: Any, filt: Any | None, page: int, size: int
) -> tuple[list[SessionRecord], int]:
    """Page ``page`` (0-based) of ``size`` sessions, newest first, with the total count."""
    if not 0 <= page <= PAGE_MAX:
        raise BadInput(
            f"page must be between 0 and {PAGE_MAX}, got {page} "
            "(page deeper with the cursors of sessions(after:))"
        )
    if not 1 <= size <= PAGE_SIZE_MAX:
        raise BadInput(f"size must be between 1 and {PAGE_SIZE_MAX}, got {size}")
    ctx = _context(info)
    fields = session_fields(info, (("content",),))
    return await ctx.storage.sessions.page_sessions(
        session_filter(filt), owner=ctx.owner, page=page, size=size, fields=fields
    )


# --- messages and runs of a session --------------------------------------------------------


async def session_messages(info: Any, session_id: str, args: dict[str, Any]) -> Page:
    """``Session.messages``: a window of the session's messages, through the loader."""
    spec = message_spec(args, item_fields(info, MESSAGE_READS, "messages"))
    page = await _context(info).loaders.messages.load((session_id, spec))
    return page or EMPTY_PAGE


async def session_runs(info: Any, session_id: str, args: dict[str, Any]) -> Page:
    """``Session.runs``: a window of the session's runs, through the loader."""
    spec = run_spec(args, item_fields(info, RUN_READS, "runs"))
    page = await _context(info).loaders.runs.load((session_id, spec))
    return page or EMPTY_PAGE


async def run(info: Any, session_id: str, run_id: str) -> RunRecord | None:
    fields = list_fields(info, RUN_READS, "run")
    return await _context(info).loaders.run.load((session_id, run_id, fields))


async def run_with_chunks(info: Any, session_id: str, run_id: str) -> RunRecord | None:
    """``Query.run``: when its chunks are selected, the run and its chunks in one read."""
    ctx = _context(info)
    shape = _selected(info, "run-plan", lambda walk, _t: plan_run(walk, _raw(info).field_nodes))
    planned = shape.read(ctx.selection.walk(_raw(info)), strict=False)
    if planned is None or not planned.chunked:
        return await run(info, session_id, run_id)
    view = await ctx.loaders.session_read.load((session_id, planned.read))
    if view is None:
        return None
    prime(ctx.loaders, session_id, planned, view)
    return view.runs[0]


async def run_messages(info: Any, session_id: str, run_id: str) -> list[tuple[int, MessageRecord]]:
    fields = list_fields(info, MESSAGE_READS, "run.messages")
    return await _context(info).loaders.run_messages.load((session_id, run_id, fields))


async def run_chunks(
    info: Any, session_id: str, run_id: str, included_only: bool, min_score: float | None
) -> list[ChunkRecord]:
    args = {"includedOnly": included_only, "minScore": min_score}
    spec = chunk_spec(args, list_fields(info, CHUNK_READS, "chunks"))
    return await _context(info).loaders.chunks.load((session_id, run_id, spec)) or []
