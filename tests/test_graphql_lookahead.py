"""The one selection walker (graphql-core's field collection) decides what is read, in
both execution modes: ``@skip``/``@include`` on variables, fragments, inline fragments
with type conditions, and the same field twice under aliases."""

from __future__ import annotations

from typing import Any

import pytest
from graphql import FragmentDefinitionNode, OperationDefinitionNode, parse

from agent_sessions.auth import OPEN_MODE_CALLER
from agent_sessions.resolvers.context import Context
from agent_sessions.resolvers.lookahead import MESSAGE_READS, Walk
from agent_sessions.resolvers.planner import plan_session
from agent_sessions.schema import build_schema
from agent_sessions.settings import Settings
from agent_sessions.storage import Storage

from .helpers import CommandLog

SCHEMA = build_schema(compiled=False)._schema
BIG = "x" * 50_000

SKIPPED_IN_FRAGMENT = """
query Q($quiet: Boolean!) {
  session(id: "s1") { messages { nodes { ...M } } }
}
fragment M on Message { id content @skip(if: $quiet) }
"""


def _walk(query: str, variables: dict[str, Any] | None = None) -> tuple[Walk, Any]:
    document = parse(query)
    [operation] = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    walk = Walk(SCHEMA, fragments, variables or {}, operation)
    return walk, walk.roots(SCHEMA.query_type)  # type: ignore[arg-type]


def test_skip_on_a_variable_inside_a_fragment_changes_the_planned_read() -> None:
    reads = {}
    for quiet in (True, False):
        walk, roots = _walk(SKIPPED_IN_FRAGMENT, {"quiet": quiet})
        [window] = plan_session(walk, roots["session"]).windows
        reads[quiet] = window.fields
    assert reads[False] == {"id", "content"}
    assert reads[True] == {"id"}


def test_include_on_a_variable_and_a_literal_skip() -> None:
    query = """query Q($on: Boolean!) { session(id: "s") {
      id @skip(if: true) title @include(if: $on) ... @include(if: $on) { userId } } }"""
    for on, expected in ((True, {"title", "userId"}), (False, set())):
        walk, roots = _walk(query, {"on": on})
        session = SCHEMA.type_map["Session"]
        assert walk.names(session, roots["session"]) == expected  # type: ignore[arg-type]


def test_inline_fragments_with_type_conditions_are_followed() -> None:
    query = """{ session(id: "s") { ... on Session { messages { nodes {
      ... on Message { role retrievedContext(includedOnly: true) { ... on RetrievedChunk { score } } }
    } } } } }"""
    walk, roots = _walk(query)
    shape = plan_session(walk, roots["session"])
    [window] = shape.windows
    assert window.kind == "m"
    assert window.fields == set(MESSAGE_READS["role"]) | set(MESSAGE_READS["retrievedContext"])
    [site] = window.chunk_sites
    assert site.fields == {"score"}


def test_the_same_field_under_aliases_is_two_groups_and_a_repeated_key_merges() -> None:
    query = """{ session(id: "s") {
      a: messages(last: 1) { nodes { content } }
      b: messages(first: 1) { nodes { id } }
      a: messages(last: 1) { nodes { role } }
    } }"""
    walk, roots = _walk(query)
    session = SCHEMA.type_map["Session"]
    groups = walk.fields(session, roots["session"])  # type: ignore[arg-type]
    assert [(key, len(nodes)) for key, nodes in groups.items()] == [("a", 2), ("b", 1)]
    a, b = plan_session(walk, roots["session"]).windows
    assert (a.fields, b.fields) == ({"content", "role"}, {"id"})


async def _seed(storage: Storage, schema: Any, tmp_path: Any) -> None:
    record = """mutation($input: RecordRunInput!) { recordRun(input: $input) { id } }"""
    messages = [{"role": "USER", "content": BIG}, {"role": "ASSISTANT", "content": "short"}]
    chunks = [{"id": "c1", "text": "t", "score": 0.5}]
    body = {"sessionId": "s1", "agentId": "a", "messages": messages, "retrievedContext": chunks}
    result = await schema.execute(
        record, {"input": body}, context_value=_context(storage, tmp_path)
    )
    assert result.errors is None, result.errors


def _context(storage: Storage, tmp_path: Any) -> Context:
    return Context(storage, Settings(data_dir=tmp_path), OPEN_MODE_CALLER)


@pytest.fixture(params=[True, False], ids=["compiled", "normal"])
async def schema(request: pytest.FixtureRequest, storage: Storage, tmp_path: Any) -> Any:
    """A schema in each execution mode, over a session with a 50 KB message."""
    built = build_schema(compiled=request.param)
    await _seed(storage, built, tmp_path)
    return built


async def test_a_skipped_field_is_not_read_in_either_mode(
    schema: Any, storage: Storage, commands: CommandLog, tmp_path: Any
) -> None:
    replies = {}
    for quiet in (True, False, True):
        commands.reset()
        got = await schema.execute(
            SKIPPED_IN_FRAGMENT, {"quiet": quiet}, context_value=_context(storage, tmp_path)
        )
        assert got.errors is None, got.errors
        nodes = got.data["session"]["messages"]["nodes"]  # type: ignore[index]
        assert all(("content" in n) is not quiet for n in nodes)
        assert commands.names == ["aggregate"]
        replies[quiet] = commands.reply_bytes[0]
    # the 50 KB message comes back only when its content is selected
    assert replies[True] < 2_000 < 50_000 < replies[False]
    if schema.compiled is not None:
        # a plan per value of $quiet, each served compiled (the third request reuses one)
        assert (schema.compiled.compiled, schema.compiled.fallbacks) == (3, 0)


async def test_fragments_and_aliases_still_read_once(
    schema: Any, storage: Storage, commands: CommandLog, tmp_path: Any
) -> None:
    query = """query($full: Boolean!) { session(id: "s1") {
      ... on Session { last: messages(last: 1) { nodes { ...Cited } } }
      first: messages(first: 1) { nodes { role content @include(if: $full) } }
      run: runs { nodes { retrievedContext { ... on RetrievedChunk { id } } } }
    } }
    fragment Cited on Message { role retrievedContext(minScore: 0.1) { score } }"""
    commands.reset()
    got = await schema.execute(query, {"full": False}, context_value=_context(storage, tmp_path))
    assert got.errors is None, got.errors
    assert got.data == {
        "session": {
            "last": {"nodes": [{"role": "ASSISTANT", "retrievedContext": [{"score": 0.5}]}]},
            "first": {"nodes": [{"role": "USER"}]},
            "run": {"nodes": [{"retrievedContext": [{"id": "c1"}]}]},
        }
    }
    assert commands.names == ["aggregate"]  # messages, runs and chunks in one read
    assert commands.reply_bytes[0] < 2_000  # the 50 KB content was not asked for
    if schema.compiled is not None:
        assert schema.compiled.compiled == 1


async def test_one_context_serving_operations_in_turn_walks_each_with_its_variables(
    schema: Any, storage: Storage, tmp_path: Any
) -> None:
    # The REST shim pages through one context; what an operation selects depends on its
    # own variables, not on those of the one before.
    context = _context(storage, tmp_path)
    for quiet in (True, False):
        got = await schema.execute(SKIPPED_IN_FRAGMENT, {"quiet": quiet}, context_value=context)
        assert got.errors is None, got.errors
        nodes = got.data["session"]["messages"]["nodes"]  # type: ignore[index]
        assert [n.get("content") for n in nodes] == ([None, None] if quiet else [BIG, "short"])
