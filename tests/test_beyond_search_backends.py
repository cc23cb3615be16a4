"""Which search index a server uses (``search_backend``), and MongoDB's own text index.

On the embedded database (SecantusDB has no text index) ``auto`` falls back to the SQLite
file and ``mongo`` refuses to start; those run everywhere. The text-index tests need a
real MongoDB: they run when ``MONGODB_URI`` names one and are skipped otherwise (none was
available where this was written)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from agent_sessions.app import build_app
from agent_sessions.settings import Settings
from agent_sessions.storage import Storage
from agent_sessions.storage.mongo_search import (
    COLLECTION,
    MongoTextIndex,
    SearchBackendError,
    open_search,
    text_search,
)
from agent_sessions.storage.search import SearchIndex

from .helpers import GraphQLClient, record


def _db(storage: Storage) -> Any:
    return storage.client[storage.database]


async def _has_text_index(storage: Storage) -> bool:
    found, _ = await open_search("auto", _db(storage), Path("/nonexistent"))
    if isinstance(found, SearchIndex):
        found.close()
    return isinstance(found, MongoTextIndex)


async def test_auto_takes_the_text_index_where_there_is_one(storage: Storage, tmp_path: Path):
    found, line = await open_search("auto", _db(storage), tmp_path)
    names = await _db(storage).list_collection_names()
    if isinstance(found, SearchIndex):  # SecantusDB: the file, and nothing left behind
        assert line.startswith(f"search: SQLite FTS5 index in {tmp_path / 'search.sqlite3'}")
        assert "no text index: text indexes are not supported" in line
        assert COLLECTION not in names
        found.close()
    else:
        assert line == f"search: MongoDB text index 'words' on {COLLECTION}"
        assert COLLECTION in names


async def test_sqlite_asks_nothing_of_the_database(storage: Storage, tmp_path: Path) -> None:
    found, line = await open_search("sqlite", _db(storage), tmp_path)
    assert isinstance(found, SearchIndex) and (tmp_path / "search.sqlite3").exists()
    assert line == f"search: SQLite FTS5 index in {tmp_path / 'search.sqlite3'}"
    assert COLLECTION not in await _db(storage).list_collection_names()
    found.close()


async def test_mongo_without_a_text_index_is_refused(storage: Storage, tmp_path: Path) -> None:
    if await _has_text_index(storage):
        pytest.skip("this database has a text index")
    with pytest.raises(SearchBackendError, match="has no text index"):
        await open_search("mongo", _db(storage), tmp_path)


def test_every_word_is_a_phrase_that_must_match() -> None:
    assert text_search(["cafe", "creme  brulee", 'a"b']) == '"cafe" "creme brulee" "a b"'


# --- MongoDB's text index: only where a real MongoDB is given --------------------------------


needs_mongodb = pytest.mark.skipif(
    not Settings().mongodb_uri, reason="needs a real MongoDB with text indexes: set MONGODB_URI"
)


@pytest.fixture
async def text_index(storage: Storage) -> MongoTextIndex:
    if not await _has_text_index(storage):
        pytest.skip("the database at MONGODB_URI has no text index")
    index = await MongoTextIndex.create(_db(storage))
    storage.sessions.search = index
    return index


def _m(mid: str, text: str, run: str = "r", role: str = "user") -> dict[str, Any]:
    return {"id": mid, "role": role, "content": text, "run_id": run,
            "created_at": datetime.now(UTC)}  # fmt: skip


@needs_mongodb
async def test_words_case_accents_phrases_owners(text_index: MongoTextIndex) -> None:
    await text_index.add(
        "s1",
        "alice",
        "a",
        [
            (0, _m("m0", "Where is the Café Crème?")),
            (1, _m("m1", "On Main Street", role="assistant")),
        ],
    )
    await text_index.add("s2", "bob", "a", [(0, _m("m2", "I like creme brulee"))])

    async def ids(terms: list[str], owner: str | None = None, **kw: Any) -> set[str]:
        return {h.message_id for h in await text_index.search(terms, owner=owner, limit=10, **kw)}

    assert await ids(["cafe"]) == {"m0"}
    assert await ids(["CRÈME"]) == {"m0", "m2"}
    assert await ids(["creme brulee"]) == {"m2"}  # a phrase
    assert await ids(["brulee creme"]) == set()
    assert await ids(["cafe", "brulee"]) == set()  # every word must match
    assert await ids(["creme"], owner="alice") == {"m0"}
    assert await ids(["creme"], agent_id="b") == set()
    await text_index.add("s1", "alice", "a", [(1, _m("m1", "On Elm Street", role="assistant"))])
    assert await ids(["main"]) == set() and await ids(["elm"]) == {"m1"}  # indexed again
    assert await text_index.share("s1", "fork", 1) == 1  # a fork's messages below seq 1
    assert {h.session_id for h in await text_index.search(["cafe"], owner=None, limit=9)} == {
        "s1", "fork"}  # fmt: skip
    await text_index.delete_session("s1")
    await text_index.delete_run("s2", "r")
    assert await ids(["creme"]) == {"m0"} and await text_index.count() == 1  # the fork's


@needs_mongodb
async def test_search_through_the_api_on_the_text_index(
    text_index: MongoTextIndex, gql: GraphQLClient
) -> None:
    await record(gql, sessionId="s", messages=[
        {"role": "USER", "content": "Quarterly revenue?"},
        {"role": "ASSISTANT", "content": "Revenue grew."},
    ])  # fmt: skip
    query = "query($q: String!) { search(query: $q) { nodes { sessionId role snippet } } }"
    nodes = (await gql.data(query, {"q": "revenue"}))["search"]["nodes"]
    assert {n["role"] for n in nodes} == {"USER", "ASSISTANT"}
    assert "<mark>Revenue</mark> grew." in {n["snippet"] for n in nodes}
    # The words are in the database's collection, not in a file.
    assert await text_index.collection.count_documents({"session_id": "s"}) == 2
    assert len((await gql.data(query, {"q": "grew"}))["search"]["nodes"]) == 1


async def test_the_server_says_which_index_it_uses(
    mongo_uri: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(data_dir=tmp_path, mongodb_uri=mongo_uri, database=f"t_{tmp_path.name}")
    app = build_app(settings)
    with caplog.at_level(logging.INFO, logger="agent_sessions.storage"):
        async with app.router.lifespan_context(app):
            storage = app.state.services.storage
            chosen = storage.sessions.search
            await storage.client.drop_database(settings.database)
    [line] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("search: ")]
    if isinstance(chosen, SearchIndex):
        assert line.startswith(f"search: SQLite FTS5 index in {tmp_path}") and "no text" in line
    else:
        assert isinstance(chosen, MongoTextIndex) and "MongoDB text index" in line
