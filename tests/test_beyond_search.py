"""Search: words, case and accents, phrases, snippets, owners, order and paging; the index
kept in step with appends, finished runs, deleted runs and sessions, forks and imports;
the REST path; a rebuild."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from agent_sessions.settings import Settings
from agent_sessions.storage import Storage
from agent_sessions.storage.search import MAX_QUEUED, SearchIndex, snippet

from .helpers import GraphQLClient, record

SEARCH = """
query($q: String!, $f: SessionFilter, $first: Int, $after: String, $o: SearchOrder) {
  search(query: $q, filter: $f, first: $first, after: $after, order: $o) {
    pageInfo { hasNextPage endCursor }
    nodes { sessionId messageId runId role snippet score createdAt }
  }
}"""


async def hits(gql: GraphQLClient, q: str, **kw: Any) -> list[dict[str, Any]]:
    return (await gql.data(SEARCH, {"q": q, **kw}))["search"]["nodes"]


async def _say(gql: GraphQLClient, sid: str, user: str, answer: str, **kw: Any) -> dict:
    return await record(gql, sessionId=sid, messages=[
        {"role": "USER", "content": user}, {"role": "ASSISTANT", "content": answer},
    ], **kw)  # fmt: skip


async def test_words_accents_phrases_and_snippets(gql: GraphQLClient) -> None:
    await _say(gql, "s1", "Where is the Café Crème?", "The café is on <Main> Street.")
    await _say(gql, "s2", "I like creme brulee", "Crème brûlée it is.")
    found = await hits(gql, "cafe")
    assert {(h["sessionId"], h["role"]) for h in found} == {("s1", "USER"), ("s1", "ASSISTANT")}
    answer = next(h for h in found if h["role"] == "ASSISTANT")
    assert answer["snippet"] == "The <mark>café</mark> is on &lt;Main&gt; Street."
    assert {h["sessionId"] for h in await hits(gql, "CRÈME")} == {"s1", "s2"}
    phrase = await hits(gql, '"creme brulee"')
    assert sorted(h["snippet"] for h in phrase) == [
        "<mark>Crème brûlée</mark> it is.", "I like <mark>creme brulee</mark>",
    ]  # fmt: skip
    assert await hits(gql, '"brulee creme"') == []
    assert await hits(gql, "cafe brulee") == []  # every word must match
    bad = await gql(SEARCH, {"q": '  "" '})
    assert bad["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_order_and_paging(gql: GraphQLClient) -> None:
    for i in range(5):
        await _say(gql, f"p{i}", f"invoice number {i}", "noted")
    newest = await hits(gql, "invoice", o="NEWEST")
    assert [h["sessionId"] for h in newest] == ["p4", "p3", "p2", "p1", "p0"]
    first = (await gql.data(SEARCH, {"q": "invoice", "first": 2, "o": "NEWEST"}))["search"]
    assert first["pageInfo"]["hasNextPage"] is True
    rest = await hits(gql, "invoice", first=10, after=first["pageInfo"]["endCursor"], o="NEWEST")
    assert [h["sessionId"] for h in rest] == ["p2", "p1", "p0"]
    bad = await gql(SEARCH, {"q": "invoice", "after": "nope"})
    assert bad["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_the_index_follows_every_write(gql: GraphQLClient, client: httpx.AsyncClient) -> None:
    await _say(gql, "w", "tell me about zebras", "zebras are striped", runId="r1")
    await _say(gql, "w", "and giraffes?", "giraffes are tall", runId="r2")
    assert len(await hits(gql, "zebras")) == 2
    await gql.data('mutation { deleteRun(sessionId: "w", runId: "r1") }')
    assert await hits(gql, "zebras") == [] and len(await hits(gql, "giraffes")) == 2
    nodes = (await gql.data('{ session(id: "w") { messages { nodes { id } } } }'))["session"]
    fork = await gql.data(
        'mutation($m: ID!) { forkSession(sessionId: "w", atMessageId: $m) { id } }',
        {"m": nodes["messages"]["nodes"][0]["id"]},
    )
    fork_id = fork["forkSession"]["id"]
    assert {h["sessionId"] for h in await hits(gql, "giraffes")} == {"w", fork_id}
    assert (await client.delete("/api/sessions/w")).status_code == 204
    assert [h["sessionId"] for h in await hits(gql, "giraffes")] == [fork_id]


async def test_gone_at_once_even_when_the_index_lags(gql: GraphQLClient, storage: Storage) -> None:
    await _say(gql, "g", "secret plans", "ok")
    index = storage.sessions.search
    storage.sessions.search = None  # the delete does not reach the index…
    await storage.sessions.delete_session("g", owner=None)
    storage.sessions.search = index
    assert await index.count() == 2
    assert await hits(gql, "secret") == []  # …yet the hit is gone: it is checked
    assert await storage.sessions.reindex() == 0
    assert await index.count() == 0


async def test_a_rebuild_finds_what_was_missed(gql: GraphQLClient, storage: Storage) -> None:
    await _say(gql, "m", "lighthouse keeper", "ok")
    await storage.sessions.search.clear()
    assert await hits(gql, "lighthouse") == []
    assert await storage.sessions.reindex() == 2
    assert len(await hits(gql, "lighthouse")) == 1


async def test_rest_search(client: httpx.AsyncClient, gql: GraphQLClient) -> None:
    await _say(gql, "r", "quarterly revenue please", "revenue was up", agentId="fin")
    answer = await client.get("/api/sessions/search", params={"q": "revenue"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert [h["role"] for h in body["content"]] == ["user", "assistant"] or len(
        body["content"]
    ) == 2
    assert set(body["content"][0]) == {
        "sessionId", "messageId", "runId", "role", "snippet", "score", "createdAt",
    }  # fmt: skip
    assert body["hasNext"] is False and body["size"] == 20
    assert (
        await client.get("/api/sessions/search", params={"q": "revenue", "agentId": "x"})
    ).json()["content"] == []
    assert (await client.get("/api/sessions/search")).status_code == 400
    assert (
        await client.get("/api/sessions/search", params={"q": "a", "limit": 1})
    ).status_code == 400


class TestOwners:
    @pytest.fixture
    def settings(self, tmp_path: Any, compiled: bool) -> Settings:
        return Settings(data_dir=tmp_path, admin_key="k", compiled_execution=compiled)

    async def test_a_user_finds_only_their_own(self, client: httpx.AsyncClient) -> None:
        admin = GraphQLClient(client, {"Authorization": "Bearer k"})
        make = "mutation($u: String!) { createApiKey(userId: $u) { key } }"
        users = {}
        for u in ("alice", "bob"):
            key = (await admin.data(make, {"u": u}))["createApiKey"]["key"]
            users[u] = GraphQLClient(client, {"Authorization": f"Bearer {key}"})
            await _say(users[u], f"{u}-s", f"{u} asks about the merger", "ok")
        assert [h["sessionId"] for h in await hits(users["alice"], "merger")] == ["alice-s"]
        assert await hits(users["alice"], "merger", f={"userId": "bob"}) == []
        assert len(await hits(admin, "merger")) == 2
        assert [h["sessionId"] for h in await hits(admin, "merger", f={"userId": "bob"})] == [
            "bob-s"
        ]


async def test_index_writes_are_queued_in_order_and_bounded(tmp_path: Any) -> None:
    index = SearchIndex(tmp_path / "search.sqlite3")

    def message(text: str) -> dict[str, Any]:
        return {"id": "m", "role": "user", "content": text, "created_at": None}

    # An append does not wait for its words; a delete queued after it still comes after.
    await index.add("s", "u", None, [(0, message("first words"))])
    await index.delete_session("s")
    await index.add("s", "u", None, [(0, message("second words"))])
    assert await index.search(["first"], owner="u", limit=5) == []
    assert [h.session_id for h in await index.search(["second"], owner="u", limit=5)] == ["s"]
    # A writer faster than the index waits once MAX_QUEUED writes are queued.
    most = 0
    for i in range(3 * MAX_QUEUED):
        await index.add(f"b{i}", "u", None, [(0, message(f"bulk {i}"))], fresh=True)
        most = max(most, index._queued)
    assert most <= MAX_QUEUED + 1
    assert await index.count() == 1 + 3 * MAX_QUEUED
    index.close()


def test_snippets_of_plain_and_accented_text() -> None:
    assert snippet("Ask BOB about Bob's plan", ["bob"]) == (
        "Ask <mark>BOB</mark> about <mark>Bob</mark>&#x27;s plan"
    )
    assert snippet("Élan vital", ["elan"]) == "<mark>Élan</mark> vital"
