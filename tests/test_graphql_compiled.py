"""Compiled execution gives exactly what normal execution gives: random valid selection
sets over the schema, on varied stored sessions, compared byte for byte."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import graphql
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent_sessions.auth import OPEN_MODE_CALLER, Caller
from agent_sessions.resolvers.context import Context
from agent_sessions.resolvers.cursors import position_cursor
from agent_sessions.schema import build_schema
from agent_sessions.settings import Settings
from agent_sessions.storage import Storage
from agent_sessions.storage.layout import DEFAULT_BOUNDS, Bounds
from agent_sessions.storage.sessions import message_document, run_document

from .helpers import TINY_BOUNDS


@pytest.fixture(params=["whole", "paged"])
def bounds(request: pytest.FixtureRequest) -> Bounds:
    """Both layouts: the seeded sessions kept whole, and spread over pages."""
    return DEFAULT_BOUNDS if request.param == "whole" else TINY_BOUNDS


NORMAL = build_schema(compiled=False)
SESSION_IDS = ["s-tools", "s-many", "s-empty", "s-broken", "s-other", "nope"]
RUN_IDS = ["t-1", "m-0", "m-3", "m-5", "x-1", "nope"]
T0 = datetime(2026, 5, 6, 10, tzinfo=UTC)


def _at(seconds: int) -> datetime:
    return T0 + timedelta(seconds=seconds)


def _chunks(prefix: str, n: int) -> list[dict[str, Any]]:
    out = []
    for k in range(n):
        chunk = {"id": f"{prefix}-c{k}", "text": f"text {k}", "score": round(0.9 - k * 0.2, 2),
                 "included_in_context": k % 2 == 0, "meta": {"page": k, "tags": ["a", {"b": None}]}}  # fmt: skip
        if k == 1:
            chunk["score"] = None  # a chunk without a score
            chunk["source_name"] = "doc.pdf"
        if k == 2:
            chunk["score"] = 1  # an int where a float is served
            del chunk["included_in_context"]  # absent means included
        out.append(chunk)
    return out


async def _session(
    storage: Storage, session_id: str, user: str, runs: list[dict], messages: list[dict]
) -> None:
    fields = {
        "id": session_id, "user_id": user, "agent_id": "agent", "title": None,
        "metadata": {"source": "test", "nested": {"x": [1, 2.5, None]}}, "created_at": _at(0),
        "updated_at": _at(100),
    }  # fmt: skip
    assert await storage.sessions.import_session(fields, messages, runs)


async def seed(storage: Storage) -> None:
    # Tool calls, tool results, chunks with odd values, reasoning and partial usage.
    tools = [
        message_document(role="user", content="Weather?", run_id="t-1", created_at=_at(1)),
        message_document(role="assistant", content=None, run_id="t-1", created_at=_at(2),
                         tool_calls=[{"id": "call-1", "name": "weather", "arguments": '{"city":"Oslo"}'},
                                     {"id": "call-2", "name": "noargs"}]),
        message_document(role="tool", content="3C", run_id="t-1", created_at=_at(3), name="weather",
                         tool_call_id="call-1"),
        message_document(role="assistant", content="It is 3C.", run_id="t-1", created_at=_at(4)),
        message_document(role="system", content="note", run_id=None, created_at=_at(5)),
    ]  # fmt: skip
    tools_run = run_document(
        run_id="t-1", agent_id="agent", status="COMPLETED", created_at=_at(1),
        completed_at=_at(4), reasoning={"enabled": False, "effort": None, "budget_tokens": 0},
        usage={"input_tokens": 5, "output_tokens": None, "reasoning_tokens": None, "total_tokens": 5},
        retrieval_diagnostics={"latency_ms": 3, "steps": [{"k": 1}]}, retrieved_context=_chunks("t", 4),
    )  # fmt: skip
    await _session(storage, "s-tools", "alice", [tools_run], tools)
    # Several runs with mixed statuses; chunks on some.
    messages, runs = [], []
    for r in range(6):
        pair = [
            message_document(role="user", content=f"q{r}", run_id=f"m-{r}", created_at=_at(10 + r)),
            message_document(
                role="assistant", content=f"a{r}", run_id=f"m-{r}", created_at=_at(10 + r)
            ),
        ]
        status = ["COMPLETED", "FAILED", "RUNNING", "COMPLETED", "CANCELLED", "QUEUED"][r]
        messages += pair
        runs.append(
            run_document(
                run_id=f"m-{r}", agent_id=None if r == 2 else "agent", status=status,
                created_at=_at(10 + r), error="boom" if status == "FAILED" else None,
                retrieved_context=_chunks(f"m{r}", r % 3 + 1) if r % 2 == 0 else (),
                retrieval_diagnostics={"r": r} if r % 2 == 0 else None,
                reasoning={"enabled": True, "effort": "high", "budget_tokens": 100} if r == 3 else ({} if r == 5 else None),
                usage={} if r == 5 else {"input_tokens": r, "output_tokens": None, "reasoning_tokens": None, "total_tokens": r},
            )
        )  # fmt: skip
    await _session(storage, "s-many", "alice", runs, messages)
    await _session(storage, "s-empty", "alice", [], [])
    # A message without created_at: normal execution answers with an error; so must we.
    broken = [{"id": "b-1", "role": "user", "content": "no time", "run_id": None}]
    await _session(storage, "s-broken", "alice", [], broken)
    other_run = run_document(run_id="x-1", agent_id="agent", status="COMPLETED",
                             created_at=_at(50), retrieved_context=_chunks("x", 2))  # fmt: skip
    await _session(storage, "s-other", "bob", [other_run], [])


CURSORS = [position_cursor(kind, n) for kind in "mr" for n in range(0, 12, 2)] + ["!!bad"]
ARGUMENT_VALUES: dict[str, st.SearchStrategy[str]] = {
    "ID": st.sampled_from(SESSION_IDS + RUN_IDS).map(lambda v: f'"{v}"'),
    "Int": st.integers(-1, 12).map(str) | st.just("null"),
    "Float": st.sampled_from(["0", "0.3", "0.8", "1", "null"]),
    "String": st.sampled_from([f'"{c}"' for c in CURSORS] + ["null"]),
    "Boolean": st.sampled_from(["true", "false", "null"]),
    "Role": st.lists(st.sampled_from(["USER", "ASSISTANT", "TOOL", "SYSTEM"]), max_size=3).map(
        lambda v: f"[{', '.join(v)}]"
    ),
    "RunStatus": st.lists(
        st.sampled_from(["COMPLETED", "FAILED", "RUNNING", "QUEUED", "CANCELLED"]), max_size=3
    ).map(lambda v: f"[{', '.join(v)}]"),
}
SCHEMA = NORMAL._schema


@st.composite
def selection(draw: st.DrawFn, type_name: str, depth: int) -> str:
    """A selection set on ``type_name``: random fields, arguments, aliases and inline
    fragments, nested up to ``depth``."""
    type_ = SCHEMA.type_map[type_name]
    names = [*sorted(type_.fields), "__typename"]  # type: ignore[attr-defined]
    if depth <= 0:
        names = [
            n
            for n in names
            if n == "__typename"
            or graphql.is_leaf_type(graphql.get_named_type(type_.fields[n].type))
        ]  # type: ignore[attr-defined]
    chosen = draw(st.lists(st.sampled_from(names), min_size=1, max_size=6))
    parts = []
    for n, name in enumerate(chosen):
        if name == "__typename":
            parts.append(name)
            continue
        definition = type_.fields[name]  # type: ignore[attr-defined]
        args = []
        for arg_name, arg in definition.args.items():
            required = isinstance(arg.type, graphql.GraphQLNonNull)
            if required or draw(st.booleans()):
                value = draw(ARGUMENT_VALUES[graphql.get_named_type(arg.type).name])
                if value == "null" and required:
                    continue
                args.append(f"{arg_name}: {value}")
        field = name + (f"({', '.join(args)})" if args else "")
        if n > 0 and draw(st.booleans()):
            field = f"a{n}: {field}"  # an alias, so repeated fields stay apart
        target = graphql.get_named_type(definition.type)
        if not graphql.is_leaf_type(target):
            field += " { " + draw(selection(target.name, depth - 1)) + " }"
        if draw(st.integers(0, 9)) == 0:
            field = f"... on {type_name} {{ {field} }}"
        if draw(st.integers(0, 7)) == 0:  # a switch on the operation's variable $s
            field += draw(st.sampled_from([" @skip(if: $s)", " @include(if: $s)"]))
        parts.append(field)
    return " ".join(parts)


@st.composite
def queries(draw: st.DrawFn) -> str:
    roots = draw(st.lists(st.sampled_from(["session", "run", "viewer"]), min_size=1, max_size=2))
    parts = []
    for n, root in enumerate(roots):
        if root == "viewer":
            parts.append(f"v{n}: viewer {{ userId isAdmin }}")
        elif root == "session":
            sid = draw(st.sampled_from(SESSION_IDS))
            parts.append(f'r{n}: session(id: "{sid}") {{ {draw(selection("Session", 4))} }}')
        else:
            sid, rid = draw(st.sampled_from(SESSION_IDS)), draw(st.sampled_from(RUN_IDS))
            parts.append(
                f'r{n}: run(sessionId: "{sid}", runId: "{rid}") {{ {draw(selection("Run", 3))} }}'
            )
    body = "{ " + " ".join(parts) + " }"
    return f"query($s: Boolean!) {body}" if "$s" in body else body


QUERIES = queries()


def _response(result: Any) -> bytes:
    errors = [e.formatted for e in result.errors or ()]
    return orjson.dumps({"data": result.data, "errors": errors}, option=orjson.OPT_NON_STR_KEYS)


@pytest.mark.slow  # hundreds of generated queries: not in the fast inner loop
@pytest.mark.parametrize(
    "caller", [OPEN_MODE_CALLER, Caller("alice", is_admin=False)], ids=["admin", "alice"]
)
async def test_compiled_and_normal_answers_are_identical(
    storage: Storage, tmp_path: Any, caller: Caller
) -> None:
    await seed(storage)
    compiled = build_schema(compiled=True)
    app_settings = Settings(data_dir=tmp_path)
    queries: list[str] = []

    @given(QUERIES)
    @settings(max_examples=300, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    def collect(query: str) -> None:
        queries.append(query)

    collect()
    for n, query in enumerate(queries):
        variables = {"s": n % 2 == 0} if "$s" in query else None
        expected = await NORMAL.execute(
            query, variables, context_value=Context(storage, app_settings, caller)
        )
        got = await compiled.execute(
            query, variables, context_value=Context(storage, app_settings, caller)
        )
        assert _response(got) == _response(expected), (query, variables)
    # The comparison is only worth something if the compiled path answered often.
    assert compiled.compiled is not None
    assert compiled.compiled.compiled >= len(queries) // 4, (
        compiled.compiled.compiled,
        len(queries),
    )


@pytest.mark.parametrize(
    "query",
    [
        '{ session(id: "s-tools") { id messages { edges { cursor node { role content toolCalls { id name arguments } '
        "toolCallId name retrievedContext(includedOnly: true) { id score meta includedInContext } } } "
        "pageInfo { hasNextPage hasPreviousPage startCursor endCursor } totalCount } } }",
        '{ session(id: "s-many") { runs(last: 3, status: [COMPLETED, FAILED, RUNNING]) { nodes { id status error '
        "agentId reasoning { enabled effort budgetTokens } retrievedContext(minScore: 0.5) { id } } totalCount } "
        'a: run(id: "m-0") { sessionId retrievalDiagnostics } b: run(id: "nope") { id } } }',
        '{ run(sessionId: "s-tools", runId: "t-1") { id sessionId usage { inputTokens outputTokens totalTokens } '
        "reasoning { enabled budgetTokens } retrievedContext { id text score } } }",
        '{ viewer { userId isAdmin } __typename session(id: "s-empty") { messageCount messages { totalCount nodes { id } } } }',
        '{ session(id: "s-many") { runs { nodes { id status usage { totalTokens } reasoning { enabled effort } } } } }',
    ],
)
async def test_known_shapes_are_compiled_and_identical(
    storage: Storage, tmp_path: Any, query: str
) -> None:
    await seed(storage)
    compiled = build_schema(compiled=True)
    app_settings = Settings(data_dir=tmp_path)
    expected = await NORMAL.execute(
        query, context_value=Context(storage, app_settings, OPEN_MODE_CALLER)
    )
    got = await compiled.execute(
        query, context_value=Context(storage, app_settings, OPEN_MODE_CALLER)
    )
    assert expected.errors is None
    assert _response(got) == _response(expected)
    assert compiled.compiled is not None
    assert compiled.compiled.compiled == 1  # answered by the compiled path, not a fallback


async def test_a_stored_value_normal_execution_refuses_falls_back(
    storage: Storage, tmp_path: Any
) -> None:
    await seed(storage)
    compiled = build_schema(compiled=True)
    query = '{ session(id: "s-broken") { messages { nodes { content createdAt } } } }'
    context = Context(storage, Settings(data_dir=tmp_path), OPEN_MODE_CALLER)
    got = await compiled.execute(query, context_value=context)
    assert got.data == {"session": None}
    assert got.errors[0].extensions == {"code": "INTERNAL", "requestId": context.request_id}
    assert compiled.compiled is not None
    assert (compiled.compiled.compiled, compiled.compiled.fallbacks) == (0, 1)
