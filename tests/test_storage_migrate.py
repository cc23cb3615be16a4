"""Upgrades keep data: documents written by round 1's code (one document per session, run
input and answer copied into each run; ``tests/data/round1_sessions.json``, dumped from
the code at commit af3f4d9) are upgraded at start-up and read and written as before."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from bson import json_util
from pymongo import AsyncMongoClient

from agent_sessions.app import build_app
from agent_sessions.resolvers.cursors import position_cursor
from agent_sessions.settings import Settings
from agent_sessions.storage import Storage
from agent_sessions.storage.layout import LAYOUT_VERSION, META
from agent_sessions.storage.migrate import layout_version, migrate, pending

from .helpers import BASE_URL, GraphQLClient

ROUND1 = json_util.loads((Path(__file__).parent / "data" / "round1_sessions.json").read_text())


@pytest.fixture
async def old_database(mongo_uri: str) -> AsyncIterator[str]:
    """A database holding round 1's documents as it wrote them, with no layout mark."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    client: AsyncMongoClient = AsyncMongoClient(mongo_uri)
    await client[name].sessions.insert_many([dict(d) for d in ROUND1])
    try:
        yield name
    finally:
        await client.drop_database(name)
        await client.close()


async def test_round1_documents_are_upgraded_at_start_up(mongo_uri: str, old_database: str) -> None:
    assert all("v" not in d for d in ROUND1)
    storage = await Storage.connect(mongo_uri, old_database)
    try:
        assert await layout_version(storage) == LAYOUT_VERSION
        assert await pending(storage) == 0
        heads = await storage.sessions.heads.find({}).to_list()
        assert {h["_id"] for h in heads} == {"v1-chat", "v1-empty", "v1-long"}
        for head in heads:
            assert head["v"] == LAYOUT_VERSION
            for run in head["runs"]:
                assert "input" not in run  # the copies are gone
        # The long session (120 runs with chunks) no longer fits one head: it has pages.
        assert await storage.sessions.pages.count_documents({"session_id": "v1-long"}) > 0
        # A second start reads the mark and does nothing more.
        again = await Storage.connect(mongo_uri, old_database)
        await again.client.close()
    finally:
        await storage.client.close()


@pytest.fixture
async def upgraded(mongo_uri: str, old_database: str, tmp_path: Any) -> AsyncIterator[Any]:
    storage = await Storage.connect(mongo_uri, old_database)
    app = build_app(Settings(data_dir=tmp_path), storage=storage)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL) as c:
        yield c
    await app.state.services.agents.aclose()
    await storage.client.close()


async def test_upgraded_sessions_read_as_round1_served_them(upgraded: httpx.AsyncClient) -> None:
    messages = (await upgraded.get("/api/sessions/v1-chat/messages")).json()
    assert [(m["role"], m["content"]) for m in messages] == [
        ("user", "What is our Q1 revenue?"),
        ("assistant", "Your Q1 revenue was $4.2 million."),
        ("user", "And costs?"),
        ("assistant", None),
        ("tool", "1.1"),
        ("assistant", "Costs were $1.1M."),
        ("user", "Margin?"),
        ("user", "Summary?"),
        ("assistant", "draft"),
    ]
    assert messages[1]["retrieved_context"][0]["source_name"] == "Q1-2026.pdf"
    assert messages[3]["tool_calls"][0]["function"]["name"] == "get_costs"
    runs = (await upgraded.get("/api/sessions/v1-chat/runs")).json()
    assert [(r["runId"], r["status"], r["content"]) for r in runs] == [
        ("v1-r1", "COMPLETED", "Your Q1 revenue was $4.2 million."),
        ("v1-r2", "COMPLETED", "Costs were $1.1M."),
        ("v1-r3", "FAILED", None),
        ("v1-r4", "COMPLETED", "An answer of its own"),  # stored, since no message holds it
    ]
    assert runs[0]["usage"]["totalTokens"] == 15 and runs[0]["reasoning"]["effort"] == "medium"
    gql = GraphQLClient(upgraded)
    data = await gql.data(
        '{ a: run(sessionId: "v1-chat", runId: "v1-r2") { input content }'
        '  b: run(sessionId: "v1-long", runId: "long-3") { input content retrievedContext { id } }'
        '  c: session(id: "v1-empty") { title metadata messageCount } }'
    )
    assert data["a"] == {"input": "And costs?", "content": "Costs were $1.1M."}
    assert data["b"]["input"] == "question 3" and data["b"]["content"] == "answer 3"
    assert [c["id"] for c in data["b"]["retrievedContext"]] == ["c3-0", "c3-1", "c3-2"]
    assert data["c"] == {"title": "Empty", "metadata": {"team": "a"}, "messageCount": 0}
    long = (await upgraded.get("/api/sessions/v1-long/messages")).json()
    assert [m["content"] for m in long] == [
        text for i in range(120) for text in (f"question {i}", f"answer {i}")
    ]


