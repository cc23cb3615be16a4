"""GraphQL queries: listing sessions, by cursor (sessions) and by page number (sessionPage)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from .graphql_conversation import (
    CREATE_SESSION,
    conversation,
    parse_dt,
)
from .helpers import GraphQLClient, record

# --- sessions ---------------------------------------------------------------------------

SESSION_ARG_TYPES = {
    "filter": "SessionFilter",
    "first": "Int",
    "after": "String",
    "last": "Int",
    "before": "String",
}


def sessions_query(*names: str) -> str:
    """A ``sessions`` query that names only the arguments given, as a client would write it
    (``first`` has a default of 20, so naming it without a value would mean 20)."""
    params = ", ".join(f"${n}: {SESSION_ARG_TYPES[n]}" for n in names)
    args = ", ".join(f"{n}: ${n}" for n in names)
    return f"""
query{f"({params})" if params else ""} {{
  sessions{f"({args})" if args else ""} {{
    totalCount
    edges {{ cursor node {{ id updatedAt }} }}
    nodes {{ id userId agentId updatedAt }}
    pageInfo {{ hasNextPage hasPreviousPage startCursor endCursor }}
  }}
}}
"""


async def sessions_page(gql: GraphQLClient, **args: Any) -> dict[str, Any]:
    args = {k: v for k, v in args.items() if v is not None}
    return (await gql.data(sessions_query(*args), args))["sessions"]


def session_ids(conn: dict[str, Any]) -> list[str]:
    return [n["id"] for n in conn["nodes"]]


async def make_sessions(gql: GraphQLClient, n: int, **fields: Any) -> list[str]:
    """``n`` sessions created oldest first, each with its own updatedAt millisecond."""
    ids = []
    for i in range(n):
        prefix = fields.get("prefix", "s")
        body = {k: v for k, v in fields.items() if k != "prefix"}
        data = await gql.data(CREATE_SESSION, {"input": {"id": f"{prefix}{i:02d}", **body}})
        ids.append(data["createSession"]["id"])
        await asyncio.sleep(0.003)
    return ids


async def test_sessions_newest_updated_first(gql: GraphQLClient) -> None:
    ids = await make_sessions(gql, 5)
    conn = await sessions_page(gql)
    assert session_ids(conn) == ids[::-1]
    assert conn["totalCount"] == 5
    assert [e["node"]["id"] for e in conn["edges"]] == ids[::-1]
    stamps = [parse_dt(n["updatedAt"]) for n in conn["nodes"]]
    assert stamps == sorted(stamps, reverse=True)
    assert conn["pageInfo"]["hasNextPage"] is False
    assert conn["pageInfo"]["hasPreviousPage"] is False
    # A new run makes the oldest session the newest.
    await record(gql, sessionId=ids[0])
    conn = await sessions_page(gql)
    assert session_ids(conn) == [ids[0], *ids[:0:-1]]


async def test_sessions_default_page_is_twenty(gql: GraphQLClient) -> None:
    ids = await make_sessions(gql, 22)
    conn = await sessions_page(gql)
    assert session_ids(conn) == ids[::-1][:20]
    assert conn["totalCount"] == 22
    assert conn["pageInfo"]["hasNextPage"] is True
    assert conn["pageInfo"]["hasPreviousPage"] is False


async def test_sessions_forward_pages_visit_every_session_once(gql: GraphQLClient) -> None:
    ids = await make_sessions(gql, 7)
    seen: list[str] = []
    pages = []
    after = None
    while True:
        conn = await sessions_page(gql, first=3, after=after)
        pages.append(conn)
        seen += session_ids(conn)
        assert conn["totalCount"] == 7
        assert conn["pageInfo"]["startCursor"] == conn["edges"][0]["cursor"]
        assert conn["pageInfo"]["endCursor"] == conn["edges"][-1]["cursor"]
        if not conn["pageInfo"]["hasNextPage"]:
            break
        after = conn["pageInfo"]["endCursor"]
        assert len(pages) < 5
    assert seen == ids[::-1]
    assert [len(p["nodes"]) for p in pages] == [3, 3, 1]
    assert [p["pageInfo"]["hasPreviousPage"] for p in pages] == [False, True, True]


async def test_sessions_backward_pages_visit_every_session_once(gql: GraphQLClient) -> None:
    ids = await make_sessions(gql, 7)
    seen: list[str] = []
    pages = []
    before = None
    while True:
        conn = await sessions_page(gql, last=3, before=before)
        pages.append(conn)
        seen = session_ids(conn) + seen
        assert conn["totalCount"] == 7
        assert conn["pageInfo"]["startCursor"] == conn["edges"][0]["cursor"]
        assert conn["pageInfo"]["endCursor"] == conn["edges"][-1]["cursor"]
        if not conn["pageInfo"]["hasPreviousPage"]:
            break
        before = conn["pageInfo"]["startCursor"]
        assert len(pages) < 5
    assert seen == ids[::-1]
    assert [len(p["nodes"]) for p in pages] == [3, 3, 1]
    assert [p["pageInfo"]["hasNextPage"] for p in pages] == [False, True, True]
    # Newest first within each backward page too.
    assert session_ids(pages[0]) == [ids[2], ids[1], ids[0]]


async def test_sessions_last_before_takes_the_sessions_closest_to_the_cursor(
    gql: GraphQLClient,
) -> None:
    ids = await make_sessions(gql, 25)
    newest = ids[::-1]
    every = await sessions_page(gql, first=100)
    assert session_ids(every) == newest
    oldest_cursor = every["edges"][-1]["cursor"]
    conn = await sessions_page(gql, last=3, before=oldest_cursor)
    assert session_ids(conn) == newest[21:24]
    assert conn["pageInfo"]["hasPreviousPage"] is True
    assert conn["pageInfo"]["hasNextPage"] is True
    conn = await sessions_page(gql, last=3)
    assert session_ids(conn) == newest[22:]
    assert conn["pageInfo"]["hasPreviousPage"] is True
    assert conn["pageInfo"]["hasNextPage"] is False
    assert conn["totalCount"] == 25


async def test_sessions_first_zero_is_an_empty_page(gql: GraphQLClient) -> None:
    await make_sessions(gql, 3)
    conn = await sessions_page(gql, first=0)
    assert conn["nodes"] == [] and conn["edges"] == []
    assert conn["totalCount"] == 3
    assert conn["pageInfo"]["startCursor"] is None and conn["pageInfo"]["endCursor"] is None
    # Relay: with `first`, hasNextPage is whether more than `first` edges follow.
    assert conn["pageInfo"]["hasNextPage"] is True


async def test_sessions_same_updated_at_pages_without_loss(gql: GraphQLClient) -> None:
    # Sessions created without a pause may share a millisecond; ties must still page.
    for i in range(6):
        await gql.data(CREATE_SESSION, {"input": {"id": f"tie{i}"}})
    seen: list[str] = []
    after = None
    for _ in range(6):
        conn = await sessions_page(gql, first=2, after=after)
        seen += session_ids(conn)
        if not conn["pageInfo"]["hasNextPage"]:
            break
        after = conn["pageInfo"]["endCursor"]
    assert sorted(seen) == [f"tie{i}" for i in range(6)]
    assert len(seen) == 6
    back: list[str] = []
    before = None
    for _ in range(6):
        conn = await sessions_page(gql, last=2, before=before)
        back = session_ids(conn) + back
        if not conn["pageInfo"]["hasPreviousPage"]:
            break
        before = conn["pageInfo"]["startCursor"]
    assert back == seen


async def test_sessions_filter_by_user_and_agent(gql: GraphQLClient) -> None:
    await record(gql, sessionId="bob-fin", userId="bob", agentId="finance_agent")
    await record(gql, sessionId="bob-hr", userId="bob", agentId="hr_agent")
    await record(gql, sessionId="eve-fin", userId="eve", agentId="finance_agent")
    await record(gql, sessionId="mine", agentId="hr_agent")

    async def ids(**filt: Any) -> tuple[list[str], int]:
        conn = await sessions_page(gql, filter=filt)
        return sorted(session_ids(conn)), conn["totalCount"]

    assert await ids(userId="bob") == (["bob-fin", "bob-hr"], 2)
    assert await ids(userId="local") == (["mine"], 1)
    assert await ids(agentId="finance_agent") == (["bob-fin", "eve-fin"], 2)
    assert await ids(userId="bob", agentId="hr_agent") == (["bob-hr"], 1)
    assert await ids(userId="nobody") == ([], 0)
    conn = await sessions_page(gql, filter={"userId": "bob"})
    assert {(n["userId"], n["agentId"]) for n in conn["nodes"]} == {
        ("bob", "finance_agent"),
        ("bob", "hr_agent"),
    }


async def test_sessions_filter_updated_bounds_are_exclusive(gql: GraphQLClient) -> None:
    ids = await make_sessions(gql, 5)
    conn = await sessions_page(gql)
    stamp = {n["id"]: n["updatedAt"] for n in conn["nodes"]}

    async def ids_for(**filt: Any) -> tuple[list[str], int]:
        c = await sessions_page(gql, filter=filt)
        return session_ids(c), c["totalCount"]

    assert await ids_for(updatedAfter=stamp[ids[1]]) == ([ids[4], ids[3], ids[2]], 3)
    assert await ids_for(updatedBefore=stamp[ids[3]]) == ([ids[2], ids[1], ids[0]], 3)
    assert await ids_for(updatedAfter=stamp[ids[0]], updatedBefore=stamp[ids[4]]) == (
        [ids[3], ids[2], ids[1]],
        3,
    )
    assert await ids_for(updatedAfter=stamp[ids[2]], updatedBefore=stamp[ids[3]]) == ([], 0)
    assert await ids_for(updatedAfter=stamp[ids[4]]) == ([], 0)
    # Bounds in another zone mean the same instant.
    utc = parse_dt(stamp[ids[1]])
    shifted = utc.astimezone(datetime.fromisoformat("2026-01-01T00:00:00+05:30").tzinfo)
    assert await ids_for(updatedAfter=shifted.isoformat()) == ([ids[4], ids[3], ids[2]], 3)


async def test_sessions_filter_applies_to_pages(gql: GraphQLClient) -> None:
    a = await make_sessions(gql, 4, prefix="a", agentId="alpha")
    await make_sessions(gql, 3, prefix="b", agentId="beta")
    first = await sessions_page(gql, filter={"agentId": "alpha"}, first=3)
    assert session_ids(first) == a[::-1][:3]
    assert first["totalCount"] == 4
    assert first["pageInfo"]["hasNextPage"] is True
    rest = await sessions_page(
        gql, filter={"agentId": "alpha"}, first=3, after=first["pageInfo"]["endCursor"]
    )
    assert session_ids(rest) == [a[0]]
    assert rest["pageInfo"]["hasNextPage"] is False
    assert rest["pageInfo"]["hasPreviousPage"] is True
    back = await sessions_page(gql, filter={"agentId": "alpha"}, last=2)
    assert session_ids(back) == [a[1], a[0]]
    assert back["pageInfo"]["hasPreviousPage"] is True
    assert back["pageInfo"]["hasNextPage"] is False


async def test_sessions_empty(gql: GraphQLClient) -> None:
    conn = await sessions_page(gql)
    assert conn == {
        "totalCount": 0,
        "edges": [],
        "nodes": [],
        "pageInfo": {
            "hasNextPage": False,
            "hasPreviousPage": False,
            "startCursor": None,
            "endCursor": None,
        },
    }


async def test_sessions_nodes_carry_every_session_field(gql: GraphQLClient) -> None:
    await conversation(gql)
    data = await gql.data(
        """{ sessions { nodes { id userId agentId title metadata messageCount runCount
                                createdAt updatedAt } } }"""
    )
    single = await gql.data(
        """{ session(id: "conv-1") { id userId agentId title metadata messageCount runCount
                                    createdAt updatedAt } }"""
    )
    assert data["sessions"]["nodes"] == [single["session"]]


# --- sessionPage ------------------------------------------------------------------------

SESSION_PAGE = """
query($filter: SessionFilter, $page: Int!, $size: Int!) {
  sessionPage(filter: $filter, page: $page, size: $size) {
    content { id userId agentId } totalElements totalPages page size
  }
}
"""


async def test_session_page_numbers(gql: GraphQLClient) -> None:
    ids = await make_sessions(gql, 5, agentId="pager")
    newest = ids[::-1]
    for page, expected in enumerate([newest[0:2], newest[2:4], newest[4:], []]):
        data = await gql.data(SESSION_PAGE, {"page": page, "size": 2})
        p = data["sessionPage"]
        assert [s["id"] for s in p["content"]] == expected
        assert (p["totalElements"], p["totalPages"], p["page"], p["size"]) == (5, 3, page, 2)
    data = await gql.data(SESSION_PAGE, {"page": 0, "size": 5})
    assert data["sessionPage"]["totalPages"] == 1
    assert data["sessionPage"]["content"][0] == {
        "id": newest[0],
        "userId": "local",
        "agentId": "pager",
    }


async def test_session_page_filter_and_empty(gql: GraphQLClient) -> None:
    await record(gql, sessionId="b1", userId="bob")
    await record(gql, sessionId="c1", userId="carol")
    data = await gql.data(SESSION_PAGE, {"filter": {"userId": "bob"}, "page": 0, "size": 20})
    assert data["sessionPage"] == {
        "content": [{"id": "b1", "userId": "bob", "agentId": "finance_agent"}],
        "totalElements": 1,
        "totalPages": 1,
        "page": 0,
        "size": 20,
    }
    data = await gql.data(SESSION_PAGE, {"filter": {"userId": "nobody"}, "page": 0, "size": 20})
    assert data["sessionPage"] == {
        "content": [],
        "totalElements": 0,
        "totalPages": 0,
        "page": 0,
        "size": 20,
    }


async def test_session_page_defaults(gql: GraphQLClient) -> None:
    await make_sessions(gql, 3)
    data = await gql.data("{ sessionPage { totalElements totalPages page size } }")
    assert data["sessionPage"] == {"totalElements": 3, "totalPages": 1, "page": 0, "size": 20}
