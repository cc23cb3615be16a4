"""Deleting one run and forking a session, on a session kept whole and on one spread over
pages (tiny bounds): the items left, every counter windows rely on, and ownership."""

from __future__ import annotations

import pytest

from agent_sessions.errors import BadInput, NotFound
from agent_sessions.storage import Storage
from agent_sessions.storage import layout as L
from agent_sessions.storage.layout import DEFAULT_BOUNDS, Bounds
from agent_sessions.storage.model import MessageSpec, RunSpec, Window
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
