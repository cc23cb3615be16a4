"""Compiled execution runs inside Strawberry's pipeline: other extensions see its answers,
one bounded cache keeps valid documents only, an outage is answered at once, and a plan
that fails unexpectedly is logged once and retired."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
from graphql import parse
from pymongo import AsyncMongoClient
from strawberry.extensions import SchemaExtension

from agent_sessions.auth import OPEN_MODE_CALLER
from agent_sessions.resolvers import compiled as compiled_module
from agent_sessions.resolvers.context import Context
from agent_sessions.schema import build_schema
from agent_sessions.schema.extensions import Documents
from agent_sessions.settings import Settings
from agent_sessions.storage import Storage

RECORD = """mutation { recordRun(input: {sessionId: "s1", agentId: "a", messages: [
  {role: USER, content: "q"}, {role: ASSISTANT, content: "a"}]}) { id } }"""
MESSAGES = '{ session(id: "s1") { id messages { totalCount nodes { role content } } } }'


def _context(storage: Storage, tmp_path: Any) -> Context:
    return Context(storage, Settings(data_dir=tmp_path), OPEN_MODE_CALLER)


class Seen(SchemaExtension):
    """An extension of someone else's: it records each result it is shown, and marks it."""

    results: ClassVar[list[Any]] = []

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        Seen.results.append(result.data if result is not None else None)
        if result is not None and result.data is not None:
            result.data["seen"] = True


async def test_another_extension_applies_to_compiled_answers(
    storage: Storage, tmp_path: Any
) -> None:
    Seen.results = []
    schema = build_schema(extensions=[Seen])
    await schema.execute(RECORD, context_value=_context(storage, tmp_path))
    got = await schema.execute(MESSAGES, context_value=_context(storage, tmp_path))
    assert got.errors is None
    assert schema.compiled is not None and schema.compiled.compiled == 1  # compiled, and seen
    assert got.data == {
        "session": {
            "id": "s1",
            "messages": {
                "totalCount": 2,
                "nodes": [{"role": "USER", "content": "q"}, {"role": "ASSISTANT", "content": "a"}],
            },
        },
        "seen": True,
    }
    assert len(Seen.results) == 2


async def test_the_document_cache_keeps_valid_documents_within_its_text_bound(
    storage: Storage, tmp_path: Any
) -> None:
    schema = build_schema()
    documents = schema.documents
    context = _context(storage, tmp_path)
    for n in range(3):  # invalid: a field that does not exist, a syntax error
        await schema.execute(f"{{ nope{n} }}", context_value=context)
        await schema.execute(f"{{ viewer {{ userId {n}", context_value=context)
    assert len(documents) == 0
    await schema.execute("{ viewer { userId } }", context_value=context)
    await schema.execute("{ viewer { userId } }", context_value=context)
    assert len(documents) == 1

    small = Documents(max_chars=100, max_document=60)
    texts = [f"{{ a{n}: viewer {{ userId }} }}" for n in range(10)]  # 25 characters each
    for text in texts:
        small.add(text, parse(text))
    assert (small.chars, len(small)) == (100, 4)
    assert [t for t in texts if small.get(t)] == texts[-4:]  # least recently used out first
    small.add("#" * 61 + "\n{ viewer { userId } }", parse("{ viewer { userId } }"))
    assert len(small) == 4  # a document over its own bound is not kept


async def test_a_database_outage_is_the_compiled_answer_at_once(tmp_path: Any) -> None:
    # Nothing listens on port 1: every command fails server selection, quickly.
    client: AsyncMongoClient = AsyncMongoClient(
        "mongodb://127.0.0.1:1/", serverSelectionTimeoutMS=50, connectTimeoutMS=50
    )
    down = Storage(client=client, database="down")
    schema = build_schema()
    try:
        got = await schema.execute(MESSAGES, context_value=_context(down, tmp_path))
    finally:
        await client.close()
    assert got.data is None
    assert [e.extensions for e in got.errors or ()] == [{"code": "DATABASE_UNAVAILABLE"}]
    assert got.errors[0].path == ["session"]
    assert schema.compiled is not None
    # Answered by the compiled path: normal execution did not wait out the outage again.
    assert (schema.compiled.compiled, schema.compiled.fallbacks) == (0, 0)


async def test_a_failing_plan_is_logged_once_and_retired(
    storage: Storage, tmp_path: Any, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    def broken(*args: Any) -> list[Any]:
        raise RuntimeError("a bug in a builder")

    monkeypatch.setattr(compiled_module, "_chunk_list", broken)
    schema = build_schema()
    await schema.execute(RECORD, context_value=_context(storage, tmp_path))
    query = '{ session(id: "s1") { messages { nodes { content retrievedContext { id } } } } }'
    with caplog.at_level(logging.ERROR, logger="agent_sessions.compiled"):
        answers = [
            await schema.execute(query, context_value=_context(storage, tmp_path)) for _ in range(3)
        ]
    for got in answers:  # normal execution answered every time
        assert got.errors is None
        assert got.data == {
            "session": {
                "messages": {
                    "nodes": [
                        {"content": "q", "retrievedContext": []},
                        {"content": "a", "retrievedContext": []},
                    ]
                }
            }
        }
    [logged] = [r for r in caplog.records if r.name == "agent_sessions.compiled"]
    assert logged.exc_info is not None and "a bug in a builder" in str(logged.exc_info[1])
    assert schema.compiled is not None
    assert (schema.compiled.compiled, schema.compiled.failures, schema.compiled.fallbacks) == (
        0,
        1,
        1,
    )
