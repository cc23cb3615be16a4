"""``Client`` (blocking) against a live server on loopback, as a script or notebook uses it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pandas as pd
import pytest
from pymongo import MongoClient

from agent_sessions import AgentSessionsError, Client
from agent_sessions.demo import demo_sessions
from agent_sessions.settings import Settings
from agent_sessions.storage import Storage
from agent_sessions.storage.build import build_session
from agent_sessions.storage.layout import DEFAULT_BOUNDS, SESSIONS
from agent_sessions.storage.transfer import import_session

from .agent_servers import AgentBackend, agent_configs
from .helpers import LiveServer, live_settings

ADMIN_KEY = "client-admin-key"


def insert_sessions(settings: Settings, n: int, user: str = "alice") -> list[str]:
    """``n`` empty sessions straight into the server's database, laid out as storage lays
    them out; their ids, newest first."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    heads = [
        build_session(
            {"id": f"{user}-{i:05d}", "user_id": user, "agent_id": "finance_agent",
             "title": None, "metadata": {}, "created_at": start,
             "updated_at": start + timedelta(seconds=i)},
            [], [], DEFAULT_BOUNDS,
        )[0]
        for i in range(n)
    ]  # fmt: skip
    with MongoClient(settings.mongodb_uri) as mongo:
        mongo[settings.database][SESSIONS].insert_many(heads)
    return [d["_id"] for d in reversed(heads)]


def seed_demo(settings: Settings) -> None:
    async def seed() -> None:
        assert settings.mongodb_uri is not None
        storage = await Storage.connect(settings.mongodb_uri, settings.database)
        try:
            for record in demo_sessions():
                assert (await import_session(storage, record)).status == "imported"
        finally:
            await storage.client.close()

    asyncio.run(seed())


@pytest.fixture
def open_server(mongo_uri: str, tmp_path: Any) -> Iterator[LiveServer]:
    with LiveServer(live_settings(mongo_uri, tmp_path)) as server:
        yield server


def counting_client(server: LiveServer, sent: list[str], key: str | None = None) -> Client:
    http = httpx.Client(event_hooks={"request": [lambda r: sent.append(r.url.path)]})
    return Client(server.url, api_key=key, http_client=http)


@pytest.mark.slow  # ~45 s: the embedded database takes ~0.4 s a page at 10,000 sessions
def test_ten_thousand_sessions_take_a_hundred_requests(open_server: LiveServer) -> None:
    ids = insert_sessions(open_server.settings, 10_000)
    sent: list[str] = []
    client = counting_client(open_server, sent)
    assert [s.id for s in client.sessions(user_id="alice")] == ids
    assert sent == ["/graphql"] * 100  # the server's maximum page, 100, not one per session


def test_sessions_page_by_the_hundred(open_server: LiveServer) -> None:
    ids = insert_sessions(open_server.settings, 201)
    sent: list[str] = []
    client = counting_client(open_server, sent)
    pager = client.sessions()
    assert sent == []  # nothing is asked before iteration
    assert [s.id for s in pager] == ids
    assert sent == ["/graphql"] * 3


def test_load_a_users_sessions_into_frames(open_server: LiveServer) -> None:
    seed_demo(open_server.settings)
    with Client(open_server.url) as client:
        dataset = client.load(user_id="alice")
        frames = dataset.to_pandas()
    demo = [r for r in demo_sessions() if r["user_id"] == "alice"]
    assert len(dataset) == len(demo)
    assert set(frames.sessions["session_id"]) == {r["id"] for r in demo}
    assert len(frames.messages) == sum(len(r["messages"]) for r in demo)
    assert len(frames.runs) == sum(len(r["runs"]) for r in demo)
    assert len(frames.chunks) == sum(len(x["retrieved_context"]) for r in demo for x in r["runs"])
    # Every message's run and every chunk's run is in the runs frame.
    runs = frames.runs.set_index(["session_id", "run_id"]).index
    assert frames.messages.set_index(["session_id", "run_id"]).index.isin(runs).all()
    assert frames.chunks.set_index(["session_id", "run_id"]).index.isin(runs).all()
    assert isinstance(frames.runs["created_at"].dtype, pd.DatetimeTZDtype)
    tokens = frames.runs.groupby("session_id")["usage_total_tokens"].sum()
    assert (tokens > 0).all()


def test_keys_errors_and_ownership(mongo_uri: str, tmp_path: Any) -> None:
    settings = live_settings(mongo_uri, tmp_path, admin_key=ADMIN_KEY)
    with LiveServer(settings) as server:
        insert_sessions(settings, 3, user="alice")
        insert_sessions(settings, 2, user="bob")
        with Client(server.url, api_key=ADMIN_KEY) as admin:
            assert len(admin.sessions().to_list()) == 5
        key = server.graphql(
            'mutation { createApiKey(userId: "bob") { key } }',
            headers={"Authorization": f"Bearer {ADMIN_KEY}"},
        )["createApiKey"]["key"]
        with Client(server.url, api_key=key) as bob:
            assert [s.user_id for s in bob.sessions()] == ["bob", "bob"]
            assert bob.sessions(user_id="alice").to_list() == []  # nothing to see, no error
            with pytest.raises(AgentSessionsError) as caught:
                bob.session("alice-00000")  # as if it did not exist
            assert (caught.value.status, caught.value.code) == (404, "NOT_FOUND")
            with pytest.raises(AgentSessionsError) as caught:
                bob.delete("alice-00000")
            assert caught.value.status == 404
        for wrong in ("not-a-key", None):
            with Client(server.url, api_key=wrong) as stranger:
                with pytest.raises(AgentSessionsError) as caught:
                    stranger.session("bob-00000")
                assert (caught.value.status, caught.value.code) == (401, "UNAUTHENTICATED")
                with pytest.raises(AgentSessionsError) as caught:
                    stranger.retrieved_context("bob-00000", "r1")
                assert (caught.value.status, caught.value.code) == (401, "UNAUTHENTICATED")


def test_run_agent_and_delete(mongo_uri: str, tmp_path: Any) -> None:
    with AgentBackend() as backend:
        settings = live_settings(mongo_uri, tmp_path, agents=agent_configs(backend))
        with LiveServer(settings) as server, Client(server.url) as client:
            run = client.run_agent("finance_agent", "What is our Q1 revenue?")
            assert run.status == "COMPLETED"
            assert run.content == "answer to: What is our Q1 revenue? (2 messages)"
            assert [m.role for m in client.messages(run.session_id)] == ["user", "assistant"]
            client.delete(run.session_id)
            with pytest.raises(AgentSessionsError):
                client.session(run.session_id)
