"""What reading a long session's pages costs, in bytes the database sends: a read of its
messages and its runs together sends each page's messages and runs once, not twice."""

from __future__ import annotations

import pytest

from agent_sessions.storage import Storage
from agent_sessions.storage.layout import Bounds
from agent_sessions.storage.model import MessageSpec, RunSpec, SessionRead, Window
from agent_sessions.storage.sessions import message_document, now, run_document

from .helpers import TINY_BOUNDS, CommandLog


@pytest.fixture
def bounds() -> Bounds:
    return TINY_BOUNDS  # a few turns make a session of many pages


async def _long_session(storage: Storage, turns: int) -> None:
    for i in range(turns):
        t, rid = now(), f"r{i}"
        await storage.sessions.record_run(
            session_id="long", owner=None, new_session={"user_id": "alice"},
            run=run_document(run_id=rid, agent_id="a", status="COMPLETED", created_at=t),
            messages=[
                message_document(role="user", content=f"question {i} " * 8, run_id=rid, created_at=t),
                message_document(role="assistant", content=f"answer {i} " * 8, run_id=rid, created_at=t),
            ],
        )  # fmt: skip


async def _read_bytes(storage: Storage, commands: CommandLog, read: SessionRead) -> int:
    commands.reset()
    view = await storage.sessions.read_session("long", read, owner=None)
    assert view is not None
    return sum(commands.reply_bytes)


async def test_messages_and_runs_read_together_send_each_page_once(
    storage: Storage, commands: CommandLog
) -> None:
    await _long_session(storage, 40)
    assert await storage.sessions.pages.count_documents({"session_id": "long"}) >= 10
    every = Window(first=1000)
    messages = SessionRead(frozenset(), messages=((MessageSpec(window=every), ()),))
    runs = SessionRead(frozenset(), runs=(RunSpec(window=every),))
    both = SessionRead(frozenset(), messages=messages.messages, runs=runs.runs)
    alone = await _read_bytes(storage, commands, messages) + await _read_bytes(
        storage, commands, runs
    )
    together = await _read_bytes(storage, commands, both)
    # Each read alone pays for one head; together, one head fewer. Before, each of the
    # two page commands sent both windows of every page it found (about 1.6 x alone).
    assert together <= alone
    view = await storage.sessions.read_session("long", both, owner=None)
    assert view is not None
    [msgs], [rns] = view.message_pages, view.run_pages
    assert [seq for seq, _ in msgs.items] == list(range(80))
    assert [r["id"] for _, r in rns.items] == [f"r{i}" for i in range(40)]
