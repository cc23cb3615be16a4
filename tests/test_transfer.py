"""Export and import (``storage.transfer`` and the pipelines of the commands) against the real
database: a round trip gives back every field, a second import changes nothing, a bad line
is reported with its number and the rest go on, and an export reads through a cursor."""

from __future__ import annotations

import io
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from agent_sessions.data_commands import import_lines, write_jsonl
from agent_sessions.demo import demo_sessions
from agent_sessions.storage import Storage
from agent_sessions.storage.layout import SESSIONS
from agent_sessions.storage.transfer import (
    FORMAT,
    ImportOutcome,
    count_sessions,
    export_sessions,
    import_session,
)

from .helpers import CommandLog, GraphQLClient, record

CREATE = "mutation($i: CreateSessionInput!) { createSession(input: $i) { id } }"
RICH_RUN = {
    "sessionId": "rich", "runId": "rich-1", "agentId": "finance_agent",
    "messages": [
        {"role": "SYSTEM", "content": "Be brief."},
        {"role": "USER", "content": "What is our Q1 revenue?"},
        {"role": "ASSISTANT", "content": None,
         "toolCalls": [{"id": "call-1", "name": "lookup", "arguments": '{"q": "Q1"}'},
                       {"id": "call-2", "name": "fx", "arguments": None}]},
        {"role": "TOOL", "content": "4.2", "toolCallId": "call-1", "name": "lookup"},
        {"role": "ASSISTANT", "content": "Q1 revenue was $4.2M.",
         "createdAt": "2026-05-06T10:00:00.123Z"},
    ],
    "reasoning": {"effort": "high", "budgetTokens": 2048},
    "usage": {"inputTokens": 900, "outputTokens": 120, "reasoningTokens": 40,
              "totalTokens": 1060},
    "retrievalDiagnostics": {"query": "Q1 revenue", "latency_ms": 12,
                             "nested": {"list": [1, 2.5, None, {"k": "v"}]}},
    "retrievedContext": [
        {"id": "c-1", "text": "Q1 revenue: $4.2M", "score": 0.84, "retrievalScore": 0.71,
         "rerankerScore": 0.84, "sourceId": "src-1", "sourceName": "Q1-2026.pdf",
         "knowledgeBaseId": "kb-1", "kbName": "Finance docs", "indexingStrategy": "chunk_embed",
         "meta": {"page": 3, "tags": ["q1"]}, "includedInContext": True},
        {"id": "c-2", "text": "Q4 outlook", "includedInContext": False},
    ],
    "createdAt": "2026-05-06T09:59:58.001Z", "completedAt": "2026-05-06T10:00:00.123Z",
}  # fmt: skip


