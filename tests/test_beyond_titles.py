"""Titles and metadata: updateSession / PATCH, the default title, the metadata filter of
the lists (GraphQL and REST), and that the filter is answered from its index."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from agent_sessions.storage import Storage
from agent_sessions.storage.model import SessionFilter

from .helpers import GraphQLClient, record

CREATE = """
mutation($i: CreateSessionInput!) { createSession(input: $i) { id title metadata } }"""
UPDATE = """
mutation($id: ID!, $t: String, $m: JSON) {
  updateSession(id: $id, title: $t, metadata: $m) { id title metadata updatedAt }
}"""
LIST = """
query($f: SessionFilter) { sessions(filter: $f) { totalCount nodes { id title } } }"""


async def test_a_session_takes_its_title_from_its_first_user_message(gql: GraphQLClient) -> None:
    long = "  Please   summarise the quarterly report for the finance team, with " + "x" * 200
    run = await record(gql, messages=[{"role": "USER", "content": long}])
    session = (await gql.data("query($id: ID!) { session(id: $id) { title } }",
                              {"id": run["sessionId"]}))["session"]  # fmt: skip
    assert session["title"].startswith("Please summarise the quarterly report")
    assert session["title"].endswith("…") and len(session["title"]) <= 80
    # A later run does not change it; a given title is never replaced.
    await record(gql, sessionId=run["sessionId"], messages=[{"role": "USER", "content": "next"}])
    again = await gql.data("query($id: ID!) { session(id: $id) { title } }",
                           {"id": run["sessionId"]})  # fmt: skip
    assert again["session"]["title"] == session["title"]
    await gql.data(CREATE, {"i": {"id": "named", "title": "Mine"}})
    await record(gql, sessionId="named")
    named = await gql.data('query { session(id: "named") { title } }')
    assert named["session"]["title"] == "Mine"


async def test_update_session_changes_what_is_given(gql: GraphQLClient) -> None:
    await gql.data(CREATE, {"i": {"id": "s1", "title": "old", "metadata": {"team": "a"}}})
    changed = (await gql.data(UPDATE, {"id": "s1", "t": "new"}))["updateSession"]
    assert changed["title"] == "new" and changed["metadata"] == {"team": "a"}
    changed = (await gql.data(UPDATE, {"id": "s1", "m": {"team": "b", "tier": 2}}))["updateSession"]
    assert changed["title"] == "new" and changed["metadata"] == {"team": "b", "tier": 2}
    assert (await gql.data(UPDATE, {"id": "missing", "t": "x"}))["updateSession"] is None
    bad = await gql(UPDATE, {"id": "s1", "m": [1]})
    assert bad["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    nothing = await gql('mutation { updateSession(id: "s1") { id } }')
    assert "at least one" in nothing["errors"][0]["message"]


async def test_metadata_filter_matches_every_key(gql: GraphQLClient) -> None:
    for i in range(6):
        meta = {"team": "finance" if i % 2 else "sales", "tier": i % 3, "flag": i == 5}
        await gql.data(CREATE, {"i": {"id": f"s{i}", "metadata": meta}})
    got = (await gql.data(LIST, {"f": {"metadata": {"team": "finance"}}}))["sessions"]
    assert got["totalCount"] == 3 and {n["id"] for n in got["nodes"]} == {"s1", "s3", "s5"}
    got = (await gql.data(LIST, {"f": {"metadata": {"team": "finance", "tier": 0}}}))["sessions"]
    assert [n["id"] for n in got["nodes"]] == ["s3"]
    got = (await gql.data(LIST, {"f": {"metadata": {"tier": [1, 2]}}}))["sessions"]
    assert {n["id"] for n in got["nodes"]} == {"s1", "s2", "s4", "s5"}
    got = (await gql.data(LIST, {"f": {"metadata": {"flag": True}}}))["sessions"]
    assert [n["id"] for n in got["nodes"]] == ["s5"]
    got = (await gql.data(LIST, {"f": {"metadata": {"tier": "1"}}}))["sessions"]
    assert got["totalCount"] == 0  # a string never matches a number
    # Changing the metadata moves the session in and out of the filter at once.
    await gql.data(UPDATE, {"id": "s0", "m": {"team": "finance", "tier": 0}})
    got = (await gql.data(LIST, {"f": {"metadata": {"team": "finance", "tier": 0}}}))["sessions"]
    assert {n["id"] for n in got["nodes"]} == {"s0", "s3"}


@pytest.mark.parametrize(
    ("metadata", "words"),
    [
        ({}, "at least one key"),
        ({"a b": 1}, "keys must be"),
        ({"k": {"x": 1}}, "a string, a number or a boolean"),
        ({"k": "x" * 300}, "at most 256"),
        ({"k": []}, "non-empty list"),
    ],
)
async def test_a_bad_metadata_filter_is_named(
    gql: GraphQLClient, metadata: Any, words: str
) -> None:
    body = await gql(LIST, {"f": {"metadata": metadata}})
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert (
        words in body["errors"][0]["message"] and "filter.metadata" in body["errors"][0]["message"]
    )


async def test_rest_patch_and_list_by_metadata(
    client: httpx.AsyncClient, gql: GraphQLClient
) -> None:
    await gql.data(CREATE, {"i": {"id": "r1", "metadata": {"team": "finance", "tier": 2}}})
    await gql.data(CREATE, {"i": {"id": "r2", "metadata": {"team": "sales"}}})
    answer = await client.patch(
        "/api/sessions/r2", json={"title": "Sales call", "metadata": {"team": "finance"}}
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["sessionId"] == "r2" and body["title"] == "Sales call"
    assert body["metadata"] == {"team": "finance"} and body["expiresAt"] is None
    listed = (await client.get("/api/sessions?metadata.team=finance")).json()
    assert {s["sessionId"] for s in listed["content"]} == {"r1", "r2"}
    listed = (await client.get("/api/sessions?metadata.team=finance&metadata.tier=2")).json()
    assert [s["sessionId"] for s in listed["content"]] == ["r1"]
    assert (await client.patch("/api/sessions/nope", json={"title": "x"})).status_code == 404
    assert (await client.patch("/api/sessions/r1", json={"colour": "x"})).status_code == 400
    assert (await client.patch("/api/sessions/r1", json={})).status_code == 400
    assert (await client.patch("/api/sessions/r1", content=b"{}")).status_code == 415
    bad = await client.get("/api/sessions?metadata.a%24b=1")
    assert bad.status_code == 400 and "keys must be" in bad.json()["error"]


async def test_the_metadata_filter_in_storage(storage: Storage) -> None:
    store = storage.sessions
    for i in range(40):
        await store.create_session(
            session_id=f"m{i}", user_id=f"u{i % 2}", metadata={"team": f"t{i % 10}"}
        )
    filt = SessionFilter(metadata=(("team", ("t3",)),))
    # Its first key is looked up in the metadata index (python -m bench measures it:
    # SecantusDB's explain plans the whole filter as a scan, its execution does not).
    assert store._list_filter(filt, "u1")["mkv"] == 'team\x00"t3"'
    page = await store.list_sessions(filt, owner="u1", limit=20)
    assert sorted(s["id"] for s in page.sessions) == ["m13", "m23", "m3", "m33"]
