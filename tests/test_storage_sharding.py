"""Scale-out: every database command of the main requests names its session, so on a
sharded cluster (shard keys ``sessions: {_id: hashed}``, ``session_pages: {session_id:
hashed}``; README, "Scaling out") each goes to one shard. The exceptions are the lists
of sessions, a documented scatter-gather, and the API keys, which stay unsharded.

Runs on tiny bounds, so the sessions have pages and page moves happen during the test."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from agent_sessions.storage.layout import DEFAULT_BOUNDS, PAGES, SESSIONS, SHARD_KEYS, Bounds

from .helpers import TINY_BOUNDS, CommandLog, GraphQLClient, record

# Commands that are not about one session: list reads (scatter-gather on purpose) and
# the unsharded key collection; transactions' own commands carry no filter.
LIST_READS = {"find", "aggregate", "count"}
# run_leases holds only the runs in progress (a few documents): unsharded.
UNSHARDED = {"api_keys", "agent_sessions_meta", "run_leases"}
NO_TARGET = {"commitTransaction", "abortTransaction", "createIndexes", "listIndexes"}


@pytest.fixture(params=["whole", "paged"])
def bounds(request: pytest.FixtureRequest) -> Bounds:
    return DEFAULT_BOUNDS if request.param == "whole" else TINY_BOUNDS


def _names_session(value: Any, key: str) -> bool:
    """Whether a filter pins ``key`` to values (equality or ``$in``), at its top or in
    every branch of an ``$and``/``$or``."""
    if not isinstance(value, dict):
        return False
    if key in value:
        target = value[key]
        return not isinstance(target, dict) or set(target) <= {"$in", "$eq"}
    if "$and" in value:
        return any(_names_session(v, key) for v in value["$and"])
    if "$or" in value:
        return all(_names_session(v, key) for v in value["$or"])
    return False


def targeted(command: dict[str, Any]) -> tuple[bool, str]:
    """Whether a command goes to one shard by its collection's key, and what it is."""
    name = next(iter(command))
    collection = command[name]
    if name in NO_TARGET or collection in UNSHARDED:
        return True, f"{name} (not sharded)"
    key = next(iter(SHARD_KEYS.get(collection, {"?": 1})))
    if name == "insert":
        return all(key in d for d in command["documents"]), f"insert {collection}"
    if name in ("update", "delete"):
        statements = command["updates" if name == "update" else "deletes"]
        return all(_names_session(s["q"], key) for s in statements), f"{name} {collection}"
    if name == "findAndModify":
        return _names_session(command["query"], key), f"findAndModify {collection}"
    if name in ("find", "count"):
        return _names_session(
            command.get("filter", command.get("query")), key
        ), f"{name} {collection}"
    if name == "aggregate":
        first = command["pipeline"][0] if command["pipeline"] else {}
        ok = "$match" in first and _names_session(first["$match"], key)
        for stage in command["pipeline"]:
            if "$lookup" in stage:  # a lookup into pages names its session too
                inner = stage["$lookup"]["pipeline"][0]["$match"]
                ok = (
                    ok and stage["$lookup"]["from"] == PAGES and _names_session(inner, "session_id")
                )
        return ok, f"aggregate {collection}"
    return False, f"{name} {collection}"


async def _exercise(client: httpx.AsyncClient, gql: GraphQLClient, commands: CommandLog) -> list:
    """The main requests, each with its commands; the session lists apart."""
    chunks = [{"id": f"c{k}", "text": "t", "score": 0.5} for k in range(3)]
    per_request = []
    commands.reset()
    for i in range(8):  # appends, and with tiny bounds, page moves
        await record(gql, sessionId="s1", runId=f"r{i}", retrievedContext=chunks)
        await record(gql, sessionId="s2", runId=f"r{i}")
    await record(gql, sessionId="s1", runId="r0")  # a retry, across pages
    per_request.append(("recordRun", list(commands.sent)))
    reads = {
        "chat view": ("POST", "/graphql", {"query": '{ session(id: "s1") { messages(last: 20) '
                      "{ nodes { content retrievedContext { id score } } } } }"}),
        "run inspector": ("POST", "/graphql", {"query": '{ run(sessionId: "s1", runId: "r1") '
                          "{ id input content retrievedContext { id } } }"}),
        "messages": ("GET", "/api/sessions/s1/messages", None),
        "runs": ("GET", "/api/sessions/s1/runs", None),
        "retrieved context": ("GET", "/api/sessions/s1/runs/r0/retrieved-context", None),
        "session": ("GET", "/api/sessions/s1", None),
        "delete": ("DELETE", "/api/sessions/s2", None),
    }  # fmt: skip
    for name, (method, path, body) in reads.items():
        commands.reset()
        response = await client.request(method, path, json=body)
        assert response.status_code in (200, 204), (name, response.text)
        assert "errors" not in (response.json() if response.status_code == 200 else {}), name
        per_request.append((name, list(commands.sent)))
    commands.reset()
    assert (await client.get("/api/sessions?userId=local")).status_code == 200
    per_request.append(("session list", list(commands.sent)))
    return per_request


async def test_every_command_of_the_main_requests_targets_the_shard_key(
    client: httpx.AsyncClient, gql: GraphQLClient, commands: CommandLog, bounds: Bounds
) -> None:
    seen_pages = False
    for request, sent in await _exercise(client, gql, commands):
        for command in sent:
            ok, what = targeted(command)
            seen_pages |= next(iter(command.values())) == PAGES
            if request == "session list":
                # A documented scatter-gather: the list asks every shard, by its index.
                name = next(iter(command))
                assert name in LIST_READS and command[name] == SESSIONS, (request, what)
                continue
            assert ok, (request, what, command)
    assert seen_pages == (bounds is TINY_BOUNDS)