@pytest.fixture
async def other(mongo_uri: str) -> AsyncIterator[Storage]:
    """A second, empty database on the same server."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    storage = await Storage.connect(mongo_uri, name)
    try:
        yield storage
    finally:
        await storage.client.drop_database(name)
        await storage.client.close()


def typed(value: Any) -> Any:
    """A value with the type of every part of it, so 1 and 1.0 or None and absent differ."""
    if isinstance(value, dict):
        return {k: typed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [typed(v) for v in value]
    return (type(value).__name__, value)


async def documents(storage: Storage) -> list[dict[str, Any]]:
    """Every stored document: heads, then pages (without their generated ids), with the
    size accounting left out (``bytes`` is an estimate kept by appends)."""
    heads = await storage.sessions.heads.find({}, {"bytes": 0}, sort=[("_id", 1)]).to_list()
    pages = await storage.sessions.pages.find(
        {}, {"_id": 0, "bytes": 0}, sort=[("session_id", 1), ("n", 1)]
    ).to_list()
    return heads + [p | {"_id": (p["session_id"], p["n"])} for p in pages]


async def exported(storage: Storage, **filters: Any) -> list[bytes]:
    out = io.BytesIO()
    await write_jsonl(storage, out, **filters)
    return out.getvalue().splitlines(keepends=True)


async def seed_everything(gql: GraphQLClient, storage: Storage) -> None:
    """Every kind of thing a session holds: titles and metadata, system, tool and tool-call
    messages, chunks with every field and with defaults, reasoning, usage, diagnostics,
    a failed run, a session with no runs, and the demo sessions."""
    await gql.data(CREATE, {"i": {"id": "rich", "title": "Q1 review", "agentId": "finance_agent",
                                  "metadata": {"channel": "web", "n": [1, {"x": None}]}}})  # fmt: skip
    await gql.data("mutation($i: RecordRunInput!) { recordRun(input: $i) { id } }", {"i": RICH_RUN})
    await record(gql, sessionId="rich", runId="rich-2", status="FAILED", error="backend down",
                 messages=[{"role": "USER", "content": "And Q2?"}])  # fmt: skip
    await record(gql, sessionId="other-user", runId="o-1", userId="bob")
    await gql.data(CREATE, {"i": {"id": "empty", "userId": "carol"}})
    for r in demo_sessions():
        assert (await import_session(storage, r)).status == "imported"


async def test_export_then_import_gives_back_the_same_data_field_for_field(
    gql: GraphQLClient, storage: Storage, other: Storage
) -> None:
    await seed_everything(gql, storage)
    lines = await exported(storage)
    assert len(lines) == 3 + len(demo_sessions())
    outcomes: list[ImportOutcome] = []
    counts = await import_lines(other, lines, lambda _n, o: outcomes.append(o))
    assert counts == {"imported": len(lines)}, outcomes
    # The stored documents are equal, key for key and value for value, types included
    # (the order of a session's top-level keys depends on the write that made it).
    before, after = await documents(storage), await documents(other)
    assert [d["_id"] for d in after] == [d["_id"] for d in before]
    for a, b in zip(before, after, strict=True):
        assert typed(b) == typed(a), a["_id"]
    assert await exported(other) == lines


async def test_the_export_format_is_the_documented_one(
    gql: GraphQLClient, storage: Storage
) -> None:
    await seed_everything(gql, storage)
    [line] = await exported(storage, user_id="local", agent_id="finance_agent")
    session = orjson.loads(line)
    assert list(session) == ["format", "id", "user_id", "agent_id", "title", "metadata",
                             "created_at", "updated_at", "messages", "runs"]  # fmt: skip
    assert session["format"] == FORMAT == "agent-sessions/1"
    assert (session["id"], session["title"]) == ("rich", "Q1 review")
    assert "message_count" not in session and "_id" not in session
    messages, runs = session["messages"], session["runs"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "tool", "assistant",
                                             "user"]  # fmt: skip
    assert all(list(m) == ["id", "role", "content", "run_id", "created_at", "name",
                           "tool_calls", "tool_call_id"] for m in messages)  # fmt: skip
    assert messages[2]["tool_calls"][1] == {"id": "call-2", "name": "fx", "arguments": None}
    assert messages[4]["created_at"] == "2026-05-06T10:00:00.123Z"
    assert [r["id"] for r in runs] == ["rich-1", "rich-2"]
    first = runs[0]
    assert first["reasoning"] == {"enabled": True, "effort": "high", "budget_tokens": 2048}
    assert first["usage"]["total_tokens"] == 1060
    assert first["retrieval_diagnostics"]["nested"] == {"list": [1, 2.5, None, {"k": "v"}]}
    assert first["retrieved_context"][1] == {
        "id": "c-2", "text": "Q4 outlook", "score": None, "retrieval_score": None,
        "reranker_score": None, "source_id": None, "source_name": None,
        "knowledge_base_id": None, "kb_name": None, "indexing_strategy": None, "meta": {},
        "included_in_context": False,
    }  # fmt: skip
    assert (first["created_at"], first["completed_at"]) == (
        "2026-05-06T09:59:58.001Z", "2026-05-06T10:00:00.123Z",
    )  # fmt: skip
    assert (runs[1]["status"], runs[1]["error"], runs[1]["content"]) == (
        "FAILED", "backend down", None,
    )  # fmt: skip


async def test_importing_twice_changes_nothing(storage: Storage, other: Storage) -> None:
    for r in demo_sessions():
        await import_session(storage, r)
    lines = await exported(storage)
    assert (await import_lines(other, lines, lambda *_: None))["imported"] == len(lines)
    first = await documents(other)
    outcomes: list[ImportOutcome] = []
    counts = await import_lines(other, lines, lambda _n, o: outcomes.append(o))
    assert counts == {"skipped": len(lines)}
    assert {o.reason for o in outcomes} == {"a session with this id exists already"}
    assert await documents(other) == first


async def test_a_bad_line_is_reported_with_its_number_and_the_rest_go_on(
    storage: Storage, other: Storage
) -> None:
    for r in demo_sessions()[:2]:
        await import_session(storage, r)
    good = await exported(storage)
    base = orjson.loads(good[0])

    def variant(**changes: Any) -> bytes:
        return orjson.dumps(base | {"id": f"bad-{len(changes)}-{uuid.uuid4().hex[:6]}"} | changes)

    runs = base["runs"]
    lines = [
        good[0],
        b"{not json\n",
        b"\n",  # blank: ignored, but counted as a line
        b"[1, 2]\n",
        variant(format="agent-sessions/99"),
        variant(messages=[base["messages"][0] | {"role": "robot"}]),
        variant(metadata={"$where": 1}),
        variant(runs=[runs[0], runs[0]]),
        variant(messages=[base["messages"][0] | {"run_id": "no-such-run"}]),
        variant(created_at="2026-05-06 10:00"),  # no zone
        variant(title=5, user_id=None),
        good[1],
    ]
    reported: list[tuple[int, str, str | None, str | None]] = []
    counts = await import_lines(
        other, lines, lambda n, o: reported.append((n, o.status, o.session_id, o.reason))
    )
    assert counts == {"imported": 2, "invalid": 9}
    assert [(n, status) for n, status, *_ in reported] == [
        (1, "imported"), (2, "invalid"), (4, "invalid"), (5, "invalid"), (6, "invalid"),
        (7, "invalid"), (8, "invalid"), (9, "invalid"), (10, "invalid"), (11, "invalid"),
        (12, "imported"),
    ]  # fmt: skip
    reasons = {n: reason for n, _, _, reason in reported}
    assert reasons[2] is not None and reasons[2].startswith("not JSON")
    assert reasons[4] is not None and "object" in reasons[4]
    assert reasons[5] is not None and reasons[5].startswith("format:")
    assert reasons[6] is not None and reasons[6].startswith("messages.0.role:")
    assert reasons[7] is not None and "'$where'" in reasons[7]
    assert reasons[8] == "runs: two runs have the same id"
    assert reasons[9] == "messages.0.run_id: 'no-such-run' is not a run of this session"
    assert reasons[10] is not None and reasons[10].startswith("created_at:")
    assert reasons[11] is not None and "(and 1 more)" in reasons[11]
    assert all(
        sid is not None and sid.startswith("bad-") for n, _, sid, _ in reported if 5 <= n <= 11
    )
    stored = [d["_id"] for d in await documents(other)]
    assert stored == sorted([base["id"], orjson.loads(good[1])["id"]])


async def test_import_session_takes_a_record_and_refuses_what_is_not_one(
    storage: Storage,
) -> None:
    [record_] = demo_sessions()[:1]
    assert (await import_session(storage, record_)).status == "imported"
    assert (await import_session(storage, record_)).status == "skipped"
    outcome = await import_session(storage, {"id": "x"})
    assert (outcome.status, outcome.session_id) == ("invalid", "x")
    assert (await import_session(storage, ["not", "a", "dict"])).status == "invalid"  # type: ignore[arg-type]


async def test_export_filters_and_count(storage: Storage) -> None:
    demo = demo_sessions(now=datetime(2026, 6, 1, tzinfo=UTC))
    for r in demo:
        await import_session(storage, r)
    alice = [orjson.loads(line)["id"] for line in await exported(storage, user_id="alice")]
    newest_first = sorted(demo, key=lambda r: r["updated_at"], reverse=True)
    assert alice == [r["id"] for r in newest_first if r["user_id"] == "alice"]
    assert await count_sessions(storage, user_id="alice") == len(alice)
    support = await exported(storage, agent_id="support_agent", user_id="bob")
    assert {orjson.loads(line)["agent_id"] for line in support} == {"support_agent"}
    updated = sorted(orjson.loads(line)["updated_at"] for line in await exported(storage))
    since = datetime.fromisoformat(updated[-3])  # inclusive: this one and the two newer
    recent = await exported(storage, since=since)
    assert len(recent) == 3 == await count_sessions(storage, since=since)
    later = await exported(storage, since=since + timedelta(milliseconds=1))
    assert len(later) == 2


async def test_export_reads_through_a_cursor(storage: Storage, commands: CommandLog) -> None:
    t = datetime(2026, 1, 1, tzinfo=UTC)
    await storage.client[storage.database][SESSIONS].insert_many(
        [
            {"_id": f"s{n:03d}", "user_id": "u", "agent_id": None, "title": None, "metadata": {},
             "created_at": t, "updated_at": t, "message_count": 0, "run_count": 0,
             "messages": [], "runs": []}
            for n in range(250)
        ]
    )  # fmt: skip
    commands.reset()
    seen = 0
    async for _session in export_sessions(storage):
        seen += 1
        if seen == 1:
            # The first session arrives after one batch, not after the whole collection.
            assert commands.names == ["find"]
    assert seen == 250
    assert commands.names == ["find", "getMore", "getMore"]  # batches of 100


def readme_example() -> dict[str, Any]:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    [example] = re.findall(r"### Export format\n.*?```json\n(.*?)```", readme, flags=re.S)
    return orjson.loads(example)


async def test_the_readmes_example_line_is_the_format(storage: Storage) -> None:
    record_ = readme_example()
    outcome = await import_session(storage, record_)
    assert (outcome.status, outcome.messages, outcome.runs) == ("imported", 2, 1), outcome
    [line] = await exported(storage)
    assert orjson.loads(line) == record_
