"""Input errors a person understands: each names the field and says what is wrong in
words (no regular expressions, no pydantic wording); unknown query parameters are 400s
that list the accepted ones, never silently ignored."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from .helpers import GraphQLClient, record

# What a message must never contain: pieces of a regex, pydantic's phrasing or links.
INTERNALS = re.compile(r"\[\^|\\x|\\u|\{1,|pattern|Input should|pydantic|type=|https?://")


def assert_plain(message: str) -> None:
    assert not INTERNALS.search(message), message


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "message is required"),
        ({"message": ""}, "message must be text with at least one character that is not a space"),
        ({"message": " \t\n"}, "message must be text with at least one character that is not a space"),
        ({"message": 42}, "message must be a string"),
        ({"message": None}, "message must be a string"),
        ({"message": "x" * 1_000_001}, "message must be at most 1000000 characters long"),
        (["a list"], "the request body must be a JSON object"),
        ({"message": "hi", "sessionId": "has space"},
         "sessionId must be 1-128 characters of A-Z a-z 0-9 . _ : -"),
        ({"message": "hi", "session_id": "x" * 129},
         "session_id must be 1-128 characters of A-Z a-z 0-9 . _ : -"),
        ({"message": "hi", "userId": "bell\u0007"},
         "userId must be 1-256 characters, none of them a control character"),
        ({"message": "hi", "sessionId": "a", "session_id": "b"},
         "give sessionId or session_id, not both"),
        ({"message": "hi", "reasoning": "high"}, "reasoning must be a JSON object"),
        ({"message": "hi", "reasoning": {"enabled": "yes"}}, "reasoning.enabled must be true or false"),
        ({"message": "hi", "reasoning": {"budgetTokens": -1}}, "reasoning.budgetTokens must be 0 or more"),
        ({"message": "hi", "reasoning": {"budgetTokens": 1.5}},
         "reasoning.budgetTokens must be a whole number"),
        ({"message": "hi", "reasoning": {"budget_tokens": 2**31}},
         "reasoning.budget_tokens must be at most 2147483647"),
        ({"message": "hi", "reasoning": {"effort": "high", "level": 3}},
         "reasoning.level is not a field here (accepted: enabled, effort, budgetTokens, budget_tokens)"),
        ({"message": 1, "sessionId": "a b"},
         "message must be a string; sessionId must be 1-128 characters of A-Z a-z 0-9 . _ : -"),
    ],
)  # fmt: skip
async def test_agent_run_body_errors_name_the_field_in_words(
    client: httpx.AsyncClient, gql: GraphQLClient, body: Any, message: str
) -> None:
    response = await client.post("/api/agents/finance_agent/runs", json=body)
    assert (response.status_code, response.json()) == (400, {"error": message})
    assert_plain(message)
    assert (await gql.data("{ sessions { totalCount } }"))["sessions"]["totalCount"] == 0


async def test_a_body_that_is_not_json_says_so(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/agents/finance_agent/runs",
        content=b'{"message": ',
        headers={"Content-Type": "application/json"},
    )
    assert response.json() == {"error": "the request body is not valid JSON"}


async def errors_of(gql: GraphQLClient, query: str, variables: dict | None = None) -> list[str]:
    body = await gql(query, variables)
    assert body.get("data") is None or "errors" in body, body
    messages = [e["message"] for e in body["errors"]]
    for m in messages:
        assert_plain(m)
    return messages


RECORD = "mutation($i: RecordRunInput!) { recordRun(input: $i) { id } }"


def run_input(**fields: Any) -> dict[str, Any]:
    return {"agentId": "a", "messages": [{"role": "USER", "content": "q"}], **fields}


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"usage": {"inputTokens": 1, "outputTokens": -2}},
         "usage.outputTokens must be 0 or more (got -2)"),
        ({"reasoning": {"budgetTokens": -5}}, "reasoning.budgetTokens must be 0 or more (got -5)"),
        ({"retrievedContext": [{"id": "ok", "text": "t"}, {"id": "", "text": "t"}]},
         "retrievedContext[1].id must be 1-256 characters, none of them a control character"),
        ({"retrievedContext": [{"id": "c", "text": "t", "meta": [1]}]},
         "retrievedContext[0].meta must be a JSON object"),
        ({"messages": [{"role": "USER", "content": "q"},
                       {"role": "ASSISTANT", "toolCalls": [{"id": "t1", "name": "\u0000"}]}]},
         "messages[1].toolCalls[0].name must be 1-256 characters, none of them a control character"),
        ({"messages": [{"role": "TOOL", "content": "42", "toolCallId": ""}]},
         "messages[0].toolCallId must be 1-256 characters, none of them a control character"),
        ({"runId": "run 1"}, "runId must be 1-128 characters of A-Z a-z 0-9 . _ : - (got 'run 1')"),
    ],
)  # fmt: skip
async def test_graphql_input_errors_name_the_field_in_words(
    gql: GraphQLClient, fields: dict[str, Any], message: str
) -> None:
    assert await errors_of(gql, RECORD, {"i": run_input(**fields)}) == [message]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ('{ session(id: "s1") { messages(after: "abc") { totalCount } } }',
         "after must be a cursor this list gave out (a startCursor, endCursor or an edge's "
         "cursor), got 'abc'"),
        ('{ session(id: "s1") { runs(before: "WyJtIiwgMV0=") { totalCount } } }',
         "before must be a cursor this list gave out (a startCursor, endCursor or an edge's "
         "cursor), got 'WyJtIiwgMV0='"),
        ('{ sessions(after: "nope") { totalCount } }',
         "after must be a cursor this list gave out (a startCursor, endCursor or an edge's "
         "cursor), got 'nope'"),
    ],
)  # fmt: skip
async def test_a_bad_cursor_names_its_argument(
    gql: GraphQLClient, query: str, message: str
) -> None:
    await record(gql, sessionId="s1")
    assert await errors_of(gql, query) == [message]


# --- unknown query parameters --------------------------------------------------------


async def test_an_unknown_list_parameter_is_400_naming_the_accepted_ones(
    client: httpx.AsyncClient, gql: GraphQLClient
) -> None:
    for n in range(3):
        await record(gql, sessionId=f"s{n}")
    response = await client.get("/api/sessions?limit=1")
    assert (response.status_code, response.json()) == (
        400,
        {
            "error": "unknown query parameter 'limit'; this path accepts "
            "userId, user_id, agentId, agent_id, page, size, metadata.<key>"
        },
    )
    # What it was meant as works, with every accepted parameter.
    response = await client.get("/api/sessions?size=1&page=0&userId=local&agent_id=finance_agent")
    assert (response.status_code, len(response.json()["content"])) == (200, 1)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/sessions/s0?expand=runs"),
        ("GET", "/api/sessions/s0/messages?expand=runs"),
        ("GET", "/api/sessions/s0/runs?expand=runs"),
        ("GET", "/api/sessions/s0/runs/r/retrieved-context?expand=runs"),
        ("DELETE", "/api/sessions/s0?expand=runs"),
        ("POST", "/api/agents/finance_agent/runs?expand=runs"),
    ],
)
async def test_paths_without_query_parameters_refuse_any(
    client: httpx.AsyncClient, gql: GraphQLClient, method: str, path: str
) -> None:
    await record(gql, sessionId="s0", runId="r")
    response = await client.request(method, path, json={"message": "hi"})
    assert (response.status_code, response.json()) == (
        400,
        {"error": "unknown query parameter 'expand': this path takes none"},
    )
    # Nothing was deleted or run.
    assert (await gql.data('{ session(id: "s0") { runCount } }'))["session"] == {"runCount": 1}


async def test_several_unknown_parameters_are_all_named(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/sessions?limit=1&offset=2&limit=3&page=0")
    assert response.json()["error"].startswith("unknown query parameters 'limit', 'offset';")
