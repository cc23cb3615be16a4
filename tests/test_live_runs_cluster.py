"""Live runs across server processes on one database: joining and cancelling through
another server, leases that keep a live run alive, runs that a killed server left behind
(kill -9), the drain at SIGTERM, and the bound on database writes while a run streams."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from httpx_sse import aconnect_sse
from pymongo import MongoClient

from agent_sessions.agents.live import ABANDONED, INTERRUPTED
from agent_sessions.app import build_app
from agent_sessions.settings import Settings

from .agent_servers import AgentBackend
from .helpers import BASE_URL, LiveServer, live_settings
from .stream_servers import Stream
from .test_live_runs import FAST, TOKENS, configs, join, payloads, stored_run, until


@pytest.fixture
def backend() -> Iterator[AgentBackend]:
    with AgentBackend() as server:
        yield server


def two_servers(mongo_uri: str, tmp_path: Path, backend: AgentBackend) -> tuple[Settings, Settings]:
    a = live_settings(mongo_uri, tmp_path / "a", agents=configs(backend), **FAST)
    return a, a.model_copy(update={"data_dir": tmp_path / "b"})


async def test_join_and_cancel_through_another_server(
    mongo_uri: str, tmp_path: Path, backend: AgentBackend
) -> None:
    a, b = two_servers(mongo_uri, tmp_path, backend)
    stream = Stream(TOKENS, hold_at=3)
    backend.answer = stream
    with LiveServer(a) as server_a, LiveServer(b) as server_b:
        async with (
            httpx.AsyncClient(base_url=server_a.url, timeout=30) as on_a,
            httpx.AsyncClient(base_url=server_b.url, timeout=30) as on_b,
        ):
            path = "/api/agents/finance_agent/runs"
            async with aconnect_sse(on_a, "POST", path, json={"message": "Q1?"}) as source:
                events = source.aiter_sse()
                original = [await anext(events) for _ in range(4)]
                start = original[0].json()
                join_path = f"/api/sessions/{start['session_id']}/runs/{start['run_id']}/events"
                async with aconnect_sse(on_b, "GET", join_path) as joined:
                    joined_events = joined.aiter_sse()
                    # Server B reads what A stored (at A's flush rate), then follows.
                    replayed = [await anext(joined_events) for _ in range(4)]
                    assert payloads(replayed) == payloads(original)
                    stream.gate.set()
                    followed = [e async for e in joined_events]
                original += [e async for e in events]
            assert payloads(replayed + followed) == payloads(original)

            # Cancel through B a run that A runs: A learns of it at its flush rate.
            hanging = Stream(["Half "], hang=True)
            backend.answer = hanging
            async with aconnect_sse(on_a, "POST", path, json={"message": "Long"}) as source:
                events = source.aiter_sse()
                start = (await anext(events)).json()
                assert (await anext(events)).event == "delta"
                cancel = await on_b.post(
                    f"/api/sessions/{start['session_id']}/runs/{start['run_id']}/cancel"
                )
                assert cancel.status_code == 200
                assert (cancel.json()["status"], cancel.json()["content"]) == ("CANCELLED", "Half ")
                rest = [e async for e in events]
            assert [(e.event, e.json()["status"]) for e in rest] == [("end", "CANCELLED")]
            assert hanging.closed_early.is_set()


async def test_a_live_lease_is_never_reaped_an_expired_one_is(
    mongo_uri: str, tmp_path: Path, backend: AgentBackend
) -> None:
    a, b = two_servers(mongo_uri, tmp_path, backend)
    backend.answer = Stream(["Thinking"], hang=True)
    with LiveServer(a) as server_a, LiveServer(b):  # B only reaps
        async with httpx.AsyncClient(base_url=server_a.url, timeout=30) as on_a:
            path = "/api/agents/finance_agent/runs"
            async with aconnect_sse(on_a, "POST", path, json={"message": "Long"}) as source:
                start = (await anext(source.aiter_sse())).json()
            # B's reaper runs every half lease (0.5 s); A keeps renewing: nothing happens.
            await asyncio.sleep(3)
            run = await stored_run(on_a, start["session_id"], start["run_id"])
            assert run["status"] == "RUNNING"
            # A lease nobody renews (as if its server were gone) is ended by B's reaper.
            with MongoClient(mongo_uri) as client:
                client[a.database]["run_leases"].update_one(
                    {"_id": start["run_id"]}, {"$set": {"server": "a-dead-server"}}
                )
            # A no longer holds the lease, so it stops its run without writing; B ends it.
            run = await until(lambda: _ended(on_a, start))
            assert run["status"] == "FAILED"
            assert run["error"] == ABANDONED


async def _ended(http: httpx.AsyncClient, start: dict[str, Any]) -> Any:
    run = await stored_run(http, start["session_id"], start["run_id"])
    return run if run["status"] != "RUNNING" else None


# --- real processes, real signals ------------------------------------------------------------


class ServeProcess:
    """``agent-sessions serve`` in a child process on the test's database."""

    def __init__(self, mongo_uri: str, database: str, tmp_path: Path, backend: AgentBackend,
                 **settings: Any) -> None:  # fmt: skip
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        config = tmp_path / f"serve-{self.port}.toml"
        lines = [f"{k} = {v}" for k, v in settings.items()]
        lines += [
            "[agents.finance_agent]", 'backend = "openai"', f'base_url = "{backend.url}/v1"',
            'model = "m"', "timeout_s = 60",
        ]  # fmt: skip
        config.write_text("\n".join(lines) + "\n")
        env = os.environ | {"AGENT_SESSIONS_DATABASE": database, "MONGODB_URI": mongo_uri}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "agent_sessions.cli", "serve", "--port", str(self.port),
             "--config", str(config), "--data-dir", str(tmp_path / "serve-data")],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 30
        while True:
            assert self.proc.poll() is None, self.proc.stderr.read().decode()  # type: ignore[union-attr]
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "agent-sessions serve did not start"
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


