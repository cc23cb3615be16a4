"""GraphQL queries: the viewer and one session, read back as recorded."""

from __future__ import annotations

from .graphql_conversation import (
    CREATE_SESSION,
    conversation,
    parse_dt,
)
from .helpers import GraphQLClient

# --- viewer, session -------------------------------------------------------------------


async def test_viewer_in_open_mode_is_the_local_administrator(gql: GraphQLClient) -> None:
    data = await gql.data("{ viewer { userId isAdmin } }")
    assert data == {"viewer": {"userId": "local", "isAdmin": True}}


async def test_session_is_null_when_missing(gql: GraphQLClient) -> None:
    await conversation(gql)
    data = await gql.data('{ session(id: "no-such-session") { id title } }')
    assert data == {"session": None}


async def test_session_id_that_is_not_a_client_id_reads_as_null(gql: GraphQLClient) -> None:
    data = await gql.data("query($id: ID!) { session(id: $id) { id } }", {"id": "not an id/!"})
    assert data == {"session": None}


async def test_session_fields_read_back(gql: GraphQLClient) -> None:
    await conversation(gql)
    data = await gql.data(
        """{ session(id: "conv-1") { id userId agentId title metadata createdAt updatedAt
                                     messageCount runCount } }"""
    )
    s = data["session"]
    assert s["id"] == "conv-1"
    assert s["userId"] == "local"
    assert s["agentId"] == "finance_agent"
    assert s["title"] == "Q1 review"
    assert s["metadata"] == {"team": "finance", "tags": ["q1", "rev"], "nested": {"level": 2}}
    assert s["messageCount"] == 7
    assert s["runCount"] == 3
    assert parse_dt(s["createdAt"]) <= parse_dt(s["updatedAt"])


async def test_session_without_runs_has_empty_connections(gql: GraphQLClient) -> None:
    await gql.data(CREATE_SESSION, {"input": {"id": "empty"}})
    data = await gql.data(
        """{ session(id: "empty") { messageCount runCount
              messages { edges { cursor } nodes { id } totalCount
                         pageInfo { hasNextPage hasPreviousPage startCursor endCursor } }
              runs { edges { cursor } nodes { id } totalCount
                     pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } } }"""
    )
    empty = {
        "edges": [],
        "nodes": [],
        "totalCount": 0,
        "pageInfo": {
            "hasNextPage": False,
            "hasPreviousPage": False,
            "startCursor": None,
            "endCursor": None,
        },
    }
    assert data["session"] == {"messageCount": 0, "runCount": 0, "messages": empty, "runs": empty}
