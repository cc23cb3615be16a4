"""GraphQL queries: a session's messages, their windows, cursors, filters and context."""

from __future__ import annotations

from typing import Any

from .graphql_conversation import (
    EXPECTED_MESSAGES,
    conversation,
    is_uuid4,
)
from .helpers import GraphQLClient, record

# --- messages ---------------------------------------------------------------------------

MESSAGE_FIELDS = "id role content createdAt runId name toolCalls { id name arguments } toolCallId"


async def test_messages_every_field_in_order(gql: GraphQLClient) -> None:
    await conversation(gql)
    data = await gql.data(
        f"""{{ session(id: "conv-1") {{ messages {{
              totalCount
              pageInfo {{ hasNextPage hasPreviousPage startCursor endCursor }}
              edges {{ cursor node {{ {MESSAGE_FIELDS} }} }}
              nodes {{ {MESSAGE_FIELDS} }} }} }} }}"""
    )
    conn = data["session"]["messages"]
    nodes = conn["nodes"]
    assert [(m["role"], m["content"], m["runId"]) for m in nodes] == EXPECTED_MESSAGES
    assert conn["totalCount"] == 7
    assert [e["node"] for e in conn["edges"]] == nodes
    cursors = [e["cursor"] for e in conn["edges"]]
    assert len(set(cursors)) == 7 and all(isinstance(c, str) and c for c in cursors)
    assert conn["pageInfo"] == {
        "hasNextPage": False,
        "hasPreviousPage": False,
        "startCursor": cursors[0],
        "endCursor": cursors[-1],
    }
    ids = [m["id"] for m in nodes]
    assert len(set(ids)) == 7 and all(is_uuid4(i) for i in ids)

    user, call, tool, answer = nodes[:4]
    assert user["toolCalls"] == [] and user["toolCallId"] is None and user["name"] is None
    assert call["toolCalls"] == [
        {"id": "call-1", "name": "lookup_revenue", "arguments": '{"quarter": "Q1"}'},
        {"id": "call-2", "name": "lookup_costs", "arguments": None},
    ]
    assert call["toolCallId"] is None
    assert tool["toolCallId"] == "call-1" and tool["name"] == "lookup_revenue"
    assert tool["toolCalls"] == []
    assert answer["toolCalls"] == []
    # A message's createdAt is its own when given, else its run's createdAt.
    assert user["createdAt"] == "2026-05-06T10:00:00Z"
    assert tool["createdAt"] == "2026-05-06T10:00:03.500Z"
    assert nodes[4]["createdAt"] == "2026-05-06T10:01:00Z"


async def test_messages_last_two(gql: GraphQLClient) -> None:
    await conversation(gql)
    data = await gql.data(
        """{ session(id: "conv-1") { messages(last: 2) { totalCount
              nodes { content } edges { cursor }
              pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } } }"""
    )
    conn = data["session"]["messages"]
    assert [m["content"] for m in conn["nodes"]] == ["Compare Q1 and Q2", "Q2 was higher."]
    assert conn["totalCount"] == 7
    assert conn["pageInfo"] == {
        "hasNextPage": False,
        "hasPreviousPage": True,
        "startCursor": conn["edges"][0]["cursor"],
        "endCursor": conn["edges"][1]["cursor"],
    }


MESSAGE_PAGE = """
query($first: Int, $after: String, $last: Int, $before: String, $roles: [Role!]) {
  session(id: "conv-1") {
    messages(first: $first, after: $after, last: $last, before: $before, roles: $roles) {
      totalCount
      edges { cursor node { content role } }
      pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    }
  }
}
"""


async def message_page(gql: GraphQLClient, **args: Any) -> dict[str, Any]:
    return (await gql.data(MESSAGE_PAGE, args))["session"]["messages"]


def contents(conn: dict[str, Any]) -> list[str]:
    return [e["node"]["content"] for e in conn["edges"]]


async def test_messages_forward_pages_visit_every_message_once(gql: GraphQLClient) -> None:
    await conversation(gql)
    seen: list[str] = []
    pages = []
    after = None
    while True:
        conn = await message_page(gql, first=3, after=after)
        pages.append(conn)
        seen += contents(conn)
        assert conn["totalCount"] == 7
        assert conn["pageInfo"]["startCursor"] == conn["edges"][0]["cursor"]
        assert conn["pageInfo"]["endCursor"] == conn["edges"][-1]["cursor"]
        if not conn["pageInfo"]["hasNextPage"]:
            break
        after = conn["pageInfo"]["endCursor"]
        assert len(pages) < 5
    assert seen == [c for _, c, _ in EXPECTED_MESSAGES]
    assert [len(p["edges"]) for p in pages] == [3, 3, 1]
    assert [p["pageInfo"]["hasPreviousPage"] for p in pages] == [False, True, True]
    assert [p["pageInfo"]["hasNextPage"] for p in pages] == [True, True, False]


async def test_messages_backward_pages_visit_every_message_once(gql: GraphQLClient) -> None:
    await conversation(gql)
    seen: list[str] = []
    pages = []
    before = None
    while True:
        conn = await message_page(gql, last=3, before=before)
        pages.append(conn)
        seen = contents(conn) + seen
        assert conn["totalCount"] == 7
        assert conn["pageInfo"]["startCursor"] == conn["edges"][0]["cursor"]
        assert conn["pageInfo"]["endCursor"] == conn["edges"][-1]["cursor"]
        if not conn["pageInfo"]["hasPreviousPage"]:
            break
        before = conn["pageInfo"]["startCursor"]
        assert len(pages) < 5
    assert seen == [c for _, c, _ in EXPECTED_MESSAGES]
    assert [len(p["edges"]) for p in pages] == [3, 3, 1]
    assert [p["pageInfo"]["hasNextPage"] for p in pages] == [False, True, True]
    assert [p["pageInfo"]["hasPreviousPage"] for p in pages] == [True, True, False]


