"""Session storage against the real database: every operation, ownership, idempotency and
concurrency, each on a session kept whole and on one spread over pages (tiny bounds)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from agent_sessions.errors import NotFound, TooLarge
from agent_sessions.storage import Storage
from agent_sessions.storage.layout import DEFAULT_BOUNDS, Bounds
from agent_sessions.storage.model import ChunkSpec, MessageSpec, RunSpec, SessionFilter, Window
from agent_sessions.storage.sessions import message_document, now, run_document

from .helpers import TINY_BOUNDS, CommandLog


@pytest.fixture(params=["whole", "paged"])
def bounds(request: pytest.FixtureRequest) -> Bounds:
    return DEFAULT_BOUNDS if request.param == "whole" else TINY_BOUNDS


def _messages(run_id: str, *pairs: tuple[str, str]) -> list[dict]:
    t = now()
    return [message_document(role=r, content=c, run_id=run_id, created_at=t) for r, c in pairs]


def _chunks(n: int) -> list[dict]:
    return [
        {"id": f"c{i}", "text": f"chunk {i}", "score": i / 10, "included_in_context": i % 2 == 0}
        for i in range(n)
    ]


async def _record(
    storage: Storage, session_id: str, run_id: str, owner: str | None = "alice", **run_fields
) -> tuple[dict, bool]:
    msgs = _messages(run_id, ("user", f"question {run_id}"), ("assistant", f"answer {run_id}"))
    run = run_document(
        run_id=run_id, agent_id="agent", status="COMPLETED", created_at=now(), **run_fields
    )
    return await storage.sessions.record_run(
        session_id=session_id,
        owner=owner,
        new_session={"user_id": owner or "admin", "agent_id": "agent"},
        run=run,
        messages=msgs,
    )


async def _pages(storage: Storage, session_id: str) -> int:
    return await storage.sessions.pages.count_documents({"session_id": session_id})


async def test_create_get_delete(storage: Storage) -> None:
    created = await storage.sessions.create_session(
        session_id="s1", user_id="alice", agent_id="agent", title="t", metadata={"k": 1}
    )
    assert created["id"] == "s1" and created["message_count"] == 0
    got = await storage.sessions.get_session("s1", frozenset({"title", "metadata"}), owner="alice")
    assert got == {"id": "s1", "title": "t", "metadata": {"k": 1}}
    assert await storage.sessions.get_session("s1", owner="bob") is None
    # A retried create of one's own id returns the session; someone else's id is not found.
    again = await storage.sessions.create_session(session_id="s1", user_id="alice")
    assert again["title"] == "t"
    with pytest.raises(NotFound):
        await storage.sessions.create_session(session_id="s1", user_id="bob")
    assert await storage.sessions.delete_session("s1", owner="bob") is False
    assert await storage.sessions.delete_session("s1", owner="alice") is True
    assert await storage.sessions.get_session("s1", owner=None) is None
    assert await storage.sessions.delete_session("s1", owner=None) is False


async def test_delete_takes_the_pages_too(storage: Storage, bounds: Bounds) -> None:
    for i in range(6):
        await _record(storage, "s1", f"r{i}", retrieved_context=_chunks(2))
    assert (await _pages(storage, "s1") > 0) == (bounds is TINY_BOUNDS)
    assert await storage.sessions.delete_session("s1", owner="bob") is False
    assert await storage.sessions.delete_session("s1", owner="alice") is True
    assert await _pages(storage, "s1") == 0
    # The id is free again: a new session with no memory of the old one.
    await _record(storage, "s1", "again")
    [page] = await storage.sessions.page_messages([("s1", MessageSpec())], owner="alice")
    assert [m["content"] for _, m in page.items] == ["question again", "answer again"]


async def test_record_run_creates_session_and_keeps_counters(storage: Storage) -> None:
    run, created = await _record(
        storage, "s1", "r1", retrieved_context=_chunks(3), retrieval_diagnostics={"latency_ms": 12}
    )
    assert created and run["input"] == "question r1" and run["content"] == "answer r1"
    for i in range(2, 6):
        await _record(storage, "s1", f"r{i}")
    doc = await storage.sessions.get_session("s1", owner=None)
    assert doc["user_id"] == "alice" and doc["agent_id"] == "agent"
    assert (doc["message_count"], doc["run_count"]) == (10, 5)
    assert doc["updated_at"] >= doc["created_at"]


async def test_text_is_stored_once(storage: Storage) -> None:
    # The run keeps no copy of its input or its answer: they are read from its messages.
    await _record(storage, "s1", "r1")
    raw = await storage.sessions.heads.find_one({"_id": "s1"})
    stored_run = raw["runs"][0]
    assert "input" not in stored_run and "content" not in stored_run
    [run] = await storage.sessions.get_runs([("s1", "r1")], None, owner="alice")
    assert (run["input"], run["content"]) == ("question r1", "answer r1")
    # An answer of its own (not its messages') is stored, once.
    msgs = _messages("r2", ("user", "q2"), ("assistant", "draft"))
    run = run_document(
        run_id="r2", agent_id="a", status="COMPLETED", created_at=now(), content="final"
    )
    await storage.sessions.record_run(
        session_id="s1", owner="alice", new_session={"user_id": "alice"}, run=run, messages=msgs
    )
    [got] = await storage.sessions.get_runs([("s1", "r2")], None, owner="alice")
    assert (got["input"], got["content"]) == ("q2", "final")


async def test_record_run_is_idempotent_on_run_id(storage: Storage, bounds: Bounds) -> None:
    for i in range(6):
        await _record(storage, "s1", f"r{i}")
    before = await storage.sessions.get_session("s1", owner=None)
    raw = await storage.sessions.heads.find_one({"_id": "s1"})
    in_pages = {r["id"] for r in raw["runs"]} != {f"r{i}" for i in range(6)}
    assert in_pages == (bounds is TINY_BOUNDS)
    for rid in ("r0", "r5"):  # the oldest (in a page when paged) and the newest
        run, created = await _record(storage, "s1", rid)
        assert created is False and run["id"] == rid and run["input"] == f"question {rid}"
    assert await storage.sessions.get_session("s1", owner=None) == before


async def test_record_run_on_another_users_session_is_not_found(storage: Storage) -> None:
    await _record(storage, "s1", "r1", owner="alice")
    before = await storage.sessions.get_session("s1", owner=None)
    with pytest.raises(NotFound):
        await _record(storage, "s1", "r2", owner="bob")
    assert await storage.sessions.get_session("s1", owner=None) == before
    # An administrator (no owner scope) may append to anyone's session.
    await _record(storage, "s1", "r3", owner=None)
    fields = frozenset({"run_count"})
    assert (await storage.sessions.get_session("s1", fields, owner=None))["run_count"] == 2


async def test_fifty_concurrent_runs_on_one_session(storage: Storage) -> None:
    await storage.sessions.create_session(session_id="busy", user_id="alice")
    await asyncio.gather(*(_record(storage, "busy", f"r{i}") for i in range(50)))
    doc = await storage.sessions.get_session("busy", owner=None)
    assert (doc["run_count"], doc["message_count"]) == (50, 100)
    [page] = await storage.sessions.page_runs(
        [("busy", RunSpec(window=Window(first=100), fields=frozenset({"id"})))], owner=None
    )
    assert sorted(r["id"] for _, r in page.items) == sorted(f"r{i}" for i in range(50))
    [msgs] = await storage.sessions.page_messages(
        [("busy", MessageSpec(window=Window(first=1000)))], owner=None
    )
    # Every message once, numbered 0..99 in the order stored; each run's two in order.
    assert [s for s, _ in msgs.items] == list(range(100))
    order = [m["content"] for _, m in msgs.items]
    for i in range(50):
        assert order.index(f"question r{i}") < order.index(f"answer r{i}")
    # And every retry of them changes nothing.
    await asyncio.gather(*(_record(storage, "busy", f"r{i}") for i in range(50)))
    again = await storage.sessions.get_session("busy", owner=None)
    assert (again["run_count"], again["message_count"]) == (50, 100)


async def test_concurrent_appends_answer_the_seqs_they_were_stored_with(
    storage: Storage,
) -> None:
    # The seqs an append answers are read back by the run's id after the write, so they
    # stay right when other appends land between the write and the read.
    await storage.sessions.create_session(session_id="busy", user_id="alice")
    answered = await asyncio.gather(*(_record(storage, "busy", f"r{i}") for i in range(30)))
    [page] = await storage.sessions.page_runs(
        [("busy", RunSpec(window=Window(first=100), fields=frozenset({"id"})))], owner=None
    )
    stored = {r["id"]: seq for seq, r in page.items}
    assert {run["id"]: run["seq"] for run, created in answered if created} == stored
    assert sorted(stored.values()) == list(range(30))


async def test_an_append_is_an_update_and_a_read_by_id(
    storage: Storage, commands: CommandLog
) -> None:
    # Not findAndModify: SecantusDB's scans the whole collection for its write (about
    # 300 ms an append at 10,000 sessions; ``python -m bench``, append_10000_sessions_vs_10).
    await _record(storage, "s1", "r0")
    commands.reset()
    await _record(storage, "s1", "r1")
    assert "findAndModify" not in commands.names
    assert commands.names[:2] == ["update", "aggregate"]
    first = commands.sent[1]["pipeline"][0]
    assert first == {"$match": {"_id": "s1"}}


async def test_page_messages_windows_and_roles(storage: Storage) -> None:
    for i in range(5):
        await _record(storage, "s1", f"r{i}")  # messages 0..9: user, assistant, ...
    fields = frozenset({"content"})

    async def page(spec: MessageSpec):
        [p] = await storage.sessions.page_messages([("s1", spec)], owner="alice")
        return p

    last2 = await page(MessageSpec(window=Window(last=2), fields=fields))
    assert [pos for pos, _ in last2.items] == [8, 9]
    assert last2.items[-1][1] == {"seq": 9, "content": "answer r4"}  # only the field asked for
    assert (last2.total, last2.has_next, last2.has_previous) == (10, False, True)

    first3 = await page(MessageSpec(window=Window(first=3, after=1)))
    assert [pos for pos, _ in first3.items] == [2, 3, 4]
    assert first3.has_next and first3.has_previous

    before = await page(MessageSpec(window=Window(last=2, before=4)))
    assert [pos for pos, _ in before.items] == [2, 3]

    users = await page(MessageSpec(window=Window(first=2, after=2), roles=("user",), fields=fields))
    assert [(pos, m["content"]) for pos, m in users.items] == [
        (4, "question r2"),
        (6, "question r3"),
    ]
    assert (users.total, users.has_next, users.has_previous) == (5, True, True)

    empty = await page(MessageSpec(window=Window(first=0)))
    assert empty.items == [] and empty.total == 10

    # Another user's session reads as missing.
    [missing] = await storage.sessions.page_messages([("s1", MessageSpec())], owner="bob")
    assert missing is None


async def test_page_runs_with_status_filter_and_chunks(storage: Storage) -> None:
    await _record(storage, "s1", "r0", retrieved_context=_chunks(4))
    msgs = _messages("r1", ("user", "q"))
    failed = run_document(
        run_id="r1", agent_id="agent", status="FAILED", created_at=now(), error="boom"
    )
    await storage.sessions.record_run(
        session_id="s1", owner="alice", new_session={"user_id": "alice"}, run=failed, messages=msgs
    )
    for i in range(2, 5):
        await _record(storage, "s1", f"r{i}")
    spec = RunSpec(
        statuses=("COMPLETED",),
        fields=frozenset({"status", "retrieved_context"}),
        chunks=ChunkSpec(fields=frozenset({"id"}), included_only=True),
    )
    [page] = await storage.sessions.page_runs([("s1", spec)], owner="alice")
    assert page.total == 4
    pos, run = page.items[0]
    assert pos == 0 and run["status"] == "COMPLETED"
    assert run["retrieved_context"] == [{"id": "c0"}, {"id": "c2"}]
    assert [p for p, _ in page.items] == [0, 2, 3, 4]
    [failed_only] = await storage.sessions.page_runs(
        [("s1", RunSpec(statuses=("FAILED",), fields=frozenset({"error", "input"})))], owner=None
    )
    assert [(p, r["error"], r["input"]) for p, r in failed_only.items] == [(1, "boom", "q")]


async def test_get_run_chunks_and_messages(storage: Storage) -> None:
    await _record(storage, "s1", "r0", retrieved_context=_chunks(4))
    await _record(storage, "s2", "r0", retrieved_context=_chunks(2))
    for i in range(1, 5):
        await _record(storage, "s1", f"r{i}")
    specs = [ChunkSpec(min_score=0.2), ChunkSpec(fields=frozenset({"id"}), included_only=True)]
    got = await storage.sessions.get_run_chunks(
        [("s1", "r0", specs[0]), ("s2", "r0", specs[1]), ("s1", "nope", specs[0])], owner="alice"
    )
    assert [c["id"] for c in got[0]] == ["c2", "c3"] and got[0][0]["text"] == "chunk 2"
    assert got[1] == [{"id": "c0"}]
    assert got[2] is None
    [msgs, old] = await storage.sessions.get_run_messages(
        [("s2", "r0"), ("s1", "r0")], frozenset({"content"}), owner="alice"
    )
    assert [(pos, m["content"]) for pos, m in msgs] == [(0, "question r0"), (1, "answer r0")]
    assert [(pos, m["content"]) for pos, m in old] == [(0, "question r0"), (1, "answer r0")]
    [run, none] = await storage.sessions.get_runs(
        [("s1", "r0"), ("s1", "zz")], frozenset({"status"}), owner="alice"
    )
    assert run == {"id": "r0", "seq": 0, "status": "COMPLETED"} and none is None


async def test_update_run(storage: Storage, bounds: Bounds) -> None:
    msgs = _messages("r1", ("user", "q"))
    running = run_document(run_id="r1", agent_id="agent", status="RUNNING", created_at=now())
    assert running["completed_at"] is None
    await storage.sessions.record_run(
        session_id="s1",
        owner="alice",
        new_session={"user_id": "alice", "agent_id": "agent"},
        run=running,
        messages=msgs,
    )
    # Other runs land meanwhile: with tiny bounds the running one moves into a page.
    for i in range(4):
        await _record(storage, "s1", f"later{i}", retrieved_context=_chunks(2))
    raw = await storage.sessions.heads.find_one({"_id": "s1"})
    assert ("r1" not in {r["id"] for r in raw["runs"]}) == (bounds is TINY_BOUNDS)
    answer = _messages("r1", ("assistant", "done"))
    await storage.sessions.update_run(
        session_id="s1",
        run_id="r1",
        owner="alice",
        changes={
            "status": "COMPLETED",
            "content": "done",
            "completed_at": now(),
            "usage": {
                "input_tokens": 3,
                "output_tokens": 1,
                "reasoning_tokens": None,
                "total_tokens": 4,
            },
        },
        messages=answer,
    )
    [run] = await storage.sessions.get_runs([("s1", "r1")], None, owner="alice")
    assert run["status"] == "COMPLETED" and run["usage"]["total_tokens"] == 4
    assert run["completed_at"] and (run["input"], run["content"]) == ("q", "done")
    assert (await storage.sessions.get_session("s1", owner=None))["message_count"] == 10
    [completed] = await storage.sessions.page_runs(
        [("s1", RunSpec(statuses=("COMPLETED",), fields=frozenset({"id"})))], owner=None
    )
    [running_now] = await storage.sessions.page_runs(
        [("s1", RunSpec(statuses=("RUNNING",), fields=frozenset({"id"})))], owner=None
    )
    assert (completed.total, running_now.total) == (5, 0)
    [msgs_of_run] = await storage.sessions.get_run_messages([("s1", "r1")], None, owner=None)
    assert [(s, m["content"]) for s, m in msgs_of_run] == [(0, "q"), (9, "done")]
    with pytest.raises(NotFound):
        await storage.sessions.update_run(
            session_id="s1", run_id="r1", owner="bob", changes={"status": "FAILED"}
        )
    with pytest.raises(NotFound):
        await storage.sessions.update_run(
            session_id="s1", run_id="nope", owner="alice", changes={"status": "FAILED"}
        )


async def test_list_sessions_keyset_filters_and_pages(storage: Storage) -> None:
    base = datetime(2026, 5, 6, 10, tzinfo=UTC)
    for i in range(7):
        user = "alice" if i % 2 == 0 else "bob"
        await storage.sessions.create_session(
            session_id=f"s{i}", user_id=user, agent_id=f"a{i % 3}"
        )
        await storage.sessions.heads.update_one(
            {"_id": f"s{i}"}, {"$set": {"updated_at": base + timedelta(minutes=i // 2)}}
        )
    everyone = SessionFilter()
    seen, after = [], None
    while True:
        page = await storage.sessions.list_sessions(everyone, owner=None, limit=3, after=after)
        seen += [d["id"] for d in page.sessions]
        if not page.has_more:
            break
        last = page.sessions[-1]
        after = (last["updated_at"].replace(tzinfo=UTC), last["id"])
    # Newest first; ties (same minute) by id.
    assert seen == ["s6", "s4", "s5", "s2", "s3", "s0", "s1"]
    assert await storage.sessions.count_sessions(everyone, owner=None) == 7
    assert await storage.sessions.count_sessions(everyone, owner="alice") == 4
    assert await storage.sessions.count_sessions(SessionFilter(user_id="bob"), owner="alice") == 0
    only = await storage.sessions.list_sessions(SessionFilter(agent_id="a0"), owner=None, limit=10)
    assert [d["id"] for d in only.sessions] == ["s6", "s3", "s0"]
    window = SessionFilter(updated_after=base, updated_before=base + timedelta(minutes=3))
    assert await storage.sessions.count_sessions(window, owner=None) == 4  # exclusive bounds
    docs, total = await storage.sessions.page_sessions(everyone, owner="alice", page=1, size=3)
    assert total == 4 and [d["id"] for d in docs] == ["s0"]
    back = await storage.sessions.list_sessions(everyone, owner=None, limit=2, backwards=True)
    assert [d["id"] for d in back.sessions] == ["s0", "s1"] and back.has_more


async def test_reads_project_only_what_is_asked(storage: Storage, commands) -> None:
    big = "x" * 50_000
    msgs = _messages("r1", ("user", big), ("assistant", big))
    run = run_document(run_id="r1", agent_id="a", status="COMPLETED", created_at=now())
    await storage.sessions.record_run(
        session_id="s1", owner=None, new_session={"user_id": "u"}, run=run, messages=msgs
    )
    commands.reset()
    await storage.sessions.get_session("s1", frozenset({"updated_at"}), owner=None)
    await storage.sessions.page_messages(
        [("s1", MessageSpec(window=Window(last=1), fields=frozenset({"role"})))], owner=None
    )
    assert commands.names[:2] == ["find", "aggregate"] and len(commands.names) <= 3
    assert max(commands.reply_bytes) < 2_000  # no read shipped the 100 kB of messages


async def test_one_message_past_its_bound_is_refused_and_changes_nothing(storage: Storage) -> None:
    await _record(storage, "s1", "r0")
    before = await storage.sessions.get_session("s1", owner=None)
    too_big = "y" * (4 * 1024 * 1024 + 1)
    msgs = _messages("over", ("user", too_big))
    run = run_document(run_id="over", agent_id="a", status="COMPLETED", created_at=now())
    with pytest.raises(TooLarge, match=r"messages\[0\]\.content is 4\.0 MiB"):
        await storage.sessions.record_run(
            session_id="s1", owner="alice", new_session={"user_id": "alice"}, run=run, messages=msgs
        )
    with pytest.raises(TooLarge):
        await storage.sessions.update_run(
            session_id="s1", run_id="r0", owner="alice", changes={}, messages=msgs
        )
    assert await storage.sessions.get_session("s1", owner=None) == before


@pytest.mark.slow
async def test_a_session_grows_past_16_mb(storage: Storage) -> None:
    # The wall the single document had: ~1 MB user messages refused from the 9th on.
    megabyte = "z" * 1_000_000
    for i in range(20):
        msgs = _messages(f"big{i}", ("user", f"{i}:{megabyte}"), ("assistant", f"ok {i}"))
        run = run_document(run_id=f"big{i}", agent_id="a", status="COMPLETED", created_at=now())
        await storage.sessions.record_run(
            session_id="s1", owner="alice", new_session={"user_id": "alice"}, run=run, messages=msgs
        )
    doc = await storage.sessions.get_session("s1", owner=None)
    assert (doc["message_count"], doc["run_count"]) == (40, 20)
    assert await _pages(storage, "s1") >= 2
    heads = storage.sessions.heads
    assert (await heads.find_one({"_id": "s1"}, {"bytes": 1}))["bytes"] < 4 * 1024 * 1024
    [page] = await storage.sessions.page_runs(
        [("s1", RunSpec(window=Window(first=100), fields=frozenset({"input", "content"})))],
        owner=None,
    )
    assert [r["input"].split(":")[0] for _, r in page.items] == [str(i) for i in range(20)]
    assert [r["content"] for _, r in page.items] == [f"ok {i}" for i in range(20)]
