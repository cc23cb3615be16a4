"""GraphQL queries: runs, in a session and by id, with their chunks, reasoning and usage."""

from __future__ import annotations

from typing import Any

from .graphql_conversation import (
    CHUNKS,
    DATETIME_RE,
    DIAGNOSTICS,
    EXPECTED_MESSAGES,
    RECORD_FULL,
    conversation,
    parse_dt,
)
from .helpers import GraphQLClient, record

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
