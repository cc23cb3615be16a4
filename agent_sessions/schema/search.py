"""The GraphQL shape of message search (``Query.search``)."""

from __future__ import annotations

from enum import Enum
from typing import Any

import strawberry
from strawberry import ID

from agent_sessions.resolvers.search import search_cursor

from .enums import Role
from .scalars import DateTime
from .types import PageInfo, doc


@strawberry.enum(description="How search hits are ordered.")
class SearchOrder(Enum):
    BEST = strawberry.enum_value("best", description="Best match first (BM25).")
    NEWEST = strawberry.enum_value("newest", description="Newest message first.")


@strawberry.type(description="A message that matched a search.")
class SearchHit:
    session_id: ID = doc("The session the message is in.")
    message_id: ID = doc("The message.")
    run_id: ID | None = doc("The run that added it.")
    role: Role = doc("Who wrote it.")
    snippet: str = doc(
        "The text around the first match, as HTML: escaped, each match in <mark>…</mark>."
    )
    score: float = doc("How well it matched (BM25; higher is better).")
    created_at: DateTime = doc("When it was written.")

    @classmethod
    def from_doc(cls, d: dict[str, Any]) -> SearchHit:
        return cls(
            session_id=d["session_id"], message_id=d["message_id"], run_id=d["run_id"],
            role=Role(d["role"]), snippet=d["snippet"], score=d["score"],
            created_at=d["created_at"],
        )  # fmt: skip


@strawberry.type(description="A search hit with its cursor.")
class SearchHitEdge:
    cursor: str = doc("Pass it as `after` for the hits after this one.")
    node: SearchHit = doc("The hit.")


@strawberry.type(description="A page of search hits.")
class SearchHitConnection:
    edges: list[SearchHitEdge] = doc("The page's hits, each with its cursor.")
    nodes: list[SearchHit] = doc("The page's hits alone.")
    page_info: PageInfo = doc("Whether there are more hits, and the cursor to go on.")


def search_connection(docs: list[dict[str, Any]], more: bool, offset: int) -> SearchHitConnection:
    nodes = [SearchHit.from_doc(d) for d in docs]
    edges = [
        SearchHitEdge(cursor=search_cursor(offset + i + 1), node=n) for i, n in enumerate(nodes)
    ]
    return SearchHitConnection(
        edges=edges,
        nodes=nodes,
        page_info=PageInfo(
            has_next_page=more,
            has_previous_page=offset > 0,
            start_cursor=edges[0].cursor if edges else None,
            end_cursor=edges[-1].cursor if edges else None,
        ),
    )
