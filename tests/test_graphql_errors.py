"""GraphQL errors through the real app and database: every code reachable without keys or
agents, the document and request limits, and the shape of every error (a code, no
traceback). Refused writes are checked to have changed nothing."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest

from .helpers import GraphQLClient, record

KNOWN_CODES = {
    "BAD_USER_INPUT",
    "UNAUTHENTICATED",
    "FORBIDDEN",
    "NOT_FOUND",
    "SESSION_TOO_LARGE",
    "AGENT_ERROR",
    "INTERNAL",
}


def assert_clean(body: Any) -> None:
    """Every error has ``extensions.code``; nothing in the body looks like a traceback."""
    text = json.dumps(body)
    for error in body.get("errors") or ():
        assert isinstance(error.get("message"), str) and error["message"], error
        assert error.get("extensions", {}).get("code") in KNOWN_CODES, error
        for key in error.get("extensions", {}):
            assert key.lower() not in ("exception", "stacktrace", "traceback"), error
    for marker in ("Traceback", 'File "', "stacktrace"):
        assert marker not in text, text


def codes(body: dict[str, Any]) -> list[str]:
    assert_clean(body)
    assert body.get("errors"), body
    return [e["extensions"]["code"] for e in body["errors"]]


async def expect_error(
    gql: GraphQLClient, code: str, query: str, variables: dict[str, Any] | None = None
) -> dict[str, Any]:
    body = await gql(query, variables)
    assert codes(body) == [code], body
    return body


async def session_count(gql: GraphQLClient) -> int:
    return (await gql.data("{ sessions { totalCount } }"))["sessions"]["totalCount"]


def b64(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode()


# --- connection arguments -----------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    ["first: -1", "first: 101", "last: -1", "last: 101", "first: 1000", "last: -100"],
)
async def test_sessions_count_out_of_bounds(gql: GraphQLClient, args: str) -> None:
    body = await expect_error(gql, "BAD_USER_INPUT", f"{{ sessions({args}) {{ totalCount }} }}")
    assert body["data"] is None


async def test_sessions_count_bounds_are_accepted(gql: GraphQLClient) -> None:
    await record(gql, sessionId="s")
    data = await gql.data(
        """{ a: sessions(first: 100) { totalCount } b: sessions(last: 100) { totalCount }
             c: sessions(first: 0) { nodes { id } } d: sessions(last: 0) { nodes { id } } }"""
    )
    assert data == {
        "a": {"totalCount": 1},
        "b": {"totalCount": 1},
        "c": {"nodes": []},
        "d": {"nodes": []},
    }


@pytest.mark.parametrize("field", ["messages", "runs"])
@pytest.mark.parametrize("args", ["first: -1", "first: 1001", "last: -1", "last: 1001"])
async def test_messages_and_runs_count_out_of_bounds(
    gql: GraphQLClient, field: str, args: str
) -> None:
    await record(gql, sessionId="s1")
    await expect_error(
        gql, "BAD_USER_INPUT", f'{{ session(id: "s1") {{ {field}({args}) {{ totalCount }} }} }}'
    )


async def test_messages_and_runs_count_bounds_are_accepted(gql: GraphQLClient) -> None:
    await record(gql, sessionId="s1")
    data = await gql.data(
        """{ session(id: "s1") {
              a: messages(first: 1000) { totalCount } b: messages(last: 1000) { totalCount }
              c: runs(first: 1000) { totalCount } d: runs(last: 1000) { totalCount } } }"""
    )
    assert data["session"] == {
        "a": {"totalCount": 2},
        "b": {"totalCount": 2},
        "c": {"totalCount": 1},
        "d": {"totalCount": 1},
    }


BAD_CURSORS = [
    "!!!",
    "abc",
    "not a cursor at all",
    b64(["x"]),
    b64({"kind": "m", "pos": 1}),
    b64(["m", -1]),
    b64(["m", 1.5]),
    b64(["m", "1"]),
    b64(["r", 0]),  # a run cursor is not a message cursor
    b64(["s", 0, "id"]),
    "é",
]


@pytest.mark.parametrize("cursor", BAD_CURSORS)
@pytest.mark.parametrize("arg", ["after", "before"])
async def test_messages_undecodable_cursor(gql: GraphQLClient, cursor: str, arg: str) -> None:
    await record(gql, sessionId="s1")
    await expect_error(
        gql,
        "BAD_USER_INPUT",
        f'query($c: String) {{ session(id: "s1") {{ messages({arg}: $c) {{ totalCount }} }} }}',
        {"c": cursor},
    )


@pytest.mark.parametrize("arg", ["after", "before"])
async def test_runs_cursor_of_another_kind_is_refused(gql: GraphQLClient, arg: str) -> None:
    await record(gql, sessionId="s1")
    data = await gql.data('{ session(id: "s1") { messages { edges { cursor } } } }')
    message_cursor = data["session"]["messages"]["edges"][0]["cursor"]
    for cursor in (message_cursor, "!!!", b64(["r", -3])):
        await expect_error(
            gql,
            "BAD_USER_INPUT",
            f'query($c: String) {{ session(id: "s1") {{ runs({arg}: $c) {{ totalCount }} }} }}',
            {"c": cursor},
        )


@pytest.mark.parametrize(
    "cursor",
    ["!!!", "abc", b64(["s", 1]), b64(["m", 0]), b64(["s", "soon", "id"]), b64(["s", 0, 7])],
)
@pytest.mark.parametrize("arg", ["after", "before"])
async def test_sessions_undecodable_cursor(gql: GraphQLClient, cursor: str, arg: str) -> None:
    await record(gql, sessionId="s1")
    body = await expect_error(
        gql,
        "BAD_USER_INPUT",
        f"query($c: String) {{ sessions({arg}: $c) {{ totalCount }} }}",
        {"c": cursor},
    )
    assert body["data"] is None


async def test_sessions_cursor_from_messages_is_refused(gql: GraphQLClient) -> None:
    await record(gql, sessionId="s1")
    data = await gql.data('{ session(id: "s1") { messages { pageInfo { endCursor } } } }')
    await expect_error(
        gql,
        "BAD_USER_INPUT",
        "query($c: String) { sessions(after: $c) { totalCount } }",
        {"c": data["session"]["messages"]["pageInfo"]["endCursor"]},
    )


@pytest.mark.parametrize(("page", "size"), [(-1, 20), (0, 0), (0, -5), (0, 101), (-3, 1000)])
async def test_session_page_bad_values(gql: GraphQLClient, page: int, size: int) -> None:
    await expect_error(
        gql,
        "BAD_USER_INPUT",
        "query($p: Int!, $s: Int!) { sessionPage(page: $p, size: $s) { totalElements } }",
        {"p": page, "s": size},
    )


# --- client ids ---------------------------------------------------------------------------

BAD_IDS = ["", "has space", "x" * 129, "ünïcode", "a/b", "a$b", "semi;colon", "new\nline", "a#b"]


@pytest.mark.parametrize("bad", BAD_IDS)
async def test_create_session_bad_client_id(gql: GraphQLClient, bad: str) -> None:
    await expect_error(
        gql,
        "BAD_USER_INPUT",
        "mutation($id: ID) { createSession(input: {id: $id}) { id } }",
        {"id": bad},
    )
    assert await session_count(gql) == 0


@pytest.mark.parametrize("bad", BAD_IDS)
@pytest.mark.parametrize("field", ["sessionId", "runId"])
async def test_record_run_bad_client_id(gql: GraphQLClient, bad: str, field: str) -> None:
    body = await gql(
        "mutation($input: RecordRunInput!) { recordRun(input: $input) { id } }",
        {"input": {"agentId": "a", "messages": [{"role": "USER", "content": "q"}], field: bad}},
    )
    assert codes(body) == ["BAD_USER_INPUT"]
    assert await session_count(gql) == 0


# --- DateTime -------------------------------------------------------------------------------

NAIVE = "2026-05-06T10:00:00"


@pytest.mark.parametrize("value", [NAIVE, "2026-05-06T10:00:00.123", "2026-05-06"])
async def test_naive_datetime_in_record_run_is_refused(gql: GraphQLClient, value: str) -> None:
    for payload in (
        {"createdAt": value},
        {"completedAt": value},
        {"messages": [{"role": "USER", "content": "q", "createdAt": value}]},
    ):
        body = await gql(
            "mutation($input: RecordRunInput!) { recordRun(input: $input) { id } }",
            {"input": {"agentId": "a", "messages": [], **payload}},
        )
        assert codes(body) == ["BAD_USER_INPUT"], payload
    assert await session_count(gql) == 0


@pytest.mark.parametrize("field", ["updatedAfter", "updatedBefore"])
async def test_naive_datetime_in_filter_is_refused(gql: GraphQLClient, field: str) -> None:
    await expect_error(
        gql,
        "BAD_USER_INPUT",
        "query($f: SessionFilter) { sessions(filter: $f) { totalCount } }",
        {"f": {field: NAIVE}},
    )
    await expect_error(
        gql,
        "BAD_USER_INPUT",
        "query($f: SessionFilter) { sessionPage(filter: $f) { totalElements } }",
        {"f": {field: NAIVE}},
    )


async def test_naive_datetime_literal_is_refused(gql: GraphQLClient) -> None:
    await expect_error(
        gql,
        "BAD_USER_INPUT",
        f'{{ sessions(filter: {{updatedAfter: "{NAIVE}"}}) {{ totalCount }} }}',
    )


@pytest.mark.parametrize("value", ["yesterday", "", "2026-13-01T00:00:00Z", 1746525600, True])
async def test_unparseable_datetime_is_refused(gql: GraphQLClient, value: Any) -> None:
    await expect_error(
        gql,
        "BAD_USER_INPUT",
        "query($f: SessionFilter) { sessions(filter: $f) { totalCount } }",
        {"f": {"updatedAfter": value}},
    )


# --- JSON keys ------------------------------------------------------------------------------

BAD_JSON = [
    {"$set": 1},
    {"a.b": 1},
    {"ok": {"$where": "1"}},
    {"ok": {"deep": {"x.y": True}}},
    {"list": [1, {"$gt": 0}]},
    {"list": [[{"nested": [{"k.": None}]}]]},
    {".": 1},
    {"$": 1},
]


@pytest.mark.parametrize("bad", BAD_JSON)
async def test_create_session_metadata_with_unsafe_keys(gql: GraphQLClient, bad: Any) -> None:
    await expect_error(
        gql,
        "BAD_USER_INPUT",
        'mutation($m: JSON) { createSession(input: {id: "s", metadata: $m}) { id } }',
        {"m": bad},
    )
    assert await session_count(gql) == 0


@pytest.mark.parametrize("bad", BAD_JSON)
async def test_record_run_chunk_meta_with_unsafe_keys(gql: GraphQLClient, bad: Any) -> None:
    body = await gql(
        "mutation($input: RecordRunInput!) { recordRun(input: $input) { id } }",
        {
            "input": {
                "sessionId": "s",
                "agentId": "a",
                "messages": [],
                "retrievedContext": [
                    {"id": "ok", "text": "t"},
                    {"id": "c", "text": "t", "meta": bad},
                ],
            }
        },
    )
    assert codes(body) == ["BAD_USER_INPUT"]
    assert await session_count(gql) == 0


@pytest.mark.parametrize("bad", BAD_JSON)
async def test_record_run_retrieval_diagnostics_with_unsafe_keys(
    gql: GraphQLClient, bad: Any
) -> None:
    await record(gql, sessionId="s")
    body = await gql(
        "mutation($input: RecordRunInput!) { recordRun(input: $input) { id } }",
        {"input": {"sessionId": "s", "agentId": "a", "messages": [], "retrievalDiagnostics": bad}},
    )
    assert codes(body) == ["BAD_USER_INPUT"]
    data = await gql.data('{ session(id: "s") { runCount messageCount } }')
    assert data["session"] == {"runCount": 1, "messageCount": 2}


@pytest.mark.parametrize("bad", [[1, 2], "text", 3])
async def test_json_inputs_that_must_be_objects(gql: GraphQLClient, bad: Any) -> None:
    await expect_error(
        gql,
        "BAD_USER_INPUT",
        'mutation($m: JSON) { createSession(input: {id: "s", metadata: $m}) { id } }',
        {"m": bad},
    )
    for field in ("retrievalDiagnostics", "retrievedContext"):
        value = [{"id": "c", "text": "t", "meta": bad}] if field == "retrievedContext" else bad
        body = await gql(
            "mutation($input: RecordRunInput!) { recordRun(input: $input) { id } }",
            {"input": {"sessionId": "s", "agentId": "a", "messages": [], field: value}},
        )
        assert codes(body) == ["BAD_USER_INPUT"], field
    assert await session_count(gql) == 0


# --- NOT_FOUND ------------------------------------------------------------------------------


async def test_create_session_with_an_id_owned_by_another_user_is_not_found(
    gql: GraphQLClient,
) -> None:
    await gql.data(
        'mutation { createSession(input: {id: "bobs", userId: "bob", title: "b"}) { id } }'
    )
    body = await expect_error(
        gql, "NOT_FOUND", 'mutation { createSession(input: {id: "bobs", title: "x"}) { id } }'
    )
    assert body["data"] is None
    data = await gql.data('{ session(id: "bobs") { userId title } }')
    assert data["session"] == {"userId": "bob", "title": "b"}


async def test_record_run_for_a_user_into_another_users_session_is_not_found(
    gql: GraphQLClient,
) -> None:
    await record(gql, sessionId="carols", userId="carol", runId="r1")
    before = await gql.data('{ session(id: "carols") { userId messageCount runCount updatedAt } }')
    body = await gql(
        "mutation($input: RecordRunInput!) { recordRun(input: $input) { id } }",
        {
            "input": {
                "sessionId": "carols",
                "userId": "bob",
                "agentId": "a",
                "messages": [{"role": "USER", "content": "sneaky"}],
            }
        },
    )
    assert codes(body) == ["NOT_FOUND"]
    after = await gql.data('{ session(id: "carols") { userId messageCount runCount updatedAt } }')
    assert after == before
    # A retry of carol's own run id, asked for bob, is not found either.
    body = await gql(
        "mutation($input: RecordRunInput!) { recordRun(input: $input) { id } }",
        {
            "input": {
                "sessionId": "carols",
                "userId": "bob",
                "runId": "r1",
                "agentId": "a",
                "messages": [],
            }
        },
    )
    assert codes(body) == ["NOT_FOUND"]


# --- SESSION_TOO_LARGE ----------------------------------------------------------------------

BIG = 4_000_000  # characters per recordRun; the request body limit is 8 MiB


def big_run(n: int, size: int = BIG) -> dict[str, Any]:
    return {
        "sessionId": "huge",
        "runId": f"big-{n}",
        "agentId": "a",
        "messages": [
            {"role": "TOOL", "content": str(n) * size, "toolCallId": f"t{n}", "name": "dump"}
        ],
    }


RECORD_ID = "mutation($input: RecordRunInput!) { recordRun(input: $input) { id } }"


@pytest.mark.slow
async def test_a_session_grows_past_16_mb(gql: GraphQLClient) -> None:
    # 24 MB of tool results: far past one document's 16 MiB; older turns move into pages.
    await record(gql, sessionId="huge", runId="small")
    for n in range(6):
        await gql.data(RECORD_ID, {"input": big_run(n)})
    data = await gql.data("""{ session(id: "huge") { messageCount runCount
        first: messages(first: 2) { nodes { content } }
        last: messages(last: 1) { totalCount nodes { toolCallId } }
        runs { nodes { id } } } }""")
    session = data["session"]
    assert (session["messageCount"], session["runCount"]) == (8, 7)
    assert [m["content"] for m in session["first"]["nodes"]] == [
        "What is our Q1 revenue?",
        "Your Q1 revenue was $4.2 million.",
    ]
    assert session["last"]["nodes"] == [{"toolCallId": "t5"}]
    assert [r["id"] for r in session["runs"]["nodes"]] == ["small"] + [f"big-{n}" for n in range(6)]
    one = await gql.data(
        '{ session(id: "huge") { messages(first: 1, roles: [TOOL]) { nodes { content } } } }'
    )
    assert one["session"]["messages"]["nodes"][0]["content"] == "0" * BIG


async def test_a_message_over_4_mib_is_refused_and_changes_nothing(gql: GraphQLClient) -> None:
    await record(gql, sessionId="huge", runId="small")
    state = """{ session(id: "huge") { messageCount runCount updatedAt
                 messages(last: 1) { totalCount nodes { content } } } }"""
    before = await gql.data(state)
    body = await gql(RECORD_ID, {"input": big_run(0, size=4 * 1024 * 1024 + 1)})
    assert codes(body) == ["BAD_USER_INPUT"]
    assert "messages[0].content" in body["errors"][0]["message"]
    assert "4 MiB" in body["errors"][0]["message"]
    assert body["data"] is None
    assert await gql.data(state) == before
    assert (await gql.data('{ run(sessionId: "huge", runId: "big-0") { id } }'))["run"] is None


# --- document limits ------------------------------------------------------------------------


def nested(levels: int, root: str = 'session(id: "s1")') -> str:
    """A selection ``levels`` fields deep: session → run → session → … → id."""
    fields = [root] + ['run(id: "r1")' if i % 2 == 0 else "session" for i in range(levels - 2)]
    return " { ".join(fields) + " { id" + " }" * (levels - 1)


async def test_depth_within_the_limit_is_accepted(gql: GraphQLClient) -> None:
    await record(gql, sessionId="s1", runId="r1")
    data = await gql.data("{ " + nested(10) + " }")
    node = data["session"]
    depth = 1
    while "id" not in node:
        node = node.get("run") or node.get("session")
        depth += 1
    assert node["id"] in ("s1", "r1") and depth == 9


@pytest.mark.parametrize("levels", [13, 20])
async def test_depth_over_ten_is_refused(gql: GraphQLClient, levels: int) -> None:
    await record(gql, sessionId="s1", runId="r1")
    body = await expect_error(gql, "BAD_USER_INPUT", "{ " + nested(levels) + " }")
    assert body.get("data") is None
    assert "depth" in body["errors"][0]["message"].lower()


async def test_deep_mutation_is_refused_before_it_runs(gql: GraphQLClient) -> None:
    deep = nested(13, root='createSession(input: {id: "deep"})')
    await expect_error(gql, "BAD_USER_INPUT", "mutation { " + deep + " }")
    assert await session_count(gql) == 0


def aliases(n: int, start: int = 0) -> str:
    return " ".join(f"a{i}: viewer {{ userId }}" for i in range(start, start + n))


async def test_thirty_aliases_are_accepted(gql: GraphQLClient) -> None:
    data = await gql.data("{ " + aliases(30) + " }")
    assert len(data) == 30 and data["a29"] == {"userId": "local"}


async def test_more_than_thirty_aliases_are_refused(gql: GraphQLClient) -> None:
    body = await expect_error(gql, "BAD_USER_INPUT", "{ " + aliases(31) + " }")
    assert body.get("data") is None


async def test_aliases_in_fragments_count(gql: GraphQLClient) -> None:
    await expect_error(
        gql, "BAD_USER_INPUT", "{ ...F } fragment F on Query { " + aliases(31) + " }"
    )
    await expect_error(
        gql,
        "BAD_USER_INPUT",
        "{ " + aliases(20) + " ...F } fragment F on Query { " + aliases(11, start=20) + " }",
    )
    await expect_error(
        gql,
        "BAD_USER_INPUT",
        "{ " + aliases(20) + " ... on Query { " + aliases(11, start=20) + " } }",
    )
    data = await gql.data(
        "{ " + aliases(20) + " ...F } fragment F on Query { " + aliases(10, start=20) + " }"
    )
    assert len(data) == 30


async def test_aliased_mutations_over_the_limit_run_none(gql: GraphQLClient) -> None:
    doc = " ".join(f'm{i}: createSession(input: {{id: "m{i}"}}) {{ id }}' for i in range(31))
    await expect_error(gql, "BAD_USER_INPUT", "mutation { " + doc + " }")
    assert await session_count(gql) == 0


def roles_query(n: int) -> str:
    roles = ", ".join(["USER"] * n)
    return f'{{ session(id: "s1") {{ messages(roles: [{roles}]) {{ totalCount }} }} }}'


async def test_document_under_the_token_limit_is_accepted(gql: GraphQLClient) -> None:
    await record(gql, sessionId="s1")
    data = await gql.data(roles_query(5_000))
    assert data["session"]["messages"]["totalCount"] == 1


@pytest.mark.parametrize("n", [10_001, 30_000])
async def test_document_over_ten_thousand_tokens_is_refused(gql: GraphQLClient, n: int) -> None:
    await record(gql, sessionId="s1")
    body = await expect_error(gql, "BAD_USER_INPUT", roles_query(n))
    assert body.get("data") is None
    assert "token" in body["errors"][0]["message"].lower()


async def test_token_heavy_mutation_is_refused_before_it_runs(gql: GraphQLClient) -> None:
    doc = 'mutation { createSession(input: {id: "tok"}) { ' + "id " * 10_050 + "} }"
    await expect_error(gql, "BAD_USER_INPUT", doc)
    assert await session_count(gql) == 0


# --- HTTP-level refusals --------------------------------------------------------------------


def assert_graphql_error_response(response: httpx.Response, status: int | tuple[int, ...]) -> None:
    statuses = status if isinstance(status, tuple) else (status,)
    assert response.status_code in statuses, (response.status_code, response.text[:300])
    assert response.headers["content-type"].startswith("application/json")
    assert codes(response.json())


async def test_request_body_over_8_mib_is_413(
    client: httpx.AsyncClient, gql: GraphQLClient
) -> None:
    payload = {
        "query": 'mutation($m: JSON) { createSession(input: {id: "big", metadata: $m}) { id } }',
        "variables": {"m": {"pad": "x" * (8 * 1024 * 1024 + 10)}},
    }
    response = await client.post("/graphql", json=payload)
    assert_graphql_error_response(response, 413)
    assert await session_count(gql) == 0


async def test_streamed_body_over_8_mib_without_length_is_413(
    client: httpx.AsyncClient, gql: GraphQLClient
) -> None:
    raw = json.dumps(
        {
            "query": 'mutation($m: JSON) { createSession(input: {id: "big", metadata: $m}) { id } }',
            "variables": {"m": {"pad": "x" * (9 * 1024 * 1024)}},
        }
    ).encode()

    async def chunks():
        for i in range(0, len(raw), 1024 * 1024):
            yield raw[i : i + 1024 * 1024]

    response = await client.post(
        "/graphql", content=chunks(), headers={"content-type": "application/json"}
    )
    assert "content-length" not in response.request.headers
    assert_graphql_error_response(response, 413)
    assert await session_count(gql) == 0


async def test_query_over_get_is_served(client: httpx.AsyncClient) -> None:
    response = await client.get("/graphql", params={"query": "{ viewer { userId isAdmin } }"})
    assert response.status_code == 200
    assert response.json() == {"data": {"viewer": {"userId": "local", "isAdmin": True}}}


async def test_mutation_over_get_is_refused(client: httpx.AsyncClient, gql: GraphQLClient) -> None:
    await record(gql, sessionId="keep")
    for query in (
        'mutation { deleteSession(id: "keep") }',
        'mutation { createSession(input: {id: "via-get"}) { id } }',
    ):
        response = await client.get("/graphql", params={"query": query})
        assert_graphql_error_response(response, (400, 405))
        assert "data" not in response.json() or response.json()["data"] is None
    data = await gql.data('{ a: session(id: "keep") { id } b: session(id: "via-get") { id } }')
    assert data == {"a": {"id": "keep"}, "b": None}


async def test_batched_requests_are_refused(client: httpx.AsyncClient, gql: GraphQLClient) -> None:
    response = await client.post(
        "/graphql",
        json=[
            {"query": "{ viewer { userId } }"},
            {"query": 'mutation { createSession(input: {id: "batched"}) { id } }'},
        ],
    )
    assert_graphql_error_response(response, 400)
    assert await session_count(gql) == 0


async def test_malformed_json_body_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/graphql",
        content=b'{"query": "{ viewer { userId } }"',
        headers={"content-type": "application/json"},
    )
    assert_graphql_error_response(response, 400)


# --- shape of errors ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        ("{ viewer { ", None),
        ("{ nope }", None),
        ("{ session { id } }", None),
        ('{ session(id: "x") { messages(roles: [ROBOT]) { totalCount } } }', None),
        ("query($id: ID!) { session(id: $id) { id } }", None),
        ("query($id: ID!) { session(id: $id) { id } }", {"id": None}),
        ("query($n: Int) { sessions(first: $n) { totalCount } }", {"n": "ten"}),
        ("query($n: Int) { sessions(first: $n) { totalCount } }", {"n": 2**40}),
        ("mutation { recordRun(input: {messages: []}) { id } }", None),
        (
            "mutation($i: RecordRunInput!) { recordRun(input: $i) { id } }",
            {"i": {"agentId": "a", "messages": [], "status": "DONE"}},
        ),
        (
            "mutation($i: RecordRunInput!) { recordRun(input: $i) { id } }",
            {"i": {"agentId": "a", "messages": [{"role": "USER"}], "unknownField": 1}},
        ),
        ("subscription { viewer { userId } }", None),
    ],
)
async def test_malformed_documents_are_bad_user_input(
    gql: GraphQLClient, query: str, variables: dict[str, Any] | None
) -> None:
    body = await gql(query, variables)
    assert codes(body) and set(codes(body)) == {"BAD_USER_INPUT"}, body
    assert body.get("data") is None
    assert await session_count(gql) == 0


async def test_errors_carry_no_traceback_or_internal_detail(gql: GraphQLClient) -> None:
    await record(gql, sessionId="s1")
    bodies = [
        await gql('{ session(id: "s1") { messages(after: "!!!") { totalCount } } }'),
        await gql("{ sessions(first: -1) { totalCount } }"),
        await gql("query($m: JSON) { viewer { userId } }", {"m": {"$x": 1}}),
        await gql('mutation { createSession(input: {id: "bad id"}) { id } }'),
    ]
    for body in bodies:
        assert_clean(body)
        for error in body["errors"]:
            assert set(error["extensions"]) <= {"code", "requestId"}
            assert "pymongo" not in error["message"].lower()
            assert "bson" not in error["message"].lower()


async def test_partial_errors_keep_the_other_fields(gql: GraphQLClient) -> None:
    await record(gql, sessionId="s1")
    body = await gql(
        """{ ok: session(id: "s1") { id }
             bad: session(id: "s1") { messages(first: -1) { totalCount } } }"""
    )
    assert codes(body) == ["BAD_USER_INPUT"]
    assert body["data"] == {"ok": {"id": "s1"}, "bad": None}
    assert body["errors"][0]["path"] == ["bad", "messages"]
