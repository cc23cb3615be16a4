"""Inputs built to break things: each test is a defect a review found, kept fixed."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.responses import Response

from agent_sessions.app import build_app
from agent_sessions.resolvers.cursors import _encode
from agent_sessions.settings import Settings
from agent_sessions.storage import Storage
from agent_sessions.storage.embedded import EmbeddedServerError, start_embedded

from .agent_servers import AgentBackend, agent_configs
from .helpers import GraphQLClient, record


@pytest.mark.parametrize("run_id", ["$$r.id", "$$ROOT", "$runs", "$$nope"])
async def test_a_run_id_is_a_value_never_an_expression(
    client: httpx.AsyncClient, gql: GraphQLClient, run_id: str
) -> None:
    await record(gql, sessionId="s1", runId="r1", retrievedContext=[{"id": "c", "text": "t"}])
    response = await client.get(f"/api/sessions/s1/runs/{run_id}/retrieved-context")
    assert (response.status_code, response.json()) == (
        404,
        {"error": "run not found in this session"},
    )
    data = await gql.data(
        'query($r: ID!) { session(id: "s1") { run(id: $r) { id } } run(sessionId: "s1", runId: $r) { id } }',
        {"r": run_id},
    )
    assert data == {"session": {"run": None}, "run": None}


async def test_json_that_mongodb_cannot_store_is_bad_input(gql: GraphQLClient) -> None:
    body = await gql(
        "mutation($m: JSON) { createSession(input: {metadata: $m}) { id } }", {"m": {"a\u0000b": 1}}
    )
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    # Integers beyond 64 bits can only come as literals (JSON parsing makes them floats).
    for literal in ("{n: 100000000000000000000}", "{deep: [{x: -18446744073709551616}]}"):
        body = await gql(f"mutation {{ createSession(input: {{metadata: {literal}}}) {{ id }} }}")
        assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", literal
    assert (await gql.data("{ sessions { totalCount } }"))["sessions"]["totalCount"] == 0


async def test_a_cursor_beyond_any_position_is_bad_input(gql: GraphQLClient) -> None:
    await record(gql, sessionId="s1")
    body = await gql(
        'query($c: String) { session(id: "s1") { id messages(after: $c) { totalCount } } }',
        {"c": _encode(["m", 2**63 - 1])},
    )
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert body["errors"][0]["path"] == ["session", "messages"]


async def test_a_stored_type_key_does_not_replace_the_diagnostics_marker(
    client: httpx.AsyncClient, gql: GraphQLClient
) -> None:
    await record(gql, sessionId="s1", runId="r1", retrievalDiagnostics={"_type": "chunk", "k": 1})
    body = (await client.get("/api/sessions/s1/runs/r1/retrieved-context")).json()
    assert body["retrieved_context"] == [{"_type": "retrieval_diagnostics", "k": 1}]


# --- agent answers that cannot be stored or served ---------------------------------------


def _answer(raw: str) -> Any:
    async def answer(body: dict[str, Any]) -> Response:
        return Response(raw, media_type="application/json")

    return answer


@pytest.mark.parametrize(
    "raw",
    [
        '{"content": "ok", "usage": {"total_tokens": 100000000000000000000}}',
        '{"content": "ok", "usage": {"total_tokens": 3000000000}}',
        '{"content": "ok", "retrieval_diagnostics": {"a\\u0000b": 1}}',
        '{"content": "ok", "retrieval_diagnostics": {"n": 100000000000000000000}}',
        '{"content": "ok", "retrieved_context": [{"id": "k", "text": "t", "score": NaN}]}',
        '{"content": "ok", "retrieved_context": [{"id": "k", "text": "t", "meta": {"$where": 1}}]}',
    ],
    ids=[
        "tokens-beyond-int64",
        "tokens-beyond-int32",
        "nul-key",
        "int-beyond-int64",
        "nan-score",
        "operator-key",
    ],
)
async def test_an_answer_that_cannot_be_kept_fails_the_run_and_keeps_the_session_readable(
    storage: Storage, tmp_path: Path, compiled: bool, raw: str
) -> None:
    with AgentBackend(_answer(raw)) as backend:
        settings = Settings(
            data_dir=tmp_path, agents=agent_configs(backend), compiled_execution=compiled
        )
        application = build_app(settings, storage=storage)
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            response = await client.post(
                "/api/agents/rag_agent/runs", json={"message": "hi", "sessionId": "s"}
            )
            assert response.status_code == 502
            assert set(response.json()) == {"error", "runId", "sessionId"}
            runs = await client.get("/api/sessions/s/runs")
            assert runs.status_code == 200
            assert [r["status"] for r in runs.json()] == ["FAILED"]
            assert (await client.get("/api/sessions/s/messages")).status_code == 200
        await application.state.services.agents.aclose()


# --- requests from elsewhere ----------------------------------------------------------------


async def test_open_mode_answers_loopback_host_names_only(client: httpx.AsyncClient) -> None:
    for host in ("localhost", "localhost:8080", "127.0.0.1:8080", "[::1]:8080", "127.1.2.3"):
        assert (await client.get("/healthz", headers={"Host": host})).status_code == 200, host
    for host in ("rebind.attacker.test", "rebind.attacker.test:8080", "10.0.0.5", ""):
        response = await client.get("/api/sessions", headers={"Host": host})
        assert response.status_code == 421, host
        assert set(response.json()) == {"error"}


async def test_an_agent_run_must_be_sent_as_json(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/agents/any/runs", content=b'{"message": "hi"}', headers={"Content-Type": "text/plain"}
    )
    assert (response.status_code, response.json()) == (
        415,
        {"error": "send the body as application/json"},
    )


@pytest.mark.slow
async def test_a_database_outage_during_key_lookup_is_503_in_each_shape(tmp_path: Path) -> None:
    server = start_embedded(tmp_path / "db")
    storage = await Storage.connect(server.uri, f"t_{uuid.uuid4().hex[:8]}", embedded=server)
    _, key = await storage.keys.create("alice")
    application = build_app(Settings(data_dir=tmp_path, admin_key="adm"), storage=storage)
    server.stop()
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=application), base_url="http://localhost"
    ) as c:
        rest = await c.get("/api/sessions", headers=headers)
        assert (rest.status_code, set(rest.json())) == (503, {"error"})
        graphql = await c.post("/graphql", json={"query": "{ viewer { userId } }"}, headers=headers)
        assert graphql.status_code == 503
        assert graphql.json()["errors"][0]["extensions"]["code"] == "DATABASE_UNAVAILABLE"
    await storage.client.close()


# --- the embedded database's directory ----------------------------------------------------------


@pytest.mark.slow
def test_a_start_that_times_out_is_a_clear_error(tmp_path: Path) -> None:
    silent = tmp_path / "silent-secantusd"
    silent.write_text("#!/bin/sh\nsleep 30\n")
    silent.chmod(0o755)
    with pytest.raises(EmbeddedServerError, match="did not start within 1s"):
        start_embedded(tmp_path / "data", executable=str(silent), timeout=1)
    start_embedded(tmp_path / "data").stop()  # the directory was let go


@pytest.mark.slow
def test_a_server_does_not_join_a_database_another_process_owns(tmp_path: Path) -> None:
    first = start_embedded(tmp_path)
    try:
        with pytest.raises(
            EmbeddedServerError, match="in use by another agent-sessions process"
        ) as excinfo:
            start_embedded(tmp_path, join=False, wait=0.3)
        pid = json.loads((tmp_path / "server.json").read_text())["pid"]
        assert f"pid {pid}" in str(excinfo.value)
        joined = start_embedded(tmp_path)  # a short command still joins
        assert joined.uri == first.uri
    finally:
        first.stop()
    start_embedded(tmp_path, join=False, wait=0.3).stop()
