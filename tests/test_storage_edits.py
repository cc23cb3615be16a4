"""Deleting one run and forking a session, on a session kept whole and on one spread over
pages (tiny bounds): the items left, every counter windows rely on, and ownership; a
fork's pages copied as stored and its search index rows shared with the original's."""

from __future__ import annotations

from pathlib import Path

import apsw
import pytest

from agent_sessions.errors import BadInput, NotFound
from agent_sessions.storage import Storage
from agent_sessions.storage import layout as L
from agent_sessions.storage.edits import FORKED_WHILE_RUNNING
from agent_sessions.storage.layout import DEFAULT_BOUNDS, Bounds
from agent_sessions.storage.model import MessageSpec, RunSpec, SessionFilter, Window
from agent_sessions.storage.search import VERSION, SearchIndex, match_expression
from agent_sessions.storage.sessions import message_document, now, run_document

from .helpers import TINY_BOUNDS


@pytest.fixture(params=["whole", "paged"])
def bounds(request: pytest.FixtureRequest) -> Bounds:
    return DEFAULT_BOUNDS if request.param == "whole" else TINY_BOUNDS


async def _record(storage: Storage, sid: str, rid: str, status: str = "COMPLETED", n: int = 2):
    t = now()
    roles = ["user"] + ["tool", "assistant"] * (n // 2)
    msgs = [
        message_document(role=r, content=f"{rid} {r} {i}", run_id=rid, created_at=t)
        for i, r in enumerate(roles[:n])
    ]
    chunks = [{"id": f"{rid}-c{i}", "text": f"chunk {i}"} for i in range(2)]
    run = run_document(
        run_id=rid, agent_id="a", status=status, created_at=t, retrieved_context=chunks
    )
    await storage.sessions.record_run(
        session_id=sid, owner="alice", new_session={"user_id": "alice", "agent_id": "a"},
        run=run, messages=msgs,
    )  # fmt: skip


async def _everything(storage: Storage, sid: str) -> tuple[list[dict], list[dict]]:
    [m] = await storage.sessions.page_messages(
        [(sid, MessageSpec(Window(first=1000)))], owner="alice"
    )
    [r] = await storage.sessions.page_runs([(sid, RunSpec(Window(first=1000)))], owner="alice")
    assert m is not None and r is not None
    assert m.total == len(m.items) and r.total == len(r.items)
    return [x for _, x in m.items], [x for _, x in r.items]


async def _check_counters(storage: Storage, sid: str) -> None:
    """Every counter is what the stored items add up to."""
    head = await storage.sessions.heads.find_one({"_id": sid})
    pages = await storage.sessions.pages.find({"session_id": sid}, sort=[("n", 1)]).to_list()
    assert len(pages) == head["pages"]
    before = L.zero_counts()
    for page in pages:
        assert page["before"] == before, f"page {page['n']} before"
        own = L.counts_of(page["messages"], page["runs"])
        assert page["own"] == own, f"page {page['n']} own"
        before = L.add_counts(before, own)
    assert head["before"] == before
    total = L.add_counts(before, L.counts_of(head["messages"], head["runs"]))
    assert L.head_counts(head) == total


async def _session(storage: Storage, sid: str = "s") -> None:
    for i in range(8):
        await _record(storage, sid, f"r{i}")


async def test_delete_a_run_from_the_head_or_a_page(storage: Storage, bounds: Bounds) -> None:
    await _session(storage)
    if bounds is TINY_BOUNDS:
        assert await storage.sessions.pages.count_documents({"session_id": "s"}) > 1
    before_msgs, before_runs = await _everything(storage, "s")
    for rid in ("r1", "r7"):  # an old run (in a page when paged) and the newest
        assert await storage.sessions.delete_run("s", rid, owner="alice") is True
        await _check_counters(storage, "s")
    msgs, runs = await _everything(storage, "s")
    assert [r["id"] for r in runs] == [r["id"] for r in before_runs if r["id"] not in ("r1", "r7")]
    assert msgs == [m for m in before_msgs if m["run_id"] not in ("r1", "r7")]
    # Seqs never change: the rest keep theirs, with gaps where the run was.
    session = await storage.sessions.get_session("s", owner="alice")
    assert session["message_count"] == 12 and session["run_count"] == 6
    with pytest.raises(NotFound):
        await storage.sessions.delete_run("s", "r1", owner="alice")
    assert await storage.sessions.delete_run("s", "r2", owner="bob") is False
    assert await storage.sessions.delete_run("nope", "r2", owner="alice") is False


async def test_delete_a_run_split_across_documents(storage: Storage, bounds: Bounds) -> None:
    # A live run: started, older turns moved out around it, then finished in the head.
    await _record(storage, "s", "live", status="RUNNING", n=1)
    with pytest.raises(BadInput):
        await storage.sessions.delete_run("s", "live", owner="alice")
    await _session(storage)
    t = now()
    await storage.sessions.update_run(
        session_id="s", run_id="live", owner="alice", changes={"status": "COMPLETED"},
        messages=[message_document(role="assistant", content="late", run_id="live", created_at=t)],
    )  # fmt: skip
    if bounds is TINY_BOUNDS:
        head = await storage.sessions.heads.find_one({"_id": "s"})
        assert all(r["id"] != "live" for r in head["runs"])  # the run is in a page…
        assert any(m["run_id"] == "live" for m in head["messages"])  # …its answer is not
    await _check_counters(storage, "s")
    assert await storage.sessions.delete_run("s", "live", owner="alice") is True
    await _check_counters(storage, "s")
    msgs, runs = await _everything(storage, "s")
    assert all(m["run_id"] != "live" for m in msgs) and len(runs) == 8 and len(msgs) == 16


async def test_fork_at_a_message(storage: Storage, bounds: Bounds) -> None:
    await _session(storage)
    await storage.sessions.update_session("s", {"metadata": {"team": "x"}}, owner="alice")
    msgs, runs = await _everything(storage, "s")
    at = msgs[8]  # r4's user message: r4 comes along without its answer
    fork = await storage.sessions.fork_session("s", at["id"], owner="alice", title="F")
    assert fork is not None and fork["title"] == "F" and fork["user_id"] == "alice"
    assert fork["forked_from"] == {"session_id": "s", "message_id": at["id"]}
    assert fork["metadata"] == {"team": "x"} and fork["message_count"] == 9
    got_msgs, got_runs = await _everything(storage, fork["id"])
    assert [m["id"] for m in got_msgs] == [m["id"] for m in msgs[:9]]
    assert [r["id"] for r in got_runs] == ["r0", "r1", "r2", "r3", "r4"]
    assert got_runs[4]["input"] == at["content"] and got_runs[4]["content"] is None
    assert got_runs[0]["retrieved_context"] == runs[0]["retrieved_context"]
    await _check_counters(storage, fork["id"])
    # The original is unchanged; another user cannot fork it; a missing message is named.
    assert await _everything(storage, "s") == (msgs, runs)
    assert await storage.sessions.fork_session("s", at["id"], owner="bob") is None
    with pytest.raises(NotFound, match="message"):
        await storage.sessions.fork_session("s", "nope", owner="alice")
    last = await storage.sessions.fork_session("s", msgs[-1]["id"], owner=None)
    assert last is not None and last["title"] is not None
    assert (await _everything(storage, last["id"]))[0] == msgs


async def _pages(storage: Storage, sid: str) -> list[dict]:
    found = storage.sessions.pages.find({"session_id": sid}, sort=[("n", 1)])
    return [{k: v for k, v in p.items() if k not in ("_id", "session_id")} async for p in found]


PAGED = pytest.mark.parametrize("bounds", [TINY_BOUNDS], ids=["paged"])


@PAGED
async def test_a_fork_copies_the_pages_it_keeps_as_stored(storage: Storage, tmp_path: Path) -> None:
    storage.sessions.search = SearchIndex(tmp_path / "search.sqlite3")
    for i in range(12):
        await _record(storage, "s", f"r{i}")
    msgs, _ = await _everything(storage, "s")
    source = await _pages(storage, "s")
    assert len(source) >= 4
    for at in (msgs[-1], msgs[13]):  # in the head; in a page (r6's first tool message)
        fork = await storage.sessions.fork_session("s", at["id"], owner="alice")
        assert fork is not None
        got_msgs, got_runs = await _everything(storage, fork["id"])
        kept = msgs[: msgs.index(at) + 1]
        assert got_msgs == kept
        assert [r["id"] for r in got_runs] == list(dict.fromkeys(m["run_id"] for m in kept))
        await _check_counters(storage, fork["id"])
        copied = await _pages(storage, fork["id"])
        # Every page wholly before the fork point is the original's, byte for byte.
        before = [p for p in source if p["m_hi"] <= kept[-1]["seq"]]
        assert len(before) >= 2 and copied[: len(before)] == before
    # The copies share the original's words in the search index: deleting either one
    # leaves the other found.
    index = storage.sessions.search
    await index.settle()
    words = index._db.execute("SELECT count(*) FROM words").fetchall()[0][0]
    assert words < 24 + 2 * 8  # 24 messages, and fewer than 8 of each fork indexed again
    first = msgs[0]["content"]
    found = await storage.sessions.search_messages(
        f'"{first}"', SessionFilter(), owner="alice", first=10
    )
    assert len({h["session_id"] for h in found[0]}) == 3
    assert await storage.sessions.delete_session("s", owner="alice") is True
    found = await storage.sessions.search_messages(
        f'"{first}"', SessionFilter(), owner="alice", first=10
    )
    assert len({h["session_id"] for h in found[0]}) == 2


@PAGED
async def test_a_fork_inside_a_run_still_going(storage: Storage) -> None:
    # A live run started first, its older turns moved into pages around it.
    await _record(storage, "s", "live", status="RUNNING", n=1)
    await _session(storage)
    msgs, _ = await _everything(storage, "s")
    fork = await storage.sessions.fork_session("s", msgs[6]["id"], owner="alice")
    assert fork is not None
    got_msgs, got_runs = await _everything(storage, fork["id"])
    assert got_msgs == msgs[:7]
    live = next(r for r in got_runs if r["id"] == "live")
    assert live["status"] == "CANCELLED" and live["error"] == FORKED_WHILE_RUNNING
    assert live["input"] == msgs[0]["content"]
    await _check_counters(storage, fork["id"])
    _, runs = await _everything(storage, "s")  # the original's run goes on
    assert next(r for r in runs if r["id"] == "live")["status"] == "RUNNING"


def test_an_index_of_the_first_layout_is_upgraded(tmp_path: Path) -> None:
    old = apsw.Connection(str(tmp_path / "search.sqlite3"))
    old.execute(
        "CREATE VIRTUAL TABLE words USING fts5(who, content, content='', contentless_delete=1,"
        " tokenize='unicode61 remove_diacritics 2');"
        "CREATE TABLE hits (rowid INTEGER PRIMARY KEY, session_id TEXT NOT NULL,"
        " seq INTEGER NOT NULL, message_id TEXT NOT NULL, run_id TEXT, role TEXT NOT NULL,"
        " created_at REAL NOT NULL, UNIQUE (session_id, seq));"
        "INSERT INTO hits VALUES (7, 's', 0, 'm', NULL, 'user', 0);"
        "INSERT INTO words (rowid, who, content) VALUES (7, 'u61', 'old words');"
    )
    old.close()
    index = SearchIndex(tmp_path / "search.sqlite3")
    [hit] = index._search(match_expression(["old"], "a", None), False, 10, 0)
    assert (hit.session_id, hit.message_id) == ("s", "m")
    assert index._db.execute("PRAGMA user_version").fetchall()[0][0] == VERSION
    index._delete(index._BY_SESSION, ("s",))
    assert index._db.execute("SELECT count(*) FROM words").fetchall()[0][0] == 0


def test_hits_a_server_of_the_first_layout_adds_after_the_upgrade(tmp_path: Path) -> None:
    # A rolling restart: a new server upgraded the file, an old one still adds hits its
    # way (no text_id, its words under the hit's own rowid). They can be deleted at once,
    # and are found again once a server opens the file.
    index = SearchIndex(tmp_path / "search.sqlite3")
    index._db.execute(
        "INSERT INTO hits (rowid, session_id, seq, message_id, run_id, role, created_at)"
        " VALUES (7, 's', 0, 'm', NULL, 'user', 0);"
        "INSERT INTO words (rowid, who, content) VALUES (7, 'u61', 'old words');"
        "INSERT INTO hits (rowid, session_id, seq, message_id, run_id, role, created_at)"
        " VALUES (8, 'gone', 0, 'm2', NULL, 'user', 0);"
        "INSERT INTO words (rowid, who, content) VALUES (8, 'u61', 'older words');"
    )
    index._delete(index._BY_SESSION, ("gone",))  # a NULL text_id: its own rowid's words
    index.close()
    index = SearchIndex(tmp_path / "search.sqlite3")
    [hit] = index._search(match_expression(["words"], "a", None), False, 10, 0)
    assert (hit.session_id, hit.message_id) == ("s", "m")
    assert index._db.execute("SELECT count(*) FROM words").fetchall()[0][0] == 1


@pytest.mark.parametrize("bounds", [Bounds(head_entries=12, page_seqs=4)], ids=["paged"])
async def test_a_fork_in_the_paged_messages_of_a_run_in_the_head(storage: Storage) -> None:
    # A run still going keeps its place in the head while its messages move into pages
    # (a head of 12 entries: the run and its chunks, 3, stay, with its newest messages).
    await _record(storage, "s", "live", status="RUNNING", n=1)
    for i in range(4):
        await storage.sessions.update_run(
            session_id="s", run_id="live", owner="alice", changes={},
            messages=[message_document(role="tool", content=f"step {i}", run_id="live",
                                       created_at=now()) for _ in range(3)],
        )  # fmt: skip
    head = await storage.sessions.heads.find_one({"_id": "s"})
    assert head["pages"] and [r["id"] for r in head["runs"]] == ["live"]
    msgs, _ = await _everything(storage, "s")
    fork = await storage.sessions.fork_session("s", msgs[3]["id"], owner="alice")
    assert fork is not None
    got_msgs, got_runs = await _everything(storage, fork["id"])
    assert got_msgs == msgs[:4] and [r["id"] for r in got_runs] == ["live"]
    assert got_runs[0]["status"] == "CANCELLED"
    await _check_counters(storage, fork["id"])
