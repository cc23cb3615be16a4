"""GraphQL mutations through the real app and database: createSession, recordRun (new,
appended, imported, idempotent retries) and deleteSession, each read back afterwards."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime
from typing import Any

from .helpers import GraphQLClient, record

CREATE_SESSION = """
mutation Create($input: CreateSessionInput!) {
  createSession(input: $input) {
    id userId agentId title metadata createdAt updatedAt messageCount runCount
  }
}
"""

SESSION = """
query($id: ID!) {
  session(id: $id) {
    id userId agentId title metadata createdAt updatedAt messageCount runCount
    messages { totalCount nodes { id role content runId name toolCallId
                                  toolCalls { id name arguments } createdAt } }
    runs { totalCount nodes { id status input content } }
  }
}
"""

RUN_FIELDS = """id sessionId agentId status input content error
  reasoning { enabled effort budgetTokens }
  usage { inputTokens outputTokens reasoningTokens totalTokens }
  createdAt startedAt completedAt retrievalDiagnostics
  retrievedContext { id text score includedInContext meta }
  messages { role content name toolCallId toolCalls { id name arguments } }"""

RECORD_RUN = f"""
mutation Record($input: RecordRunInput!) {{ recordRun(input: $input) {{ {RUN_FIELDS} }} }}
"""

READ_RUN = f"""
query($s: ID!, $r: ID!) {{ run(sessionId: $s, runId: $r) {{ {RUN_FIELDS} }} }}
"""

DELETE = "mutation($id: ID!) { deleteSession(id: $id) }"

QA = [
    {"role": "USER", "content": "What is our Q1 revenue?"},
    {"role": "ASSISTANT", "content": "Your Q1 revenue was $4.2 million."},
]


def is_uuid4(value: str) -> bool:
    try:
        return uuid.UUID(value).version == 4 and str(uuid.UUID(value)) == value
    except ValueError:
        return False


def dt(value: str) -> datetime:
    return datetime.fromisoformat(value)


async def read_session(gql: GraphQLClient, session_id: str) -> dict[str, Any] | None:
    return (await gql.data(SESSION, {"id": session_id}))["session"]


async def record_full(gql: GraphQLClient, **fields: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {"agentId": "finance_agent", "messages": QA}
    payload.update(fields)
    return (await gql.data(RECORD_RUN, {"input": payload}))["recordRun"]


async def read_run(gql: GraphQLClient, session_id: str, run_id: str) -> dict[str, Any] | None:
    return (await gql.data(READ_RUN, {"s": session_id, "r": run_id}))["run"]


# --- createSession ----------------------------------------------------------------------


async def test_create_session_with_every_field(gql: GraphQLClient) -> None:
    metadata = {"team": "finance", "n": 3, "tags": ["a", "b"], "deep": {"x": [1, {"y": None}]}}
    data = await gql.data(
        CREATE_SESSION,
        {
            "input": {
                "id": "sess-1",
                "title": "Q1 review",
                "agentId": "finance_agent",
                "metadata": metadata,
            }
        },
    )
    s = data["createSession"]
    assert s["id"] == "sess-1"
    assert s["userId"] == "local"
    assert s["agentId"] == "finance_agent"
    assert s["title"] == "Q1 review"
    assert s["metadata"] == metadata
    assert s["messageCount"] == 0 and s["runCount"] == 0
    assert s["createdAt"] == s["updatedAt"]
    stored = await read_session(gql, "sess-1")
    assert stored is not None
    assert {k: stored[k] for k in s} == s
    assert stored["messages"] == {"totalCount": 0, "nodes": []}
    assert stored["runs"] == {"totalCount": 0, "nodes": []}


async def test_create_session_without_id_makes_a_uuid4(gql: GraphQLClient) -> None:
    a = (await gql.data(CREATE_SESSION, {"input": {}}))["createSession"]
    b = (await gql.data(CREATE_SESSION, {"input": {}}))["createSession"]
    assert is_uuid4(a["id"]) and is_uuid4(b["id"]) and a["id"] != b["id"]
    assert a["userId"] == "local"
    assert a["title"] is None and a["agentId"] is None
    assert (await read_session(gql, a["id"]))["id"] == a["id"]


async def test_create_session_retry_returns_the_existing_session(gql: GraphQLClient) -> None:
    first = (
        await gql.data(
            CREATE_SESSION,
            {"input": {"id": "retry-me", "title": "original", "metadata": {"v": 1}}},
        )
    )["createSession"]
    await asyncio.sleep(0.005)
    again = (
        await gql.data(
            CREATE_SESSION,
            {"input": {"id": "retry-me", "title": "changed", "metadata": {"v": 2}}},
        )
    )["createSession"]
    assert again == first
    stored = await read_session(gql, "retry-me")
    assert stored["title"] == "original" and stored["metadata"] == {"v": 1}
    assert stored["createdAt"] == first["createdAt"]
    listed = await gql.data("{ sessions { totalCount nodes { id } } }")
    assert listed["sessions"] == {"totalCount": 1, "nodes": [{"id": "retry-me"}]}


async def test_create_session_retry_after_runs_returns_the_session_as_it_is(
    gql: GraphQLClient,
) -> None:
    await gql.data(CREATE_SESSION, {"input": {"id": "busy", "title": "t"}})
    await record(gql, sessionId="busy")
    again = (await gql.data(CREATE_SESSION, {"input": {"id": "busy"}}))["createSession"]
    assert again["messageCount"] == 2 and again["runCount"] == 1 and again["title"] == "t"
    assert (await read_session(gql, "busy"))["messageCount"] == 2


async def test_create_session_for_another_user_as_administrator(gql: GraphQLClient) -> None:
    s = (await gql.data(CREATE_SESSION, {"input": {"id": "bobs", "userId": "bob"}}))[
        "createSession"
    ]
    assert s["userId"] == "bob"
    assert (await read_session(gql, "bobs"))["userId"] == "bob"


async def test_create_session_accepts_longest_client_id(gql: GraphQLClient) -> None:
    sid = "aZ09._:-" * 16  # 128 characters, every allowed kind
    s = (await gql.data(CREATE_SESSION, {"input": {"id": sid}}))["createSession"]
    assert s["id"] == sid
    assert (await read_session(gql, sid))["id"] == sid


async def test_create_session_metadata_keys_with_dollar_inside_are_kept(
    gql: GraphQLClient,
) -> None:
    metadata = {"price$": 1, "a": {"b$c": [{"d-e": "f"}]}}
    s = (await gql.data(CREATE_SESSION, {"input": {"id": "md", "metadata": metadata}}))[
        "createSession"
    ]
    assert s["metadata"] == metadata
    assert (await read_session(gql, "md"))["metadata"] == metadata


# --- recordRun --------------------------------------------------------------------------


async def test_record_run_without_session_id_creates_a_session(gql: GraphQLClient) -> None:
    run = await record_full(gql)
    assert is_uuid4(run["sessionId"]) and is_uuid4(run["id"])
    assert run["status"] == "COMPLETED"
    assert run["input"] == "What is our Q1 revenue?"
    assert run["content"] == "Your Q1 revenue was $4.2 million."
    s = await read_session(gql, run["sessionId"])
    assert s["userId"] == "local"
    assert s["agentId"] == "finance_agent"
    assert s["messageCount"] == 2 and s["runCount"] == 1
    assert [(m["role"], m["content"], m["runId"]) for m in s["messages"]["nodes"]] == [
        ("USER", "What is our Q1 revenue?", run["id"]),
        ("ASSISTANT", "Your Q1 revenue was $4.2 million.", run["id"]),
    ]
    assert all(is_uuid4(m["id"]) for m in s["messages"]["nodes"])
    assert s["runs"]["nodes"] == [
        {
            "id": run["id"],
            "status": "COMPLETED",
            "input": "What is our Q1 revenue?",
            "content": "Your Q1 revenue was $4.2 million.",
        }
    ]
    other = await record_full(gql)
    assert other["sessionId"] != run["sessionId"]


async def test_record_run_appends_to_an_existing_session(gql: GraphQLClient) -> None:
    created = (
        await gql.data(
            CREATE_SESSION,
            {"input": {"id": "chat", "title": "kept", "agentId": "a0", "metadata": {"k": 1}}},
        )
    )["createSession"]
    await asyncio.sleep(0.005)
    r1 = await record_full(gql, sessionId="chat", runId="r1")
    after_one = await read_session(gql, "chat")
    await asyncio.sleep(0.005)
    r2 = await record_full(
        gql,
        sessionId="chat",
        runId="r2",
        messages=[{"role": "USER", "content": "And Q2?"}, {"role": "ASSISTANT", "content": "5M"}],
    )
    assert (r1["sessionId"], r2["sessionId"]) == ("chat", "chat")
    s = await read_session(gql, "chat")
    assert s["title"] == "kept" and s["metadata"] == {"k": 1} and s["agentId"] == "a0"
    assert s["createdAt"] == created["createdAt"]
    assert s["messageCount"] == 4 and s["runCount"] == 2
    assert [m["content"] for m in s["messages"]["nodes"]] == [
        "What is our Q1 revenue?",
        "Your Q1 revenue was $4.2 million.",
        "And Q2?",
        "5M",
    ]
    assert [m["runId"] for m in s["messages"]["nodes"]] == ["r1", "r1", "r2", "r2"]
    assert [r["id"] for r in s["runs"]["nodes"]] == ["r1", "r2"]
    assert dt(created["updatedAt"]) < dt(after_one["updatedAt"]) < dt(s["updatedAt"])


async def test_record_run_with_a_new_session_id_creates_that_session(gql: GraphQLClient) -> None:
    run = await record_full(gql, sessionId="my-own:id_1.x", agentId="hr_agent")
    assert run["sessionId"] == "my-own:id_1.x"
    s = await read_session(gql, "my-own:id_1.x")
    assert s["id"] == "my-own:id_1.x"
    assert s["userId"] == "local" and s["agentId"] == "hr_agent"
    assert s["messageCount"] == 2 and s["runCount"] == 1


async def test_record_run_is_idempotent_on_run_id(gql: GraphQLClient) -> None:
    first = await record_full(
        gql, sessionId="idem", runId="run-1", usage={"totalTokens": 10}, error=None
    )
    before = await read_session(gql, "idem")
    await asyncio.sleep(0.005)
    retry = await record_full(
        gql,
        sessionId="idem",
        runId="run-1",
        status="FAILED",
        error="a different attempt",
        usage={"totalTokens": 99},
        messages=[
            {"role": "USER", "content": "something else"},
            {"role": "ASSISTANT", "content": "another answer"},
            {"role": "ASSISTANT", "content": "and more"},
        ],
        retrievedContext=[{"id": "c1", "text": "new chunk"}],
    )
    assert retry == first
    after = await read_session(gql, "idem")
    assert after == before
    assert after["messageCount"] == 2 and after["runCount"] == 1
    assert after["updatedAt"] == before["updatedAt"]
    assert await read_run(gql, "idem", "run-1") == first


async def test_record_run_same_run_id_in_another_session_is_another_run(
    gql: GraphQLClient,
) -> None:
    await record_full(gql, sessionId="one", runId="shared")
    run = await record_full(
        gql, sessionId="two", runId="shared", messages=[{"role": "USER", "content": "other"}]
    )
    assert run["sessionId"] == "two" and run["input"] == "other"
    assert (await read_run(gql, "one", "shared"))["input"] == "What is our Q1 revenue?"
    assert (await read_session(gql, "two"))["runCount"] == 1


async def test_record_run_status_defaults_to_completed(gql: GraphQLClient) -> None:
    run = await record_full(gql, sessionId="st", runId="r")
    assert run["status"] == "COMPLETED"
    assert (await read_run(gql, "st", "r"))["status"] == "COMPLETED"


async def test_record_run_stores_every_status(gql: GraphQLClient) -> None:
    for status in ("QUEUED", "RUNNING", "COMPLETED", "FAILED", "CANCELLED"):
        run = await record_full(gql, sessionId="statuses", runId=status.lower(), status=status)
        assert run["status"] == status
    data = await gql.data('{ session(id: "statuses") { runs { nodes { id status } } } }')
    assert [(r["id"], r["status"]) for r in data["session"]["runs"]["nodes"]] == [
        ("queued", "QUEUED"),
        ("running", "RUNNING"),
        ("completed", "COMPLETED"),
        ("failed", "FAILED"),
        ("cancelled", "CANCELLED"),
    ]


async def test_record_run_stores_reasoning_usage_error_and_times(gql: GraphQLClient) -> None:
    diagnostics = {"latency_ms": 12, "strategies": ["bm25"], "nested": {"ok": True}}
    returned = await record_full(
        gql,
        sessionId="full",
        runId="imported",
        agentId="rag_agent",
        status="FAILED",
        error="upstream 500",
        reasoning={"enabled": True, "effort": "medium", "budgetTokens": 1024},
        usage={"inputTokens": 11, "outputTokens": 22, "reasoningTokens": 33, "totalTokens": 66},
        createdAt="2025-12-31T23:59:58Z",
        completedAt="2026-01-01T00:00:01.042Z",
        retrievalDiagnostics=diagnostics,
        retrievedContext=[
            {"id": "k1", "text": "first", "score": 0.9, "meta": {"p": 1}},
            {"id": "k2", "text": "second", "score": 0.1, "includedInContext": False},
        ],
    )
    stored = await read_run(gql, "full", "imported")
    assert stored == returned
    started = stored.pop("startedAt")
    assert started is None or dt("2025-12-31T23:59:58Z") <= dt(started)
    assert stored == {
        "id": "imported",
        "sessionId": "full",
        "agentId": "rag_agent",
        "status": "FAILED",
        "input": "What is our Q1 revenue?",
        "content": "Your Q1 revenue was $4.2 million.",
        "error": "upstream 500",
        "reasoning": {"enabled": True, "effort": "medium", "budgetTokens": 1024},
        "usage": {"inputTokens": 11, "outputTokens": 22, "reasoningTokens": 33, "totalTokens": 66},
        "createdAt": "2025-12-31T23:59:58Z",
        "completedAt": "2026-01-01T00:00:01.042Z",
        "retrievalDiagnostics": diagnostics,
        "retrievedContext": [
            {
                "id": "k1",
                "text": "first",
                "score": 0.9,
                "includedInContext": True,
                "meta": {"p": 1},
            },
            {
                "id": "k2",
                "text": "second",
                "score": 0.1,
                "includedInContext": False,
                "meta": stored["retrievedContext"][1]["meta"],
            },
        ],
        "messages": [
            {
                "role": "USER",
                "content": "What is our Q1 revenue?",
                "name": None,
                "toolCallId": None,
                "toolCalls": [],
            },
            {
                "role": "ASSISTANT",
                "content": "Your Q1 revenue was $4.2 million.",
                "name": None,
                "toolCallId": None,
                "toolCalls": [],
            },
        ],
    }
    assert stored["retrievedContext"][1]["meta"] in (None, {})
    # Messages without their own createdAt take the run's.
    data = await gql.data('{ session(id: "full") { messages { nodes { createdAt } } } }')
    assert [m["createdAt"] for m in data["session"]["messages"]["nodes"]] == [
        "2025-12-31T23:59:58Z",
        "2025-12-31T23:59:58Z",
    ]


async def test_record_run_partial_reasoning_and_usage(gql: GraphQLClient) -> None:
    run = await record_full(
        gql,
        sessionId="partial",
        runId="r",
        reasoning={"effort": "low"},
        usage={"totalTokens": 7},
    )
    assert run["reasoning"] == {"enabled": True, "effort": "low", "budgetTokens": None}
    assert run["usage"] == {
        "inputTokens": None,
        "outputTokens": None,
        "reasoningTokens": None,
        "totalTokens": 7,
    }
    off = await record_full(gql, sessionId="partial", runId="r2", reasoning={"enabled": False})
    assert off["reasoning"] == {"enabled": False, "effort": None, "budgetTokens": None}
    assert (await read_run(gql, "partial", "r2"))["reasoning"] == off["reasoning"]
    plain = await record_full(gql, sessionId="partial", runId="r3")
    assert plain["reasoning"] is None and plain["usage"] is None and plain["error"] is None
    assert plain["retrievalDiagnostics"] is None and plain["retrievedContext"] == []


async def test_record_run_tool_calls_and_tool_messages(gql: GraphQLClient) -> None:
    messages = [
        {"role": "SYSTEM", "content": "be brief"},
        {"role": "USER", "content": "Weather in Paris and Rome?"},
        {
            "role": "ASSISTANT",
            "content": None,
            "toolCalls": [
                {"id": "call_a", "name": "get_weather", "arguments": '{"city": "Paris"}'},
                {"id": "call_b", "name": "get_weather", "arguments": '{"city": "Rome"}'},
            ],
        },
        {"role": "TOOL", "content": "18C", "toolCallId": "call_a", "name": "get_weather"},
        {"role": "TOOL", "content": "24C", "toolCallId": "call_b", "name": "get_weather"},
        {"role": "ASSISTANT", "content": "Paris 18C, Rome 24C."},
    ]
    run = await record_full(gql, sessionId="tools", runId="t", messages=messages)
    assert run["content"] == "Paris 18C, Rome 24C."
    assert run["input"] == "Weather in Paris and Rome?"
    expected = [
        ("SYSTEM", "be brief", None, None, []),
        ("USER", "Weather in Paris and Rome?", None, None, []),
        (
            "ASSISTANT",
            None,
            None,
            None,
            [
                {"id": "call_a", "name": "get_weather", "arguments": '{"city": "Paris"}'},
                {"id": "call_b", "name": "get_weather", "arguments": '{"city": "Rome"}'},
            ],
        ),
        ("TOOL", "18C", "get_weather", "call_a", []),
        ("TOOL", "24C", "get_weather", "call_b", []),
        ("ASSISTANT", "Paris 18C, Rome 24C.", None, None, []),
    ]

    def shape(ms: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        return [(m["role"], m["content"], m["name"], m["toolCallId"], m["toolCalls"]) for m in ms]

    assert shape(run["messages"]) == expected
    s = await read_session(gql, "tools")
    assert shape(s["messages"]["nodes"]) == expected
    assert s["messageCount"] == 6


async def test_record_run_message_created_at_is_kept(gql: GraphQLClient) -> None:
    await record_full(
        gql,
        sessionId="times",
        createdAt="2026-03-01T08:00:00Z",
        messages=[
            {"role": "USER", "content": "q", "createdAt": "2026-03-01T08:00:00.100Z"},
            {"role": "ASSISTANT", "content": "a", "createdAt": "2026-03-01T09:00:00+01:00"},
        ],
    )
    data = await gql.data('{ session(id: "times") { messages { nodes { createdAt } } } }')
    assert [m["createdAt"] for m in data["session"]["messages"]["nodes"]] == [
        "2026-03-01T08:00:00.100Z",
        "2026-03-01T08:00:00Z",
    ]


async def test_record_run_for_another_user_as_administrator(gql: GraphQLClient) -> None:
    run = await record_full(gql, userId="bob", sessionId="bob-chat")
    assert run["sessionId"] == "bob-chat"
    s = await read_session(gql, "bob-chat")
    assert s["userId"] == "bob"
    # The administrator acting as itself appends to bob's session; it stays bob's.
    await record_full(gql, sessionId="bob-chat")
    s = await read_session(gql, "bob-chat")
    assert s["userId"] == "bob" and s["runCount"] == 2


async def test_record_run_with_an_empty_message_list(gql: GraphQLClient) -> None:
    run = await record_full(gql, sessionId="quiet", runId="q", messages=[], status="QUEUED")
    assert run["input"] is None and run["content"] is None and run["messages"] == []
    s = await read_session(gql, "quiet")
    assert s["messageCount"] == 0 and s["runCount"] == 1


# --- deleteSession ----------------------------------------------------------------------


async def test_delete_session_true_then_false(gql: GraphQLClient) -> None:
    await record_full(gql, sessionId="doomed")
    assert await gql.data(DELETE, {"id": "doomed"}) == {"deleteSession": True}
    assert await gql.data(DELETE, {"id": "doomed"}) == {"deleteSession": False}
    assert await gql.data(DELETE, {"id": "never-existed"}) == {"deleteSession": False}


async def test_deleted_session_reads_as_null(gql: GraphQLClient) -> None:
    run = await record_full(gql, sessionId="gone", runId="r1")
    await record_full(gql, sessionId="stays")
    assert (await gql.data(DELETE, {"id": "gone"}))["deleteSession"] is True
    assert await read_session(gql, "gone") is None
    assert await read_run(gql, "gone", run["id"]) is None
    listed = await gql.data("{ sessions { totalCount nodes { id } } }")
    assert listed["sessions"] == {"totalCount": 1, "nodes": [{"id": "stays"}]}
    page = await gql.data("{ sessionPage { totalElements content { id } } }")
    assert page["sessionPage"] == {"totalElements": 1, "content": [{"id": "stays"}]}
    assert (await read_session(gql, "stays"))["runCount"] == 1


async def test_record_run_after_delete_starts_a_fresh_session(gql: GraphQLClient) -> None:
    await gql.data(
        CREATE_SESSION, {"input": {"id": "reborn", "title": "old", "metadata": {"a": 1}}}
    )
    await record_full(gql, sessionId="reborn", runId="r1")
    await record_full(gql, sessionId="reborn", runId="r2")
    await gql.data(DELETE, {"id": "reborn"})
    run = await record_full(
        gql,
        sessionId="reborn",
        runId="r1",
        messages=[{"role": "USER", "content": "fresh start"}],
    )
    assert run["input"] == "fresh start"
    s = await read_session(gql, "reborn")
    assert s["messageCount"] == 1 and s["runCount"] == 1
    assert s["title"] == "fresh start"  # not "old": a new session, titled by its first message
    assert [m["content"] for m in s["messages"]["nodes"]] == ["fresh start"]


async def test_create_session_after_delete_is_new(gql: GraphQLClient) -> None:
    await gql.data(CREATE_SESSION, {"input": {"id": "again", "title": "first life"}})
    await record_full(gql, sessionId="again")
    await gql.data(DELETE, {"id": "again"})
    s = (await gql.data(CREATE_SESSION, {"input": {"id": "again", "title": "second life"}}))[
        "createSession"
    ]
    assert s["title"] == "second life"
    assert s["messageCount"] == 0 and s["runCount"] == 0