async def _start_run(url: str, message: str) -> dict[str, Any]:
    """Start a streaming run, read its start event, and go away (the run goes on)."""
    async with (
        httpx.AsyncClient(base_url=url, timeout=30) as http,
        aconnect_sse(
            http, "POST", "/api/agents/finance_agent/runs", json={"message": message}
        ) as source,
    ):
        events = source.aiter_sse()
        start = (await anext(events)).json()
        assert (await anext(events)).event == "delta"
        return start


def _stored(mongo_uri: str, database: str, start: dict[str, Any]) -> dict[str, Any]:
    with MongoClient(mongo_uri) as client:
        doc = client[database]["sessions"].find_one(
            {"_id": start["session_id"]}, {"runs": {"$elemMatch": {"id": start["run_id"]}}}
        )
    assert doc is not None
    return doc["runs"][0]


async def test_a_run_left_by_a_killed_server_is_ended_by_the_next(
    mongo_uri: str, tmp_path: Path, backend: AgentBackend
) -> None:
    backend.answer = Stream(["Half "], hang=True)
    database = live_settings(mongo_uri, tmp_path).database
    child = ServeProcess(mongo_uri, database, tmp_path, backend, run_flush_s=0.1, run_lease_s=1)
    try:
        start = await _start_run(child.url, "Long")
        await asyncio.sleep(0.5)  # a few flushes: its progress and events are stored
        child.proc.send_signal(signal.SIGKILL)
        child.proc.wait(10)
    finally:
        child.stop()
    assert _stored(mongo_uri, database, start)["status"] == "RUNNING"
    settings = Settings(mongodb_uri=mongo_uri, database=database, data_dir=tmp_path,
                        agents=configs(backend), **FAST)  # fmt: skip
    with LiveServer(settings) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            # Joining it: what the dead server stored, then its end, once the lease expired.
            events = await join(http, start["session_id"], start["run_id"])
            assert [e.event for e in events] == ["start", "delta", "error"]
            assert events[-1].json()["error"] == ABANDONED
            run = await stored_run(http, start["session_id"], start["run_id"])
            assert (run["status"], run["error"], run["content"]) == ("FAILED", ABANDONED, "Half ")


