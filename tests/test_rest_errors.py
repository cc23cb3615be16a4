"""REST: ids that cannot be ids, wrong methods and unknown paths, 413, 503, and the
error shape across the board."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from agent_sessions.app import MAX_BODY_BYTES, build_app
from agent_sessions.settings import Settings
from agent_sessions.storage import Storage
from agent_sessions.storage.embedded import start_embedded

from .helpers import BASE_URL, GraphQLClient, record
from .rest_expectations import (
    SESSION_NOT_FOUND,
    _three_sessions,
    assert_error,
    make_session,
)

# --- ids that cannot be ids --------------------------------------------------------------

NOT_IDS = [
    "%7B%22%24ne%22%3Anull%7D",  # {"$ne":null}
    "%7B%22%24gt%22%3A%22%22%7D",  # {"$gt":""}
    "..%2F",
    "..%2F..%2Fhealthz",
    "a%2Fb",
    "x" * 200,
    "x" * 129,
    "a%20b",
    "a%00b",
    "%C3%A9t%C3%A9",
    "s-a%0A",
]
SESSION_PATHS = [
    ("GET", ""),
    ("GET", "/messages"),
    ("GET", "/runs"),
    ("GET", "/runs/run-1/retrieved-context"),
    ("DELETE", ""),
]


@pytest.mark.parametrize("bad_id", NOT_IDS)
@pytest.mark.parametrize(("method", "suffix"), SESSION_PATHS)
async def test_path_ids_that_cannot_be_ids_are_not_found(
    client: httpx.AsyncClient,
    gql: GraphQLClient,
    storage: Storage,
    bad_id: str,
    method: str,
    suffix: str,
) -> None:
    # sessions exist, so an id read as a query operator would find one
    await _three_sessions(gql, storage)
    await record(gql, sessionId="s-a", runId="run-1")
    reference = await client.request(method, f"/api/sessions/well-formed-but-absent{suffix}")
    assert reference.status_code == 404
    assert reference.json() == SESSION_NOT_FOUND

    response = await client.request(method, f"/api/sessions/{bad_id}{suffix}")
    assert_error(response, 404)
    assert response.json() == SESSION_NOT_FOUND
    assert response.content == reference.content
    assert response.headers["content-type"] == reference.headers["content-type"]
    # nothing was deleted or changed by the attempt
    assert await storage.sessions.heads.count_documents({}) == 3


async def test_longest_valid_id_is_served_and_one_more_is_not(
    client: httpx.AsyncClient, gql: GraphQLClient
) -> None:
    longest = "L" * 128
    await record(gql, sessionId=longest)
    ok = await client.get(f"/api/sessions/{longest}")
    assert ok.status_code == 200
    assert ok.json()["sessionId"] == longest
    too_long = await client.get(f"/api/sessions/{longest}L")
    assert_error(too_long, 404)
    assert too_long.json() == SESSION_NOT_FOUND


# --- wrong methods, unknown paths --------------------------------------------------------


def allowed(response: httpx.Response) -> set[str]:
    return {m.strip() for m in response.headers["allow"].split(",") if m.strip()}


@pytest.mark.parametrize(
    ("method", "path", "methods"),
    [
        ("POST", "/api/sessions/s-a", {"GET", "HEAD", "DELETE", "PATCH"}),
        ("PUT", "/api/sessions/s-a", {"GET", "HEAD", "DELETE", "PATCH"}),
        ("PUT", "/api/sessions", {"GET", "HEAD"}),
        ("POST", "/api/sessions", {"GET", "HEAD"}),
        ("DELETE", "/api/sessions", {"GET", "HEAD"}),
        ("POST", "/api/sessions/s-a/messages", {"GET", "HEAD"}),
        ("DELETE", "/api/sessions/s-a/runs", {"GET", "HEAD"}),
        ("GET", "/api/sessions/s-a/runs/run-1", {"DELETE"}),
        ("GET", "/api/sessions/s-a/fork", {"POST"}),
        ("PUT", "/api/sessions/s-a/runs/run-1/retrieved-context", {"GET", "HEAD"}),
        ("POST", "/api/openapi.json", {"GET", "HEAD"}),
    ],
)
async def test_wrong_method_is_405_with_allow(
    client: httpx.AsyncClient,
    gql: GraphQLClient,
    storage: Storage,
    method: str,
    path: str,
    methods: set[str],
) -> None:
    await make_session(gql, storage, "s-a")
    response = await client.request(method, path, json={"message": "hi"})
    assert_error(response, 405)
    assert "allow" in response.headers
    assert allowed(response) == methods
    # the session is still there
    assert (await client.get("/api/sessions/s-a")).status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/api",
        "/api/",
        "/api/nope",
        "/api/session",
        "/api/sessions/s-a/unknown",
        "/api/sessions/s-a/runs/run-1/context",
        "/api/sessions/s-a/messages/extra",
        "/api/v2/sessions",
    ],
)
async def test_unknown_api_path_is_404_json(
    client: httpx.AsyncClient, gql: GraphQLClient, storage: Storage, path: str
) -> None:
    await make_session(gql, storage, "s-a")
    response = await client.get(path)
    assert_error(response, 404)


# --- 413 ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/agents/finance_agent/runs"),
        ("DELETE", "/api/sessions/s-a"),
        ("GET", "/api/sessions"),
        ("POST", "/api/nope"),
    ],
)
@pytest.mark.slow
async def test_body_over_8_mib_is_413(
    client: httpx.AsyncClient, gql: GraphQLClient, storage: Storage, method: str, path: str
) -> None:
    await make_session(gql, storage, "s-a")
    body = b'{"message": "' + b"x" * (8 * 1024 * 1024) + b'"}'
    assert len(body) > 8 * 1024 * 1024
    response = await client.request(
        method, path, content=body, headers={"content-type": "application/json"}
    )
    assert_error(response, 413)
    # nothing happened: the session survives a DELETE whose body was refused
    assert (await client.get("/api/sessions/s-a")).status_code == 200


async def test_streamed_body_over_8_mib_without_length_is_413(
    client: httpx.AsyncClient, gql: GraphQLClient, storage: Storage
) -> None:
    await make_session(gql, storage, "s-a")

    async def chunks():
        piece = b"x" * (1024 * 1024)
        for _ in range(9):
            yield piece

    response = await client.request(
        "DELETE",
        "/api/sessions/s-a",
        content=chunks(),
        headers={"content-type": "application/octet-stream"},
    )
    assert "content-length" not in response.request.headers
    assert_error(response, 413)
    assert (await client.get("/api/sessions/s-a")).status_code == 200


async def test_body_of_exactly_8_mib_is_not_refused(
    client: httpx.AsyncClient, gql: GraphQLClient, storage: Storage
) -> None:
    assert MAX_BODY_BYTES == 8 * 1024 * 1024
    await make_session(gql, storage, "s-a")
    response = await client.request(
        "DELETE", "/api/sessions/never-existed", content=b"x" * MAX_BODY_BYTES
    )
    assert_error(response, 404)
    assert response.json() == SESSION_NOT_FOUND


# --- 503 ---------------------------------------------------------------------------------


@pytest.mark.slow
async def test_database_down_is_503(tmp_path: Path) -> None:
    server = start_embedded(tmp_path / "db503")
    st: Storage | None = None
    try:
        st = await Storage.connect(server.uri, "t_x", embedded=server)
        app = build_app(Settings(data_dir=tmp_path), storage=st)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as c:
            assert (await c.get("/healthz")).json() == {"status": "ok"}
            assert (await c.get("/api/sessions")).status_code == 200

            assert server.process is not None
            server.process.kill()
            server.process.wait()

            response = await c.get("/api/sessions")
            assert_error(response, 503)

            health = await c.get("/healthz")
            assert health.status_code == 503
            assert health.headers["content-type"].split(";")[0] == "application/json"
            assert "Traceback" not in health.text
            assert health.json().get("status") != "ok"
    finally:
        if st is not None:
            await st.client.close()
        server.stop()


# --- the error shape, across the board ---------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/api/sessions?page=-1", 400),
        ("GET", "/api/sessions?size=abc", 400),
        ("GET", "/api/sessions?page=0&size=1000", 400),
        ("GET", "/api/sessions/never-existed", 404),
        ("GET", "/api/sessions/never-existed/messages", 404),
        ("GET", "/api/sessions/never-existed/runs", 404),
        ("GET", "/api/sessions/never-existed/runs/r/retrieved-context", 404),
        ("GET", "/api/sessions/s-a/runs/no-such-run/retrieved-context", 404),
        ("DELETE", "/api/sessions/never-existed", 404),
        ("GET", "/api/sessions/%7B%22%24ne%22%3Anull%7D", 404),
        ("GET", "/api/unknown", 404),
        ("POST", "/api/sessions/s-a", 405),
        ("PUT", "/api/sessions", 405),
    ],
)
async def test_every_error_is_a_json_error_object(
    client: httpx.AsyncClient,
    gql: GraphQLClient,
    storage: Storage,
    method: str,
    path: str,
    status: int,
) -> None:
    await make_session(gql, storage, "s-a")
    response = await client.request(method, path)
    assert_error(response, status)
    assert response.headers["content-type"] == "application/json"