async def test_cursors_handed_out_before_the_upgrade_still_point_where_they_did(
    upgraded: httpx.AsyncClient,
) -> None:
    # Round 1's cursors were positions in the arrays; the upgrade numbers items the same.
    gql = GraphQLClient(upgraded)
    after = position_cursor("m", 99)
    data = await gql.data(
        'query($a: String) { session(id: "v1-long") { messages(first: 2, after: $a) '
        "{ nodes { content } } } }",
        {"a": after},
    )
    assert [m["content"] for m in data["session"]["messages"]["nodes"]] == [
        "question 50",
        "answer 50",
    ]


async def test_upgraded_sessions_take_new_runs(upgraded: httpx.AsyncClient) -> None:
    gql = GraphQLClient(upgraded)
    await gql.data(
        "mutation($i: RecordRunInput!) { recordRun(input: $i) { id } }",
        {"i": {"sessionId": "v1-long", "runId": "long-new", "agentId": "rag_agent",
               "messages": [{"role": "USER", "content": "new"}, {"role": "ASSISTANT", "content": "yes"}]}},
    )  # fmt: skip
    data = await gql.data(
        '{ session(id: "v1-long") { messageCount runCount messages(last: 3) { nodes { content } } } }'
    )
    assert data["session"]["messageCount"] == 242 and data["session"]["runCount"] == 121
    assert [m["content"] for m in data["session"]["messages"]["nodes"]] == [
        "answer 119",
        "new",
        "yes",
    ]
    # A retry of a run written by round 1 (now in a page) changes nothing.
    await gql.data(
        "mutation($i: RecordRunInput!) { recordRun(input: $i) { id } }",
        {"i": {"sessionId": "v1-long", "runId": "long-0", "agentId": "rag_agent", "messages": []}},
    )
    again = await gql.data('{ session(id: "v1-long") { messageCount runCount } }')
    assert again["session"] == {"messageCount": 242, "runCount": 121}


async def test_migrate_reports_progress_and_marks_the_database(
    mongo_uri: str, old_database: str
) -> None:
    client: AsyncMongoClient = AsyncMongoClient(mongo_uri)
    try:
        # A mark of an older layout (or none) makes the next start upgrade; here, by hand.
        await client[old_database][META].insert_one({"_id": "layout", "version": LAYOUT_VERSION})
        storage = await Storage.connect(mongo_uri, old_database)  # marked: nothing happens
        assert await pending(storage) == 3
        seen: list[tuple[int, int]] = []
        assert await migrate(storage, lambda done, total: seen.append((done, total))) == 3
        assert seen == [(0, 3), (1, 3), (2, 3), (3, 3)]
        assert await pending(storage) == 0
        await storage.client.close()
    finally:
        await client.close()


async def test_agent_sessions_migrate_upgrades_a_database(
    mongo_uri: str, old_database: str
) -> None:
    import asyncio
    import os
    import sys

    env = os.environ | {"AGENT_SESSIONS_DATABASE": old_database, "MONGODB_URI": mongo_uri}
    command = Path(sys.executable).with_name("agent-sessions")
    process = await asyncio.create_subprocess_exec(
        str(command), "migrate", env=env, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, err.decode()
    assert "3 session(s) upgraded" in err.decode()
    assert out == b""
    storage = await Storage.connect(mongo_uri, old_database, upgrade=False)
    try:
        assert await pending(storage) == 0
        assert await layout_version(storage) == LAYOUT_VERSION
    finally:
        await storage.client.close()