async def test_messages_between_after_and_before(gql: GraphQLClient) -> None:
    await conversation(gql)
    every = await message_page(gql)
    cursors = [e["cursor"] for e in every["edges"]]
    conn = await message_page(gql, after=cursors[1], before=cursors[5])
    assert contents(conn) == [c for _, c, _ in EXPECTED_MESSAGES[2:5]]
    assert conn["pageInfo"]["hasNextPage"] is True
    assert conn["pageInfo"]["hasPreviousPage"] is True
    assert conn["totalCount"] == 7
    # The cursors of a window are the cursors of the same messages in the full list.
    assert [e["cursor"] for e in conn["edges"]] == cursors[2:5]

    conn = await message_page(gql, first=2, after=cursors[1], before=cursors[5])
    assert contents(conn) == [c for _, c, _ in EXPECTED_MESSAGES[2:4]]
    assert conn["pageInfo"]["hasNextPage"] is True

    conn = await message_page(gql, last=2, after=cursors[1], before=cursors[5])
    assert contents(conn) == [c for _, c, _ in EXPECTED_MESSAGES[3:5]]
    assert conn["pageInfo"]["hasPreviousPage"] is True


async def test_messages_after_the_last_cursor_is_empty(gql: GraphQLClient) -> None:
    await conversation(gql)
    every = await message_page(gql)
    conn = await message_page(gql, after=every["pageInfo"]["endCursor"])
    assert conn["edges"] == []
    assert conn["totalCount"] == 7
    assert conn["pageInfo"] == {
        "hasNextPage": False,
        "hasPreviousPage": True,
        "startCursor": None,
        "endCursor": None,
    }
    conn = await message_page(gql, last=5, before=every["pageInfo"]["startCursor"])
    assert conn["edges"] == []
    assert conn["pageInfo"]["hasPreviousPage"] is False
    assert conn["pageInfo"]["hasNextPage"] is True


async def test_messages_first_zero_is_an_empty_page(gql: GraphQLClient) -> None:
    await conversation(gql)
    conn = await message_page(gql, first=0)
    assert conn["edges"] == []
    assert conn["totalCount"] == 7
    assert conn["pageInfo"]["startCursor"] is None and conn["pageInfo"]["endCursor"] is None
    # Relay: with `first`, hasNextPage is whether more than `first` edges follow.
    assert conn["pageInfo"]["hasNextPage"] is True


async def test_messages_default_window_is_one_hundred(gql: GraphQLClient) -> None:
    msgs = [{"role": "USER", "content": f"m{i}"} for i in range(105)]
    await record(gql, sessionId="long", messages=msgs)
    data = await gql.data(
        """{ session(id: "long") { messageCount messages { totalCount nodes { content }
              pageInfo { hasNextPage hasPreviousPage } } } }"""
    )
    conn = data["session"]["messages"]
    assert data["session"]["messageCount"] == 105
    assert conn["totalCount"] == 105
    assert [m["content"] for m in conn["nodes"]] == [f"m{i}" for i in range(100)]
    assert conn["pageInfo"] == {"hasNextPage": True, "hasPreviousPage": False}


async def test_messages_roles_filter(gql: GraphQLClient) -> None:
    await conversation(gql)
    conn = await message_page(gql, roles=["ASSISTANT"])
    assert contents(conn) == [c for r, c, _ in EXPECTED_MESSAGES if r == "ASSISTANT"]
    assert conn["totalCount"] == 3
    assert {e["node"]["role"] for e in conn["edges"]} == {"ASSISTANT"}

    conn = await message_page(gql, roles=["USER", "TOOL"])
    assert contents(conn) == [c for r, c, _ in EXPECTED_MESSAGES if r in ("USER", "TOOL")]
    assert conn["totalCount"] == 4

    conn = await message_page(gql, roles=["SYSTEM"])
    assert conn["edges"] == [] and conn["totalCount"] == 0
    assert conn["pageInfo"]["hasNextPage"] is False
    assert conn["pageInfo"]["hasPreviousPage"] is False


async def test_messages_roles_filter_pages(gql: GraphQLClient) -> None:
    await conversation(gql)
    users = [c for r, c, _ in EXPECTED_MESSAGES if r == "USER"]
    first = await message_page(gql, roles=["USER"], first=2)
    assert contents(first) == users[:2]
    assert first["totalCount"] == 3
    assert first["pageInfo"]["hasNextPage"] is True
    assert first["pageInfo"]["hasPreviousPage"] is False
    rest = await message_page(gql, roles=["USER"], first=2, after=first["pageInfo"]["endCursor"])
    assert contents(rest) == users[2:]
    assert rest["pageInfo"]["hasNextPage"] is False
    assert rest["pageInfo"]["hasPreviousPage"] is True
    back = await message_page(gql, roles=["USER"], last=1, before=rest["pageInfo"]["startCursor"])
    assert contents(back) == [users[1]]
    assert back["pageInfo"]["hasPreviousPage"] is True
    assert back["pageInfo"]["hasNextPage"] is True
