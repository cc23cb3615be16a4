"""GraphQL reads through the real app and database: every pinned field and argument of the
query side is read back and compared with what was recorded."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import datetime
from typing import Any

from .helpers import GraphQLClient, record

DATETIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3})?Z$")

CREATE_SESSION = """
mutation Create($input: CreateSessionInput!) {
  createSession(input: $input) { id updatedAt }
}
"""

RECORD_FULL = """
mutation Record($input: RecordRunInput!) { recordRun(input: $input) { id sessionId } }
"""

CHUNKS = [
    {
        "id": "c-a",
        "text": "Q1 revenue: $4.2M",
        "score": 0.91,
        "retrievalScore": 0.8,
        "rerankerScore": 0.95,
        "sourceId": "doc-1",
        "sourceName": "q1-report.pdf",
        "knowledgeBaseId": "kb-1",
        "kbName": "Finance",
        "indexingStrategy": "semantic",
        "meta": {"page": 3, "section": "revenue", "tags": ["q1", {"k": None}]},
        "includedInContext": True,
    },
    {"id": "c-b", "text": "Q1 costs", "score": 0.95, "includedInContext": False},
    {"id": "c-c", "text": "Q1 headcount", "score": 0.5},  # includedInContext defaults to true
    {"id": "c-d", "text": "unscored note"},
    {"id": "c-e", "text": "Q4 outlook", "score": 0.7, "includedInContext": False},
]

DIAGNOSTICS = {
    "query": "Q1 revenue",
    "latency_ms": 42,
    "strategies": ["semantic", "keyword"],
    "rerank": {"model": "rr-1", "enabled": True, "threshold": 0.25},
}

RUN1_MESSAGES = [
    {"role": "USER", "content": "What is our Q1 revenue?"},
    {
        "role": "ASSISTANT",
        "content": "Let me look that up.",
        "toolCalls": [
            {"id": "call-1", "name": "lookup_revenue", "arguments": '{"quarter": "Q1"}'},
            {"id": "call-2", "name": "lookup_costs"},
        ],
    },
    {
        "role": "TOOL",
        "content": '{"revenue": 4200000}',
        "toolCallId": "call-1",
        "name": "lookup_revenue",
        "createdAt": "2026-05-06T10:00:03.500Z",
    },
    {"role": "ASSISTANT", "content": "Q1 revenue was $4.2 million."},
]

# (role, content, runId) of every message of the conversation, in order.
EXPECTED_MESSAGES = [
    ("USER", "What is our Q1 revenue?", "run-1"),
    ("ASSISTANT", "Let me look that up.", "run-1"),
    ("TOOL", '{"revenue": 4200000}', "run-1"),
    ("ASSISTANT", "Q1 revenue was $4.2 million.", "run-1"),
    ("USER", "And Q2?", "run-2"),
    ("USER", "Compare Q1 and Q2", "run-3"),
    ("ASSISTANT", "Q2 was higher.", "run-3"),
]


async def conversation(gql: GraphQLClient, session_id: str = "conv-1") -> None:
    """A session with three runs: one with tools, chunks and diagnostics, one FAILED
    without an answer, one whose final content was given explicitly."""
    await gql.data(
        CREATE_SESSION,
        {
            "input": {
                "id": session_id,
                "title": "Q1 review",
                "agentId": "finance_agent",
                "metadata": {"team": "finance", "tags": ["q1", "rev"], "nested": {"level": 2}},
            }
        },
    )
    await record(
        gql,
        sessionId=session_id,
        runId="run-1",
        createdAt="2026-05-06T10:00:00Z",
        completedAt="2026-05-06T10:00:05.250Z",
        messages=RUN1_MESSAGES,
        retrievedContext=CHUNKS,
        retrievalDiagnostics=DIAGNOSTICS,
        reasoning={"enabled": True, "effort": "high", "budgetTokens": 2048},
        usage={"inputTokens": 120, "outputTokens": 40, "reasoningTokens": 300, "totalTokens": 460},
    )
    await record(
        gql,
        sessionId=session_id,
        runId="run-2",
        agentId="backup_agent",
        status="FAILED",
        error="backend timed out",
        createdAt="2026-05-06T10:01:00Z",
        messages=[{"role": "USER", "content": "And Q2?"}],
    )
    await record(
        gql,
        sessionId=session_id,
        runId="run-3",
        createdAt="2026-05-06T10:02:00Z",
        content="Q2 beat Q1 by 10%.",
        messages=[
            {"role": "USER", "content": "Compare Q1 and Q2"},
            {"role": "ASSISTANT", "content": "Q2 was higher."},
        ],
    )


def parse_dt(value: str) -> datetime:
    assert DATETIME_RE.match(value), value
    return datetime.fromisoformat(value)


def is_uuid4(value: str) -> bool:
    try:
        return uuid.UUID(value).version == 4 and str(uuid.UUID(value)) == value
    except ValueError:
        return False


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


# --- runs -------------------------------------------------------------------------------

RUN_FIELDS = """id sessionId agentId status input content error
  reasoning { enabled effort budgetTokens }
  usage { inputTokens outputTokens reasoningTokens totalTokens }
  createdAt startedAt completedAt retrievalDiagnostics"""


async def test_runs_every_field_oldest_first(gql: GraphQLClient) -> None:
    await conversation(gql)
    data = await gql.data(
        f"""{{ session(id: "conv-1") {{ runs {{ totalCount
              pageInfo {{ hasNextPage hasPreviousPage startCursor endCursor }}
              edges {{ cursor node {{ {RUN_FIELDS} }} }} nodes {{ {RUN_FIELDS} }} }} }} }}"""
    )
    conn = data["session"]["runs"]
    nodes = conn["nodes"]
    assert [e["node"] for e in conn["edges"]] == nodes
    assert conn["totalCount"] == 3
    assert conn["pageInfo"] == {
        "hasNextPage": False,
        "hasPreviousPage": False,
        "startCursor": conn["edges"][0]["cursor"],
        "endCursor": conn["edges"][-1]["cursor"],
    }
    r1, r2, r3 = nodes
    started = r1.pop("startedAt")
    assert r1 == {
        "id": "run-1",
        "sessionId": "conv-1",
        "agentId": "finance_agent",
        "status": "COMPLETED",
        "input": "What is our Q1 revenue?",
        "content": "Q1 revenue was $4.2 million.",
        "error": None,
        "reasoning": {"enabled": True, "effort": "high", "budgetTokens": 2048},
        "usage": {
            "inputTokens": 120,
            "outputTokens": 40,
            "reasoningTokens": 300,
            "totalTokens": 460,
        },
        "createdAt": "2026-05-06T10:00:00Z",
        "completedAt": "2026-05-06T10:00:05.250Z",
        "retrievalDiagnostics": DIAGNOSTICS,
    }
    if started is not None:
        assert parse_dt("2026-05-06T10:00:00Z") <= parse_dt(started)
        assert parse_dt(started) <= parse_dt("2026-05-06T10:00:05.250Z")
    assert r2["id"] == "run-2" and r2["status"] == "FAILED"
    assert r2["agentId"] == "backup_agent"
    assert r2["error"] == "backend timed out"
    assert r2["input"] == "And Q2?" and r2["content"] is None
    assert r2["reasoning"] is None and r2["usage"] is None
    assert r2["retrievalDiagnostics"] is None
    assert r2["createdAt"] == "2026-05-06T10:01:00Z"
    assert r3["id"] == "run-3" and r3["content"] == "Q2 beat Q1 by 10%."
    assert r3["input"] == "Compare Q1 and Q2"


RUN_PAGE = """
query($first: Int, $after: String, $last: Int, $before: String, $status: [RunStatus!]) {
  session(id: "conv-1") {
    runs(first: $first, after: $after, last: $last, before: $before, status: $status) {
      totalCount
      edges { cursor node { id status } }
      pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    }
  }
}
"""


async def run_page(gql: GraphQLClient, **args: Any) -> dict[str, Any]:
    return (await gql.data(RUN_PAGE, args))["session"]["runs"]


def run_ids(conn: dict[str, Any]) -> list[str]:
    return [e["node"]["id"] for e in conn["edges"]]


async def test_runs_status_filter(gql: GraphQLClient) -> None:
    await conversation(gql)
    conn = await run_page(gql, status=["FAILED"])
    assert run_ids(conn) == ["run-2"] and conn["totalCount"] == 1
    conn = await run_page(gql, status=["COMPLETED"])
    assert run_ids(conn) == ["run-1", "run-3"] and conn["totalCount"] == 2
    conn = await run_page(gql, status=["COMPLETED", "FAILED"])
    assert run_ids(conn) == ["run-1", "run-2", "run-3"]
    conn = await run_page(gql, status=["QUEUED", "RUNNING", "CANCELLED"])
    assert conn["edges"] == [] and conn["totalCount"] == 0
    conn = await run_page(gql, status=["COMPLETED"], first=1)
    assert run_ids(conn) == ["run-1"]
    assert conn["pageInfo"]["hasNextPage"] is True
    conn = await run_page(gql, status=["COMPLETED"], first=1, after=conn["pageInfo"]["endCursor"])
    assert run_ids(conn) == ["run-3"]
    assert conn["pageInfo"]["hasNextPage"] is False
    assert conn["pageInfo"]["hasPreviousPage"] is True


async def test_runs_windows(gql: GraphQLClient) -> None:
    await conversation(gql)
    conn = await run_page(gql, first=2)
    assert run_ids(conn) == ["run-1", "run-2"]
    assert conn["pageInfo"]["hasNextPage"] is True
    assert conn["pageInfo"]["hasPreviousPage"] is False
    conn = await run_page(gql, first=2, after=conn["pageInfo"]["endCursor"])
    assert run_ids(conn) == ["run-3"]
    assert conn["pageInfo"]["hasNextPage"] is False
    assert conn["pageInfo"]["hasPreviousPage"] is True
    conn = await run_page(gql, last=1)
    assert run_ids(conn) == ["run-3"]
    assert conn["pageInfo"]["hasPreviousPage"] is True
    assert conn["pageInfo"]["hasNextPage"] is False
    conn = await run_page(gql, last=5, before=conn["pageInfo"]["startCursor"])
    assert run_ids(conn) == ["run-1", "run-2"]
    assert conn["pageInfo"]["hasPreviousPage"] is False
    assert conn["pageInfo"]["hasNextPage"] is True
    assert conn["totalCount"] == 3


async def test_session_run_by_id(gql: GraphQLClient) -> None:
    await conversation(gql)
    data = await gql.data(
        """{ session(id: "conv-1") {
              two: run(id: "run-2") { id sessionId status error input }
              none: run(id: "run-9") { id } } }"""
    )
    assert data["session"] == {
        "two": {
            "id": "run-2",
            "sessionId": "conv-1",
            "status": "FAILED",
            "error": "backend timed out",
            "input": "And Q2?",
        },
        "none": None,
    }


async def test_query_run_by_session_and_run_id(gql: GraphQLClient) -> None:
    await conversation(gql)
    await conversation(gql, "conv-2")
    other = await record(gql, sessionId="conv-3", runId="only-here")
    data = await gql.data(
        """query($other: ID!) {
             found: run(sessionId: "conv-1", runId: "run-3") { id sessionId content }
             wrongSession: run(sessionId: "conv-1", runId: $other) { id }
             missingSession: run(sessionId: "nope", runId: "run-1") { id }
             missingRun: run(sessionId: "conv-1", runId: "run-42") { id }
           }""",
        {"other": other["id"]},
    )
    assert data == {
        "found": {"id": "run-3", "sessionId": "conv-1", "content": "Q2 beat Q1 by 10%."},
        "wrongSession": None,
        "missingSession": None,
        "missingRun": None,
    }
    # The same run id in two sessions is two runs.
    data = await gql.data(
        '{ run(sessionId: "conv-2", runId: "run-1") { sessionId session { id } } }'
    )
    assert data["run"] == {"sessionId": "conv-2", "session": {"id": "conv-2"}}


async def test_message_run(gql: GraphQLClient) -> None:
    await conversation(gql)
    data = await gql.data(
        """{ session(id: "conv-1") { messages { nodes { runId run { id status sessionId } } } } }"""
    )
    nodes = data["session"]["messages"]["nodes"]
    status = {"run-1": "COMPLETED", "run-2": "FAILED", "run-3": "COMPLETED"}
    assert [m["runId"] for m in nodes] == [r for _, _, r in EXPECTED_MESSAGES]
    for m in nodes:
        assert m["run"] == {"id": m["runId"], "status": status[m["runId"]], "sessionId": "conv-1"}


CHUNK_FIELDS = """id text score retrievalScore rerankerScore sourceId sourceName
  knowledgeBaseId kbName indexingStrategy meta includedInContext"""


async def test_run_retrieved_context_every_field_in_rank_order(gql: GraphQLClient) -> None:
    await conversation(gql)
    data = await gql.data(
        f'{{ run(sessionId: "conv-1", runId: "run-1") {{ retrievedContext {{ {CHUNK_FIELDS} }} }} }}'
    )
    got = data["run"]["retrievedContext"]
    assert [c["id"] for c in got] == ["c-a", "c-b", "c-c", "c-d", "c-e"]
    assert got[0] == CHUNKS[0]
    for chunk, sent in zip(got[1:], CHUNKS[1:], strict=True):
        assert chunk["text"] == sent["text"]
        assert chunk["score"] == sent.get("score")
        assert chunk["includedInContext"] is sent.get("includedInContext", True)
        for absent in ("retrievalScore", "rerankerScore", "sourceId", "sourceName"):
            assert chunk[absent] is None
        for absent in ("knowledgeBaseId", "kbName", "indexingStrategy"):
            assert chunk[absent] is None


RUN_CHUNKS = """
query($included: Boolean, $min: Float) {
  run(sessionId: "conv-1", runId: "run-1") {
    retrievedContext(includedOnly: $included, minScore: $min) { id }
  }
}
"""


async def test_run_retrieved_context_filters(gql: GraphQLClient) -> None:
    await conversation(gql)

    async def ids(**args: Any) -> list[str]:
        data = await gql.data(RUN_CHUNKS, args)
        return [c["id"] for c in data["run"]["retrievedContext"]]

    assert await ids() == ["c-a", "c-b", "c-c", "c-d", "c-e"]
    assert await ids(included=False) == ["c-a", "c-b", "c-c", "c-d", "c-e"]
    assert await ids(included=True) == ["c-a", "c-c", "c-d"]
    # minScore is inclusive, keeps rank order, and an unscored chunk does not pass it.
    assert await ids(min=0.7) == ["c-a", "c-b", "c-e"]
    assert await ids(min=0.92) == ["c-b"]
    assert await ids(min=0.0) == ["c-a", "c-b", "c-c", "c-e"]
    assert await ids(min=0.99) == []
    assert await ids(included=True, min=0.5) == ["c-a", "c-c"]


async def test_run_without_chunks_has_empty_retrieved_context(gql: GraphQLClient) -> None:
    await conversation(gql)
    data = await gql.data(
        """{ a: run(sessionId: "conv-1", runId: "run-2") { retrievedContext { id } }
             b: run(sessionId: "conv-1", runId: "run-3") { retrievedContext(includedOnly: true) { id } } }"""
    )
    assert data == {"a": {"retrievedContext": []}, "b": {"retrievedContext": []}}


async def test_message_retrieved_context_is_the_runs_chunks_on_assistant_messages(
    gql: GraphQLClient,
) -> None:
    await conversation(gql)
    data = await gql.data(
        f"""{{ session(id: "conv-1") {{ messages {{ nodes {{ role runId
              all: retrievedContext {{ {CHUNK_FIELDS} }}
              included: retrievedContext(includedOnly: true) {{ id }}
              scored: retrievedContext(minScore: 0.7) {{ id }}
              both: retrievedContext(includedOnly: true, minScore: 0.7) {{ id }} }} }} }} }}"""
    )
    nodes = data["session"]["messages"]["nodes"]
    for m in nodes:
        ids = [c["id"] for c in m["all"]]
        if m["role"] == "ASSISTANT" and m["runId"] == "run-1":
            assert ids == ["c-a", "c-b", "c-c", "c-d", "c-e"]
            assert m["all"][0] == CHUNKS[0]
            assert [c["id"] for c in m["included"]] == ["c-a", "c-c", "c-d"]
            assert [c["id"] for c in m["scored"]] == ["c-a", "c-b", "c-e"]
            assert [c["id"] for c in m["both"]] == ["c-a"]
        else:
            assert ids == [] and m["included"] == [] and m["scored"] == [] and m["both"] == []
    assert sum(1 for m in nodes if m["all"]) == 2


async def test_run_messages(gql: GraphQLClient) -> None:
    await conversation(gql)
    data = await gql.data(
        """{ session(id: "conv-1") {
              messages { nodes { id } }
              runs { nodes { id messages { id role content runId toolCallId } } } } }"""
    )
    all_ids = [m["id"] for m in data["session"]["messages"]["nodes"]]
    runs = data["session"]["runs"]["nodes"]
    r1, r2, r3 = (r["messages"] for r in runs)
    assert [(m["role"], m["content"]) for m in r1] == [
        (r, c) for r, c, run in EXPECTED_MESSAGES if run == "run-1"
    ]
    assert r1[2]["toolCallId"] == "call-1"
    assert [m["content"] for m in r2] == ["And Q2?"]
    assert [m["content"] for m in r3] == ["Compare Q1 and Q2", "Q2 was higher."]
    assert [m["id"] for m in r1 + r2 + r3] == all_ids
    assert {m["runId"] for m in r1} == {"run-1"}


async def test_run_session(gql: GraphQLClient) -> None:
    await conversation(gql)
    data = await gql.data(
        """{ run(sessionId: "conv-1", runId: "run-2") {
              session { id title userId runCount messageCount
                        run(id: "run-3") { content } } } }"""
    )
    assert data["run"]["session"] == {
        "id": "conv-1",
        "title": "Q1 review",
        "userId": "local",
        "runCount": 3,
        "messageCount": 7,
        "run": {"content": "Q2 beat Q1 by 10%."},
    }


async def test_run_input_is_the_first_user_message(gql: GraphQLClient) -> None:
    run = await record(
        gql,
        messages=[
            {"role": "SYSTEM", "content": "You answer finance questions."},
            {"role": "USER", "content": "first question"},
            {"role": "ASSISTANT", "content": "an answer"},
            {"role": "USER", "content": "second question"},
        ],
    )
    assert run["input"] == "first question"
    data = await gql.data(
        "query($s: ID!, $r: ID!) { run(sessionId: $s, runId: $r) { input content } }",
        {"s": run["sessionId"], "r": run["id"]},
    )
    assert data["run"] == {"input": "first question", "content": "an answer"}


async def test_run_input_is_null_without_a_user_message(gql: GraphQLClient) -> None:
    run = await record(gql, messages=[{"role": "ASSISTANT", "content": "unprompted"}])
    assert run["input"] is None
    assert run["content"] == "unprompted"


async def test_run_content_is_the_last_assistant_message(gql: GraphQLClient) -> None:
    run = await record(
        gql,
        messages=[
            {"role": "USER", "content": "q"},
            {"role": "ASSISTANT", "content": "thinking out loud"},
            {"role": "TOOL", "content": "tool output", "toolCallId": "t1", "name": "calc"},
            {"role": "ASSISTANT", "content": "the final answer"},
            {"role": "USER", "content": "a trailing user message"},
        ],
    )
    assert run["content"] == "the final answer"
    data = await gql.data(
        "query($s: ID!, $r: ID!) { run(sessionId: $s, runId: $r) { content } }",
        {"s": run["sessionId"], "r": run["id"]},
    )
    assert data["run"]["content"] == "the final answer"


async def test_run_content_given_in_input_wins(gql: GraphQLClient) -> None:
    run = await record(
        gql,
        content="the stored answer",
        messages=[{"role": "USER", "content": "q"}, {"role": "ASSISTANT", "content": "a"}],
    )
    assert run["content"] == "the stored answer"
    data = await gql.data(
        "query($s: ID!, $r: ID!) { run(sessionId: $s, runId: $r) { content } }",
        {"s": run["sessionId"], "r": run["id"]},
    )
    assert data["run"]["content"] == "the stored answer"


async def test_retrieval_diagnostics_round_trip(gql: GraphQLClient) -> None:
    diagnostics = {
        "empty": {},
        "list": [1, 2.5, "three", None, True, {"deep": [[]]}],
        "unicode": "naïve café ✓",
        "price$": 3,
    }
    run = await record(gql, retrievalDiagnostics=diagnostics)
    data = await gql.data(
        "query($s: ID!, $r: ID!) { run(sessionId: $s, runId: $r) { retrievalDiagnostics } }",
        {"s": run["sessionId"], "r": run["id"]},
    )
    assert data["run"]["retrievalDiagnostics"] == diagnostics


async def test_datetime_output_is_rfc3339_utc_with_z(gql: GraphQLClient) -> None:
    run = await record(
        gql,
        createdAt="2026-05-06T12:00:00+02:00",
        completedAt="2026-05-06T06:00:01.123-04:00",
        messages=[
            {"role": "USER", "content": "q", "createdAt": "2026-05-06T10:00:00.000+00:00"},
            {"role": "ASSISTANT", "content": "a", "createdAt": "2026-05-06T10:00:00.5+00:00"},
        ],
    )
    data = await gql.data(
        """query($s: ID!, $r: ID!) {
             run(sessionId: $s, runId: $r) { createdAt startedAt completedAt
               messages { createdAt } session { createdAt updatedAt } } }""",
        {"s": run["sessionId"], "r": run["id"]},
    )
    r = data["run"]
    assert r["createdAt"] == "2026-05-06T10:00:00Z"
    assert r["completedAt"] == "2026-05-06T10:00:01.123Z"
    assert [m["createdAt"] for m in r["messages"]] == [
        "2026-05-06T10:00:00Z",
        "2026-05-06T10:00:00.500Z",
    ]
    for value in (r["startedAt"], r["session"]["createdAt"], r["session"]["updatedAt"]):
        if value is not None:
            assert DATETIME_RE.match(value), value


async def test_datetime_input_accepts_rfc3339_forms(gql: GraphQLClient) -> None:
    # RFC 3339 5.6: any number of fraction digits; "T" and "Z" may be lower case.
    forms = {
        "2026-05-06T10:00:00.1Z": "2026-05-06T10:00:00.100Z",
        "2026-05-06T10:00:00.123456789Z": "2026-05-06T10:00:00.123Z",
        "2026-05-06t10:00:00z": "2026-05-06T10:00:00Z",
        "2026-05-06T11:30:00+01:30": "2026-05-06T10:00:00Z",
    }
    for given, served in forms.items():
        body = await gql(
            RECORD_FULL, {"input": {"agentId": "a", "messages": [], "createdAt": given}}
        )
        assert "errors" not in body, (given, body)
        run = body["data"]["recordRun"]
        data = await gql.data(
            "query($s: ID!, $r: ID!) { run(sessionId: $s, runId: $r) { createdAt } }",
            {"s": run["sessionId"], "r": run["id"]},
        )
        assert data["run"]["createdAt"] == served, given


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
