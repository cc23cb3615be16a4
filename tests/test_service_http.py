"""The service as an operator and a browser see it over HTTP: request ids, one JSON log
line per request, /metrics, CORS, GraphQL over HTTP's media types and status codes, and
bodies that are JSON but not objects."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from agent_sessions.app import build_app, wants_graphql_response
from agent_sessions.observability import (
    JsonFormatter,
    RequestIdFilter,
    metrics_exposition,
    observe_command,
)
from agent_sessions.settings import Settings
from agent_sessions.storage import Storage
from agent_sessions.storage.monitoring import CommandTimer

from .helpers import BASE_URL, GraphQLClient, record

GRAPHQL_RESPONSE = "application/graphql-response+json"


class LogLines(logging.StreamHandler):
    """Every line the service logs while a test runs, as the JSON a log shipper reads."""

    def __init__(self) -> None:
        super().__init__(io.StringIO())
        self.setFormatter(JsonFormatter())
        self.addFilter(RequestIdFilter())

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return (json.loads(line) for line in self.stream.getvalue().splitlines())


@pytest.fixture
def log_lines() -> Iterator[LogLines]:
    handler = LogLines()
    root = logging.getLogger()
    root.addHandler(handler)
    level = root.level
    root.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def _sample(text: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


# --- request ids and logs -----------------------------------------------------------------


async def test_a_request_id_is_taken_or_made_and_always_returned(
    client: httpx.AsyncClient,
) -> None:
    given = await client.get("/healthz", headers={"X-Request-ID": "trace-42.a:b"})
    assert given.headers["x-request-id"] == "trace-42.a:b"
    made = await client.get("/healthz")
    other = await client.get("/healthz")
    assert len(made.headers["x-request-id"]) == 32
    assert made.headers["x-request-id"] != other.headers["x-request-id"]
    # An id that could forge log lines or headers is replaced, not echoed.
    forged = await client.get("/healthz", headers={"X-Request-ID": 'x" level=error'})
    assert forged.headers["x-request-id"] != 'x" level=error'
    assert len(forged.headers["x-request-id"]) == 32
    refused = await client.get("/api/sessions?size=0", headers={"X-Request-ID": "on-errors-too"})
    assert (refused.status_code, refused.headers["x-request-id"]) == (400, "on-errors-too")


async def test_one_json_line_per_request_without_keys_or_bodies(
    mongo_uri: str, tmp_path: Path, log_lines: LogLines
) -> None:
    secret = "message body that must not be logged"
    storage = await Storage.connect(mongo_uri, "t_logs_" + tmp_path.name[-8:])
    _, key = await storage.keys.create("alice")
    app = build_app(Settings(data_dir=tmp_path, admin_key="admin-key"), storage=storage)
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=BASE_URL
        ) as c:
            alice = GraphQLClient(c, {"Authorization": f"Bearer {key}", "X-Request-ID": "r-1"})
            await record(alice, sessionId="logged", messages=[{"role": "USER", "content": secret}])
            await c.get("/api/sessions/logged", headers={"Authorization": f"Bearer {key}"})
            await c.get(
                "/api/sessions?agentId=in-a-query", headers={"Authorization": f"Bearer {key}"}
            )
            await c.get("/api/sessions", headers={"Authorization": "Bearer wrong-key"})
    finally:
        await storage.client.drop_database(storage.database)
        await storage.client.close()
    access = [line for line in log_lines if line["logger"] == "agent_sessions.access"]
    assert [(a["method"], a["path"], a["status"]) for a in access] == [
        ("POST", "/graphql", 200),
        ("GET", "/api/sessions/logged", 200),
        ("GET", "/api/sessions", 200),
        ("GET", "/api/sessions", 401),
    ]
    first = access[0]
    assert first["request_id"] == "r-1" and first["level"] == "info"
    assert first["user_id"] == "alice" and first["route"] == "/graphql"
    assert first["time"].endswith("Z") and first["duration_ms"] > 0
    assert access[1]["route"] == "/api/sessions/{session_id}"
    assert "user_id" not in access[3]  # the key was refused: nobody is known
    ours = [line for line in log_lines if line["logger"].startswith(("agent_sessions", "uvicorn"))]
    text = json.dumps(ours)
    assert secret not in text and key not in text and "wrong-key" not in text
    assert "in-a-query" not in text  # no query strings either


async def test_the_masked_internal_error_names_the_requests_id(
    client: httpx.AsyncClient, storage: Storage, log_lines: LogLines
) -> None:
    # A stored message without created_at cannot be served: an internal error.
    now = datetime.now(UTC)
    broken = {"_id": "broken", "user_id": "local", "agent_id": "a", "title": None,
              "metadata": {}, "message_count": 1, "run_count": 0, "runs": [],
              "created_at": now, "updated_at": now,
              "messages": [{"id": "m", "role": "user", "content": "x", "run_id": None}]}  # fmt: skip
    await storage.client[storage.database]["sessions"].insert_one(broken)
    response = await client.post(
        "/graphql",
        json={"query": '{ session(id: "broken") { messages { nodes { createdAt } } } }'},
        headers={"X-Request-ID": "find-me"},
    )
    error = response.json()["errors"][0]
    assert error["extensions"] == {"code": "INTERNAL", "requestId": "find-me"}
    assert "Traceback" not in response.text
    logged = [line for line in log_lines if line["level"] == "error"]
    assert logged and all(line["request_id"] == "find-me" for line in logged)
    assert any("exc" in line for line in logged)  # the traceback is in the server's log


def test_an_invalid_log_level_is_a_clear_error_not_a_traceback(tmp_path: Path) -> None:
    import subprocess
    import sys

    command = str(Path(sys.executable).with_name("agent-sessions"))
    result = subprocess.run(
        [command, "keys", "list", "--data-dir", str(tmp_path)],
        env={"PATH": "/usr/bin:/bin", "AGENT_SESSIONS_LOG_LEVEL": "loud"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "log_level" in result.stderr and "'info' or 'debug'" in result.stderr
    assert "Traceback" not in result.stderr


# --- metrics ---------------------------------------------------------------------------------


async def test_metrics_count_requests_by_route_database_commands_and_runs(
    mongo_uri: str, tmp_path: Path
) -> None:
    storage = await Storage.connect(
        mongo_uri, "t_metrics_" + tmp_path.name[-8:], listeners=[CommandTimer(observe_command)]
    )
    app = build_app(Settings(data_dir=tmp_path), storage=storage)
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=BASE_URL
        ) as c:
            before = metrics_exposition()[0].decode()  # not /metrics: it counts runs once
            gql = GraphQLClient(c)
            await record(gql, sessionId="m1", runId="r1")
            await record(gql, sessionId="m1", runId="r2", status="FAILED")
            for _ in range(3):
                assert (await c.get("/api/sessions/m1/runs")).status_code == 200
            assert (await c.get("/api/sessions/nope")).status_code == 404
            response = await c.get("/metrics")
    finally:
        await storage.client.drop_database(storage.database)
        await storage.client.close()
    assert response.headers["content-type"].startswith("text/plain; version=")
    after = response.text
    route = {"method": "GET", "route": "/api/sessions/{session_id}/runs", "status": "200"}
    name = "agent_sessions_http_requests_total"
    assert _sample(after, name, **route) - _sample(before, name, **route) == 3
    missing = {"method": "GET", "route": "/api/sessions/{session_id}", "status": "404"}
    assert _sample(after, name, **missing) - _sample(before, name, **missing) == 1
    latency = "agent_sessions_http_request_duration_seconds_count"
    runs_route = {"method": "GET", "route": "/api/sessions/{session_id}/runs"}
    assert _sample(after, latency, **runs_route) - _sample(before, latency, **runs_route) == 3
    assert (
        _sample(after, "agent_sessions_db_command_duration_seconds_count", command="aggregate") > 0
    )
    assert _sample(after, "agent_sessions_database_up") == 1
    assert _sample(after, "agent_sessions_runs", status="COMPLETED") == 1
    assert _sample(after, "agent_sessions_runs", status="FAILED") == 1


async def test_metrics_need_a_key_in_key_mode_unless_made_public(
    storage: Storage, tmp_path: Path
) -> None:
    _, key = await storage.keys.create("prometheus")
    for public, anonymous in ((False, 401), (True, 200)):
        settings = Settings(data_dir=tmp_path, admin_key="adm", metrics_public=public)
        app = build_app(settings, storage=storage)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=BASE_URL
        ) as c:
            refused = await c.get("/metrics")
            assert refused.status_code == anonymous
            if anonymous == 401:
                assert set(refused.json()) == {"error"}
            keyed = await c.get("/metrics", headers={"Authorization": f"Bearer {key}"})
            assert keyed.status_code == 200
            assert "agent_sessions_http_requests_total" in keyed.text


# --- CORS ------------------------------------------------------------------------------------


@pytest.fixture
async def cors_client(storage: Storage, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(data_dir=tmp_path, admin_key="adm", cors_origins=["https://app.example"])
    app = build_app(settings, storage=storage)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL) as c:
        yield c


async def test_cors_preflight_and_answers_for_an_allowed_origin(
    cors_client: httpx.AsyncClient,
) -> None:
    preflight = await cors_client.options(
        "/graphql",
        headers={
            "Origin": "https://app.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "https://app.example"
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
    # The answer itself, even a refusal, carries the header, so the page can read it.
    answer = await cors_client.get("/api/sessions", headers={"Origin": "https://app.example"})
    assert answer.status_code == 401
    assert answer.headers["access-control-allow-origin"] == "https://app.example"
    assert "x-request-id" in answer.headers["access-control-expose-headers"].lower()


async def test_cors_refuses_other_origins_and_is_off_by_default(
    cors_client: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    headers = {"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    refused = await cors_client.options("/graphql", headers=headers)
    assert refused.status_code == 400
    assert "access-control-allow-origin" not in refused.headers
    default = await client.get("/healthz", headers={"Origin": "https://app.example"})
    assert "access-control-allow-origin" not in default.headers


def test_cors_origins_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENT_SESSIONS_CORS_ORIGINS", "https://a.example, http://localhost:3000")
    assert Settings().cors_origins == ["https://a.example", "http://localhost:3000"]
    monkeypatch.setenv("AGENT_SESSIONS_CORS_ORIGINS", '["https://b.example"]')
    assert Settings().cors_origins == ["https://b.example"]
    monkeypatch.setenv("AGENT_SESSIONS_CORS_ORIGINS", "https://a.example/path")
    with pytest.raises(ValueError, match="is not an origin"):
        Settings()


# --- GraphQL over HTTP -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, False),
        ("application/json", False),
        ("*/*", False),
        (GRAPHQL_RESPONSE, True),
        (f"{GRAPHQL_RESPONSE}, application/json;q=0.9", True),
        (f"application/json, {GRAPHQL_RESPONSE};q=0.5", False),
        (f"{GRAPHQL_RESPONSE};q=0", False),
    ],
)
def test_the_media_type_follows_the_accept_header(accept: str | None, expected: bool) -> None:
    assert wants_graphql_response(accept) is expected


@pytest.mark.parametrize(
    ("document", "variables"),
    [
        ("{ viewer { userId ", None),  # does not parse
        ("{ viewer { noSuchField } }", None),  # does not validate
        ("query($n: Int!) { sessions(first: $n) { totalCount } }", {"n": "many"}),  # coercion
    ],
)
async def test_request_errors_are_400_without_data_as_graphql_response_json(
    client: httpx.AsyncClient, document: str, variables: dict[str, Any] | None
) -> None:
    body = {"query": document, "variables": variables}
    new = await client.post("/graphql", json=body, headers={"Accept": GRAPHQL_RESPONSE})
    assert new.status_code == 400
    assert new.headers["content-type"] == f"{GRAPHQL_RESPONSE}; charset=utf-8"
    assert "data" not in new.json()
    assert new.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    old = await client.post("/graphql", json=body)  # application/json: as before
    assert old.status_code == 200
    assert old.headers["content-type"] == "application/json"
    assert old.json()["data"] is None


async def test_field_errors_stay_200_with_data_as_graphql_response_json(
    client: httpx.AsyncClient,
) -> None:
    ok = await client.post(
        "/graphql", json={"query": "{ viewer { userId } }"}, headers={"Accept": GRAPHQL_RESPONSE}
    )
    assert (ok.status_code, ok.json()) == (200, {"data": {"viewer": {"userId": "local"}}})
    assert ok.headers["content-type"].startswith(GRAPHQL_RESPONSE)
    field_error = await client.post(
        "/graphql",
        json={"query": "{ sessions(first: -1) { totalCount } }"},
        headers={"Accept": GRAPHQL_RESPONSE},
    )
    assert field_error.status_code == 200
    assert "data" in field_error.json() and field_error.json()["errors"]


@pytest.mark.parametrize("body", [b'"x"', b"42", b"null", b"true", b"[1]"])
async def test_a_json_body_that_is_not_an_object_is_400(
    client: httpx.AsyncClient, body: bytes
) -> None:
    for accept in ("application/json", GRAPHQL_RESPONSE):
        response = await client.post(
            "/graphql", content=body, headers={"Content-Type": "application/json", "Accept": accept}
        )
        assert response.status_code == 400, (body, accept)
        assert response.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    rest = await client.post(
        "/api/agents/any/runs", content=body, headers={"Content-Type": "application/json"}
    )
    assert (rest.status_code, set(rest.json())) == (400, {"error"})
