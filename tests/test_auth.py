"""Identity and ownership with keys on: every entry point asked twice, as the owner and as
someone else; another user's session is indistinguishable from one that does not exist."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from typing import Any

import bson
import httpx
import pytest

from agent_sessions.settings import Settings
from agent_sessions.storage import Storage

from .helpers import BASE_URL, GraphQLClient

ADMIN_KEY = "test-admin-key"
CREATE_KEY = "mutation($u: String!, $a: Boolean) { createApiKey(userId: $u, admin: $a) { id key } }"
RECORD = "mutation($i: RecordRunInput!) { recordRun(input: $i) { id sessionId } }"


@pytest.fixture
def settings(tmp_path: Any, compiled: bool) -> Settings:
    return Settings(data_dir=tmp_path, admin_key=ADMIN_KEY, compiled_execution=compiled)


@pytest.fixture
async def http(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL) as c:
        yield c


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def admin(http: httpx.AsyncClient) -> GraphQLClient:
    return GraphQLClient(http, bearer(ADMIN_KEY))


async def _user(
    admin: GraphQLClient, http: httpx.AsyncClient, user: str, is_admin: bool = False
) -> GraphQLClient:
    key = (await admin.data(CREATE_KEY, {"u": user, "a": is_admin}))["createApiKey"]["key"]
    return GraphQLClient(http, bearer(key))


@pytest.fixture
async def alice(admin: GraphQLClient, http: httpx.AsyncClient) -> GraphQLClient:
    return await _user(admin, http, "alice")


@pytest.fixture
async def bob(admin: GraphQLClient, http: httpx.AsyncClient) -> GraphQLClient:
    return await _user(admin, http, "bob")


async def _alices_session(alice: GraphQLClient) -> tuple[str, str]:
    run = (
        await alice.data(
            RECORD,
            {
                "i": {
                    "sessionId": "alice-s",
                    "agentId": "a",
                    "messages": [
                        {"role": "USER", "content": "secret"},
                        {"role": "ASSISTANT", "content": "ok"},
                    ],
                    "retrievalDiagnostics": {"k": 1},
                    "retrievedContext": [{"id": "c1", "text": "confidential", "score": 0.9}],
                }
            },
        )
    )["recordRun"]
    return run["sessionId"], run["id"]


def _code(body: dict[str, Any]) -> str:
    return body["errors"][0]["extensions"]["code"]


# --- who is calling --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Token abc"},
        {"Authorization": "Bearer"},
        bearer("wrong"),
        bearer("ask_" + "x" * 43),
    ],
)
async def test_missing_malformed_or_wrong_key_is_401(
    http: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    response = await http.post("/graphql", json={"query": "{ viewer { userId } }"}, headers=headers)
    assert response.status_code == 401
    assert _code(response.json()) == "UNAUTHENTICATED"
    response = await http.get("/api/sessions", headers=headers)
    assert response.status_code == 401
    assert set(response.json()) == {"error"}


async def test_healthz_needs_no_key(http: httpx.AsyncClient) -> None:
    response = await http.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


async def test_viewer(admin: GraphQLClient, alice: GraphQLClient) -> None:
    assert (await admin.data("{ viewer { userId isAdmin } }"))["viewer"] == {
        "userId": "admin",
        "isAdmin": True,
    }
    assert (await alice.data("{ viewer { userId isAdmin } }"))["viewer"] == {
        "userId": "alice",
        "isAdmin": False,
    }


async def test_only_administrators_create_keys(
    alice: GraphQLClient, admin: GraphQLClient, http
) -> None:
    body = await alice(CREATE_KEY, {"u": "mallory", "a": True})
    assert _code(body) == "FORBIDDEN"
    assert body["data"] is None
    carol_admin = await _user(admin, http, "carol", is_admin=True)
    assert (await carol_admin.data("{ viewer { userId isAdmin } }"))["viewer"] == {
        "userId": "carol",
        "isAdmin": True,
    }


async def test_revocation_takes_effect_at_once(
    admin: GraphQLClient, http: httpx.AsyncClient
) -> None:
    created = (await admin.data(CREATE_KEY, {"u": "dave"}))["createApiKey"]
    dave = GraphQLClient(http, bearer(created["key"]))
    assert (await dave.data("{ viewer { userId } }"))["viewer"]["userId"] == "dave"
    # A user may not revoke someone else's key; an administrator may.
    erin = await _user(admin, http, "erin")
    assert (await erin.data("mutation($id: ID!) { revokeApiKey(id: $id) }", {"id": created["id"]}))[
        "revokeApiKey"
    ] is False
    assert (
        await admin.data("mutation($id: ID!) { revokeApiKey(id: $id) }", {"id": created["id"]})
    )["revokeApiKey"] is True
    assert _code(await dave("{ viewer { userId } }")) == "UNAUTHENTICATED"
    response = await http.get("/api/sessions", headers=dave.headers)
    assert response.status_code == 401
    assert (
        await admin.data("mutation($id: ID!) { revokeApiKey(id: $id) }", {"id": created["id"]})
    )["revokeApiKey"] is False


async def test_keys_are_not_stored_in_clear(admin: GraphQLClient, storage: Storage) -> None:
    created = (await admin.data(CREATE_KEY, {"u": "frank"}))["createApiKey"]
    key = created["key"]
    assert key.startswith("ask_")
    assert len(key) >= 4 + 43
    [doc] = await storage.keys.col.find({"_id": created["id"]}).to_list()
    assert key.encode() not in bson.encode(doc)
    assert doc["hash"] == hashlib.sha256(key.encode()).hexdigest()
    assert doc["prefix"] == key[:10]
    assert doc["user_id"] == "frank"
    assert doc["created_at"] is not None


# --- ownership: GraphQL ------------------------------------------------------------------------


async def test_session_and_run_are_null_for_someone_else(
    alice: GraphQLClient, bob: GraphQLClient
) -> None:
    session_id, run_id = await _alices_session(alice)
    q = "query($s: ID!, $r: ID!) { session(id: $s) { id } run(sessionId: $s, runId: $r) { id content } }"
    mine = await alice.data(q, {"s": session_id, "r": run_id})
    assert mine == {"session": {"id": session_id}, "run": {"id": run_id, "content": "ok"}}
    theirs = await bob.data(q, {"s": session_id, "r": run_id})
    never = await bob.data(q, {"s": "never-existed", "r": run_id})
    assert theirs == never == {"session": None, "run": None}


async def test_aliases_mixing_own_and_foreign_sessions(
    alice: GraphQLClient, bob: GraphQLClient
) -> None:
    session_id, _ = await _alices_session(alice)
    await bob.data(
        RECORD,
        {
            "i": {
                "sessionId": "bob-s",
                "agentId": "a",
                "messages": [{"role": "USER", "content": "mine"}],
            }
        },
    )
    q = """query($a: ID!) {
      own: session(id: "bob-s") { id messages { nodes { content } } }
      foreign: session(id: $a) { id messages { nodes { content } } runs { nodes { retrievedContext { text } } } }
    }"""
    data = await bob.data(q, {"a": session_id})
    assert data == {
        "own": {"id": "bob-s", "messages": {"nodes": [{"content": "mine"}]}},
        "foreign": None,
    }


async def test_lists_show_only_your_own(
    alice: GraphQLClient, bob: GraphQLClient, admin: GraphQLClient
) -> None:
    await _alices_session(alice)
    q = "query($f: SessionFilter) { sessions(filter: $f) { totalCount nodes { id userId } } sessionPage(filter: $f) { totalElements } }"
    assert (await alice.data(q))["sessions"]["nodes"] == [{"id": "alice-s", "userId": "alice"}]
    bobs = await bob.data(q)
    assert bobs["sessions"] == {"totalCount": 0, "nodes": []}
    assert bobs["sessionPage"]["totalElements"] == 0
    named = await bob.data(q, {"f": {"userId": "alice"}})
    assert named["sessions"] == {"totalCount": 0, "nodes": []}
    assert named["sessionPage"]["totalElements"] == 0
    assert (await admin.data(q, {"f": {"userId": "alice"}}))["sessions"]["totalCount"] == 1


async def test_delete_someone_elses_session_is_false_and_changes_nothing(
    alice: GraphQLClient, bob: GraphQLClient
) -> None:
    session_id, _ = await _alices_session(alice)
    delete = "mutation($s: ID!) { deleteSession(id: $s) }"
    assert (await bob.data(delete, {"s": session_id}))["deleteSession"] is False
    assert (
        await alice.data("query($s: ID!) { session(id: $s) { messageCount } }", {"s": session_id})
    )["session"] == {"messageCount": 2}
    assert (await alice.data(delete, {"s": session_id}))["deleteSession"] is True


async def test_writing_onto_someone_elses_session_is_not_found(
    alice: GraphQLClient, bob: GraphQLClient
) -> None:
    session_id, _ = await _alices_session(alice)
    attempt = {
        "sessionId": session_id,
        "agentId": "a",
        "messages": [{"role": "USER", "content": "injected"}],
    }
    body = await bob(RECORD, {"i": attempt})
    assert _code(body) == "NOT_FOUND"
    never = await bob(RECORD, {"i": {**attempt, "sessionId": "never"}})
    assert "errors" not in never  # a free id simply becomes bob's new session
    body = await bob(
        "mutation($i: CreateSessionInput!) { createSession(input: $i) { id } }",
        {"i": {"id": session_id}},
    )
    assert _code(body) == "NOT_FOUND"
    state = await alice.data(
        "query($s: ID!) { session(id: $s) { userId messageCount runCount messages { nodes { content } } } }",
        {"s": session_id},
    )
    assert state["session"] == {
        "userId": "alice",
        "messageCount": 2,
        "runCount": 1,
        "messages": {"nodes": [{"content": "secret"}, {"content": "ok"}]},
    }


async def test_naming_another_user_is_forbidden_and_stores_nothing(
    bob: GraphQLClient, admin: GraphQLClient
) -> None:
    body = await bob(
        RECORD,
        {"i": {"userId": "alice", "agentId": "a", "messages": [{"role": "USER", "content": "x"}]}},
    )
    assert _code(body) == "FORBIDDEN"
    assert body["errors"][0]["message"] == "only administrators may act for another user"
    body = await bob('mutation { createSession(input: {userId: "alice"}) { id } }')
    assert _code(body) == "FORBIDDEN"
    assert (await admin.data("{ sessions { totalCount } }"))["sessions"]["totalCount"] == 0
    # Naming yourself is fine.
    assert "errors" not in await bob(
        RECORD, {"i": {"userId": "bob", "agentId": "a", "messages": []}}
    )


async def test_administrators_write_for_anyone(admin: GraphQLClient, alice: GraphQLClient) -> None:
    await admin.data(
        RECORD,
        {
            "i": {
                "sessionId": "for-alice",
                "userId": "alice",
                "agentId": "a",
                "messages": [{"role": "USER", "content": "hi"}],
            }
        },
    )
    await admin.data(RECORD, {"i": {"sessionId": "for-admin", "agentId": "a", "messages": []}})
    owners = await admin.data(
        '{ a: session(id: "for-alice") { userId } b: session(id: "for-admin") { userId } }'
    )
    assert owners == {"a": {"userId": "alice"}, "b": {"userId": "admin"}}
    assert (await alice.data('{ session(id: "for-alice") { id } }'))["session"] == {
        "id": "for-alice"
    }
    # The runtime's key appends to a user's session without naming them...
    await admin.data(RECORD, {"i": {"sessionId": "for-alice", "agentId": "a", "messages": []}})
    # ...but naming a different user than the owner does not reach it.
    body = await admin(
        RECORD, {"i": {"sessionId": "for-alice", "userId": "bob", "agentId": "a", "messages": []}}
    )
    assert _code(body) == "NOT_FOUND"
    assert (await alice.data('{ session(id: "for-alice") { runCount } }'))["session"] == {
        "runCount": 2
    }


# --- ownership: REST ------------------------------------------------------------------------------


async def test_every_rest_path_is_404_for_someone_else(
    alice: GraphQLClient, bob: GraphQLClient, http
) -> None:
    session_id, run_id = await _alices_session(alice)
    paths = [
        "/api/sessions/{s}",
        "/api/sessions/{s}/messages",
        "/api/sessions/{s}/runs",
        "/api/sessions/{s}/runs/{r}/retrieved-context",
    ]
    for path in paths:
        own = await http.get(path.format(s=session_id, r=run_id), headers=alice.headers)
        assert own.status_code == 200, path
        foreign = await http.get(path.format(s=session_id, r=run_id), headers=bob.headers)
        missing = await http.get(path.format(s="never-existed", r=run_id), headers=bob.headers)
        assert foreign.status_code == missing.status_code == 404, path
        assert foreign.content == missing.content, path
        assert foreign.headers["content-length"] == missing.headers["content-length"]
    foreign = await http.delete(f"/api/sessions/{session_id}", headers=bob.headers)
    missing = await http.delete("/api/sessions/never-existed", headers=bob.headers)
    assert (
        (foreign.status_code, foreign.content)
        == (missing.status_code, missing.content)
        == (404, b'{"error":"session not found"}')
    )
    listing = await http.get("/api/sessions?userId=alice", headers=bob.headers)
    assert listing.json() == {
        "content": [],
        "totalElements": 0,
        "totalPages": 0,
        "page": 0,
        "size": 20,
    }
    listing = await http.get("/api/sessions", headers=alice.headers)
    assert [s["sessionId"] for s in listing.json()["content"]] == [session_id]
    assert (
        await http.delete(f"/api/sessions/{session_id}", headers=alice.headers)
    ).status_code == 204