async def test_sigterm_drains_runs_then_interrupts_the_rest(
    mongo_uri: str, tmp_path: Path, backend: AgentBackend
) -> None:
    async def answer(body: dict[str, Any]) -> Any:
        if body["messages"][-1]["content"] == "quick":
            return await Stream(["Done ", "soon."], delay=0.3)(body)
        return await Stream(["Half "], hang=True)(body)

    backend.answer = answer
    database = live_settings(mongo_uri, tmp_path).database
    child = ServeProcess(mongo_uri, database, tmp_path, backend, run_flush_s=0.1, run_drain_s=2)
    try:
        slow = await _start_run(child.url, "slow")
        quick = await _start_run(child.url, "quick")
        t = time.monotonic()
        child.proc.send_signal(signal.SIGTERM)
        assert child.proc.wait(20) in (0, -signal.SIGTERM)
        elapsed = time.monotonic() - t
    finally:
        child.stop()
    assert elapsed < 10, elapsed
    done = _stored(mongo_uri, database, quick)
    assert (done["status"], done["content"]) == ("COMPLETED", "Done soon.")
    interrupted = _stored(mongo_uri, database, slow)
    assert (interrupted["status"], interrupted["error"]) == ("FAILED", INTERRUPTED)
    assert interrupted["content"] == "Half "
    with MongoClient(mongo_uri) as client:
        assert client[database]["run_leases"].count_documents({}) == 0
        client.drop_database(database)


# --- in process ----------------------------------------------------------------------------


async def test_database_writes_are_bounded_by_time_not_tokens(
    storage: Any, commands: Any, tmp_path: Path, backend: AgentBackend
) -> None:
    tokens = [f"t{n} " for n in range(400)]
    backend.answer = Stream(tokens, delay=0.003)
    settings = Settings(data_dir=tmp_path, agents=configs(backend), **FAST)
    app = build_app(settings, storage=storage)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL, timeout=60) as http:
        commands.reset()
        t = time.monotonic()
        async with aconnect_sse(http, "POST", "/api/agents/finance_agent/runs",
                                json={"message": "Long answer"}) as source:  # fmt: skip
            events = [e async for e in source.aiter_sse()]
        elapsed = time.monotonic() - t
        writes = [n for n in commands.names if n in {"insert", "update", "findAndModify", "delete"}]
        deltas = "".join(e.json()["content"] for e in events if e.event == "delta")
        assert deltas == "".join(tokens)
        end = events[-1].json()
        run = await stored_run(http, end["session_id"], end["run_id"])
        assert run["content"] == deltas
    await app.state.services.agents.aclose()
    # At most three writes per flush (progress, events, lease) plus the start and the end,
    # whatever the number of tokens.
    flushes = elapsed / settings.run_flush_s + 1
    assert len(writes) <= 3 * flushes + 6, (len(writes), elapsed)
    assert len(writes) < len(tokens) / 4


async def test_the_reaper_and_cancel_for_runs_nobody_runs(storage: Any, tmp_path: Path) -> None:
    from datetime import timedelta

    from agent_sessions.storage.sessions import now

    app = build_app(Settings(data_dir=tmp_path, **FAST), storage=storage)
    services = app.state.services
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as http:
        record = "mutation($i: RecordRunInput!) { recordRun(input: $i) { id } }"
        for run_id in ("left", "recorded"):
            run = {"sessionId": "s", "runId": run_id, "agentId": "a", "status": "RUNNING",
                   "messages": [{"role": "USER", "content": "hi"}]}  # fmt: skip
            await http.post("/graphql", json={"query": record, "variables": {"i": run}})
        # "left" was run by a server that stopped: its lease expired a while ago.
        await storage.live.take_lease(run_id="left", session_id="s", user_id="local",
                                      server="gone", until=now() - timedelta(seconds=5))  # fmt: skip
        await services.runs.reap()
        left = await stored_run(http, "s", "left")
        assert (left["status"], left["error"]) == ("FAILED", ABANDONED)
        # Its server stored no events: they are rebuilt from the stored run.
        events = await join(http, "s", "left")
        assert [e.event for e in events] == ["start", "error"]
        assert events[1].json()["error"] == ABANDONED
        # "recorded" has no lease (a client recorded it RUNNING): not reaped, but it can be
        # cancelled, and then it is CANCELLED.
        assert (await stored_run(http, "s", "recorded"))["status"] == "RUNNING"
        cancel = await http.post("/api/sessions/s/runs/recorded/cancel")
        assert (cancel.status_code, cancel.json()["status"]) == (200, "CANCELLED")
    await services.agents.aclose()
