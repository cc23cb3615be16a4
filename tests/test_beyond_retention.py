"""Retention: expiresAt set and changed, retention_days for new sessions, expired sessions
gone from every read at once (still through the indexes) and deleted by the sweep."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest

from agent_sessions.settings import Settings
from agent_sessions.storage import Storage, retention
from agent_sessions.storage.model import MessageSpec, SessionFilter
from agent_sessions.storage.sessions import message_document, now, run_document

from .helpers import TINY_BOUNDS, GraphQLClient, record


async def _record(storage: Storage, sid: str, n: int = 1) -> None:
    for i in range(n):
        t = now()
        await storage.sessions.record_run(
            session_id=sid, owner=None, new_session={"user_id": "alice", "agent_id": "a"},
            run=run_document(run_id=f"{sid}-{i}", agent_id="a", status="COMPLETED", created_at=t),
            messages=[message_document(role="user", content="hi", run_id=f"{sid}-{i}", created_at=t)],
        )  # fmt: skip


@pytest.fixture
def bounds() -> Any:
    return TINY_BOUNDS  # the expired session has pages: they must go too


async def test_an_expired_session_is_gone_at_once_then_deleted(storage: Storage) -> None:
    store = storage.sessions
    await _record(storage, "old", 10)
    await _record(storage, "kept", 1)
    assert await store.pages.count_documents({"session_id": "old"}) > 0
    past = now() - timedelta(seconds=1)
    changed = await store.update_session("old", {"expires_at": past}, owner=None)
    assert changed is not None and changed["expires_at"] == past.replace(tzinfo=None)
    assert await store.get_session("old", owner=None) is None
    assert await store.get_sessions(["old", "kept"], None, owner=None) == {
        "kept": await store.get_session("kept", owner=None)
    }
    assert await store.page_messages([("old", MessageSpec())], owner=None) == [None]
    page = await store.list_sessions(SessionFilter(), owner=None, limit=10)
    assert [s["id"] for s in page.sessions] == ["kept"]
    assert await store.count_sessions(SessionFilter(user_id="alice"), owner=None) == 1
    assert await retention.sweep(store) == 1
    assert await store.heads.count_documents({"_id": "old"}) == 0
    assert await store.pages.count_documents({"session_id": "old"}) == 0
    assert await store.get_session("kept", owner=None) is not None
    assert await retention.sweep(store) == 0


async def test_retention_gives_new_sessions_an_expiry(storage: Storage) -> None:
    storage.sessions.retention = timedelta(days=2)
    created = await storage.sessions.create_session(session_id="c", user_id="u")
    assert created["expires_at"] - created["created_at"] == timedelta(days=2)
    await _record(storage, "r")
    recorded = await storage.sessions.get_session("r", owner=None)
    assert recorded["expires_at"] - recorded["created_at"] == timedelta(days=2)
    # Never expiring again, when asked.
    cleared = await storage.sessions.update_session("r", {"expires_at": None}, owner=None)
    assert cleared is not None and cleared.get("expires_at") is None
    await _record(storage, "r")  # a later run does not set it again
    assert (await storage.sessions.get_session("r", owner=None)).get("expires_at") is None


class TestThroughTheApp:
    @pytest.fixture
    def settings(self, tmp_path: Any, compiled: bool) -> Settings:
        return Settings(data_dir=tmp_path, compiled_execution=compiled, retention_days=30)

    async def test_expires_at_in_graphql_and_rest(
        self, gql: GraphQLClient, client: httpx.AsyncClient
    ) -> None:
        run = await record(gql)
        sid = run["sessionId"]
        read = "query($id: ID!) { session(id: $id) { createdAt expiresAt } }"
        session = (await gql.data(read, {"id": sid}))["session"]
        assert session["expiresAt"] is not None and session["expiresAt"] > session["createdAt"]
        answer = await client.patch(
            f"/api/sessions/{sid}", json={"expiresAt": "2020-01-01T00:00:00Z"}
        )
        assert answer.status_code == 200 and answer.json()["expiresAt"] == "2020-01-01T00:00:00Z"
        assert (await gql.data(read, {"id": sid}))["session"] is None
        assert (await client.get(f"/api/sessions/{sid}")).status_code == 404
        assert (await client.get("/api/sessions")).json()["totalElements"] == 0
        bad = await client.patch(f"/api/sessions/{sid}", json={"expiresAt": "soon"})
        assert bad.status_code == 400

    async def test_expires_at_set_at_creation(self, gql: GraphQLClient) -> None:
        create = """mutation($e: DateTime) {
          createSession(input: {id: "made", title: "t", expiresAt: $e}) { id expiresAt }
        }"""
        later = "2099-01-01T00:00:00Z"
        made = (await gql.data(create, {"e": later}))["createSession"]
        assert made == {"id": "made", "expiresAt": later}  # given, not the 30-day default
        read = "query($id: ID!) { session(id: $id) { expiresAt } }"
        assert (await gql.data(read, {"id": "made"}))["session"] == {"expiresAt": later}
        past = create.replace('"made"', '"gone"')
        assert (await gql.data(past, {"e": "2020-01-01T00:00:00Z"}))["createSession"]["id"]
        assert (await gql.data(read, {"id": "gone"}))["session"] is None
        default = create.replace('"made"', '"kept"').replace(", expiresAt: $e", "")
        kept = (await gql.data(default.replace("($e: DateTime)", ""), {}))["createSession"]
        assert kept["expiresAt"] is not None and kept["expiresAt"] > "2026"
        bad = await gql(create, {"e": "soon"})
        assert bad["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
