"""Issue 17's rows, in one run of ``python -m bench`` (a few minutes on a busy 2-core
machine; ``--quick``, a few seconds of small data, only shows they run):

- ``search_ms``: a user's search (GraphQL ``search``, in-process ASGI, the user's id as
  the filter) over 200,000 messages of 50 users, median of varied one- and two-word
  queries and a phrase; with ``record_run_with_index_vs_without``: ``recordRun``
  with the search index kept in step, over the same without it (medians, alternated).
- ``fork_10000_ms``: ``forkSession`` of a 10,000-message session (head and pages) at its
  last message, the worst case (every page is read), median of 3.
- ``metadata_list_vs_unfiltered``: ``sessions(first: 20, filter: {metadata: {team}})``
  matching 20 of ``METADATA_SESSIONS`` (100,000) sessions, over the unfiltered
  ``sessions(first: 20)``, medians of 3. Most of this row is seeding: SecantusDB inserts
  about 1,000 heads a second here (its inserts and index updates run in Python), and its
  unfiltered list takes seconds at 100,000 (it reads every session, even through the
  ``updated`` index, with a limit of 20); the filtered list reads the 20 it finds
  through the metadata index.

Data is seeded with bulk inserts of documents built by ``storage.build`` (not through
the API), and the search index filled by ``SessionStore.reindex``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson

from agent_sessions.app import build_app
from agent_sessions.settings import Settings
from agent_sessions.storage import Storage
from agent_sessions.storage.build import build_session
from agent_sessions.storage.embedded import start_embedded
from agent_sessions.storage.search import SearchIndex

from .data import WORDS

KEYS = ("search_ms", "fork_10000_ms", "metadata_list_vs_unfiltered")
NAMES = ["alice", "bruno", "chen", "dara", "emeka", "fatima", "goran", "hana", "ivan", "jun"]

SEARCH = """query($q: String!, $u: String!) {
  search(query: $q, filter: {userId: $u}, first: 20) {
    nodes { sessionId messageId snippet }
  }
}"""
LIST = "query($f: SessionFilter) { sessions(first: 20, filter: $f) { nodes { id title } } }"
FORK = """mutation($s: ID!, $m: ID!) {
  forkSession(sessionId: $s, atMessageId: $m) { id messageCount }
}"""
RECORD = """mutation($i: RecordRunInput!) { recordRun(input: $i) { id } }"""


def _text(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS + NAMES) for _ in range(n))


def _session(sid: str, user: str, t: datetime, messages: list[dict], **fields: Any) -> tuple:
    runs, msgs = [], []
    for k in range(0, len(messages), 2):
        rid = f"{sid}-r{k // 2}"
        for m in messages[k : k + 2]:
            msgs.append(m | {"id": str(uuid.uuid4()), "run_id": rid, "created_at": t})
        runs.append({"id": rid, "agent_id": "bench", "status": "COMPLETED", "created_at": t,
                     "retrieved_context": []})  # fmt: skip
    session = {"id": sid, "user_id": user, "agent_id": "bench", "metadata": {},
               "created_at": t, "updated_at": t} | fields  # fmt: skip
    return session, msgs, runs


async def _insert(storage: Storage, built: list[tuple]) -> None:
    heads, pages = [], []
    for session, msgs, runs in built:
        head, more = build_session(session, msgs, runs, storage.sessions.bounds)
        heads.append(head)
        pages += more
    for i in range(0, len(pages), 200):
        await storage.sessions.pages.insert_many(pages[i : i + 200])
    for i in range(0, len(heads), 1000):
        await storage.sessions.heads.insert_many(heads[i : i + 1000])


async def _done(storage: Storage, drop: bool) -> None:
    if drop:
        await storage.client.drop_database(storage.database)
    await storage.client.close()


async def _client(storage: Storage, data_dir: Path) -> tuple[Any, httpx.AsyncClient]:
    app = build_app(Settings(data_dir=data_dir), storage=storage)
    transport = httpx.ASGITransport(app=app)
    return app, httpx.AsyncClient(transport=transport, base_url="http://localhost")


async def _gql(client: httpx.AsyncClient, query: str, variables: dict[str, Any]) -> Any:
    body = orjson.dumps({"query": query, "variables": variables})
    answer = await client.post(
        "/graphql", content=body, headers={"Content-Type": "application/json"}
    )
    data = answer.json()
    assert "errors" not in data, data
    return data["data"]


async def _timed(client: httpx.AsyncClient, query: str, variables: dict[str, Any]) -> float:
    t = time.perf_counter()
    await _gql(client, query, variables)
    return time.perf_counter() - t


async def search_rows(uri: str, tmp: Path, quick: bool, drop: bool) -> dict[str, Any]:
    messages, users = (2_000, 10) if quick else (200_000, 50)
    storage = await Storage.connect(uri, f"beyond_search_{uuid.uuid4().hex[:8]}")
    rng = random.Random(17)
    t0 = datetime.now(UTC) - timedelta(days=30)
    built = []
    per_session = 20
    for n in range(messages // per_session):
        msgs = [{"role": "user" if k % 2 == 0 else "assistant", "content": _text(rng, 12)}
                for k in range(per_session)]  # fmt: skip
        built.append(_session(f"q{n}", f"user{n % users}", t0 + timedelta(seconds=n), msgs))
    t = time.perf_counter()
    await _insert(storage, built)
    storage.sessions.search = SearchIndex(tmp / "search.sqlite3")
    indexed = await storage.sessions.reindex()
    seeded_s = time.perf_counter() - t
    app, client = await _client(storage, tmp)
    queries = [*WORDS[:8], *NAMES[:4], "revenue forecast", "churn audit", '"pricing budget"']
    samples = []
    async with client:
        for q in queries if quick else queries * 2:
            samples.append(
                await _timed(client, SEARCH, {"q": q, "u": f"user{rng.randrange(users)}"})
            )
        # recordRun with the index kept in step, and without, alternated.
        index = storage.sessions.search
        with_index, without = [], []
        for i in range(10 if quick else 40):
            for keep, into in ((True, with_index), (False, without)):
                storage.sessions.search = index if keep else None
                run = {"sessionId": f"rec-{i % 20}-{keep}", "agentId": "bench", "messages": [
                    {"role": "USER", "content": _text(rng, 12)},
                    {"role": "ASSISTANT", "content": _text(rng, 40)},
                ]}  # fmt: skip
                into.append(await _timed(client, RECORD, {"i": run}))
        storage.sessions.search = index
    await app.state.services.agents.aclose()
    await _done(storage, drop)
    return {
        "search_ms": round(statistics.median(samples) * 1000, 2),
        "search_p90_ms": round(sorted(samples)[int(len(samples) * 0.9)] * 1000, 2),
        "search_messages": indexed,
        "search_users": users,
        "search_seed_s": round(seeded_s, 1),
        "record_run_with_index_vs_without": round(
            statistics.median(with_index) / statistics.median(without), 3
        ),
    }


async def fork_rows(uri: str, tmp: Path, quick: bool, drop: bool) -> dict[str, Any]:
    n = 500 if quick else 10_000
    storage = await Storage.connect(uri, f"beyond_fork_{uuid.uuid4().hex[:8]}")
    rng = random.Random(7)
    msgs = [{"role": "user" if k % 2 == 0 else "assistant", "content": _text(rng, 30)}
            for k in range(n)]  # fmt: skip
    session, records, runs = _session("long", "u", datetime.now(UTC), msgs)
    await storage.sessions.import_session(session, records, runs)
    pages = await storage.sessions.pages.count_documents({"session_id": "long"})
    app, client = await _client(storage, tmp / "fork")
    samples = []
    async with client:
        for _ in range(1 if quick else 3):
            t = time.perf_counter()
            fork = (await _gql(client, FORK, {"s": "long", "m": records[-1]["id"]}))["forkSession"]
            samples.append(time.perf_counter() - t)
            assert fork["messageCount"] == n
    await app.state.services.agents.aclose()
    await _done(storage, drop)
    return {
        "fork_10000_ms": round(statistics.median(samples) * 1000, 1),
        "fork_messages": n,
        "fork_source_pages": pages,
    }


METADATA_SESSIONS = 100_000


async def metadata_rows(uri: str, tmp: Path, quick: bool, drop: bool) -> dict[str, Any]:
    sessions = 1_000 if quick else METADATA_SESSIONS
    teams = sessions // 20  # each team's value is on 20 sessions
    storage = await Storage.connect(uri, f"beyond_meta_{uuid.uuid4().hex[:8]}")
    t0 = datetime.now(UTC) - timedelta(days=30)
    built = [
        _session(f"m{i}", f"user{i % 50}", t0 + timedelta(seconds=i), [],
                 metadata={"team": f"t{i % teams}", "tier": i % 3})
        for i in range(sessions)
    ]  # fmt: skip
    t = time.perf_counter()
    await _insert(storage, built)
    seeded_s = time.perf_counter() - t
    app, client = await _client(storage, tmp / "meta")
    filtered, unfiltered = [], []
    rng = random.Random(3)
    async with client:
        for _ in range(2 if quick else 3):  # the unfiltered list takes seconds here
            team = f"t{rng.randrange(teams)}"
            filtered.append(await _timed(client, LIST, {"f": {"metadata": {"team": team}}}))
            unfiltered.append(await _timed(client, LIST, {"f": None}))
        got = await _gql(client, LIST, {"f": {"metadata": {"team": "t1"}}})
        assert len(got["sessions"]["nodes"]) == 20
    await app.state.services.agents.aclose()
    await _done(storage, drop)
    return {
        "metadata_list_vs_unfiltered": round(
            statistics.median(filtered) / statistics.median(unfiltered), 3
        ),
        "metadata_list_ms": round(statistics.median(filtered) * 1000, 2),
        "unfiltered_list_ms": round(statistics.median(unfiltered) * 1000, 2),
        "metadata_sessions": sessions,
        "metadata_seed_s": round(seeded_s, 1),
    }


ROWS = {"metadata": "metadata_rows", "fork": "fork_rows", "search": "search_rows"}


async def run(
    uri: str, quick: bool, only: tuple[str, ...] = tuple(ROWS), *, drop: bool = True
) -> dict[str, Any]:
    """The rows of ``only``; ``drop``: drop each row's database after it (off when the
    database server is thrown away after the run: SecantusDB takes minutes to drop
    100,000 sessions, one key at a time)."""
    with tempfile.TemporaryDirectory(prefix="agent-sessions-beyond-") as tmp:
        out: dict[str, Any] = {}
        for name in only:
            rows = globals()[ROWS[name]]
            t = time.perf_counter()
            out |= await rows(uri, Path(tmp), quick, drop)
            print(f"{rows.__name__} measured in {time.perf_counter() - t:.1f}s", file=sys.stderr)
        return out


def table(figures: dict[str, Any]) -> str:
    rows = ["| beyond the reference | value | target |", "|---|---:|---:|"]
    rows.append(f"| search_ms ({figures['search_messages']:,} messages, "
                f"{figures['search_users']} users) | {figures['search_ms']} | ≤ 50 |")  # fmt: skip
    rows.append(f"| record_run_with_index_vs_without | "
                f"{figures['record_run_with_index_vs_without']} | ≤ 1.10 |")  # fmt: skip
    rows.append(f"| fork_10000_ms ({figures['fork_messages']:,} messages) | "
                f"{figures['fork_10000_ms']} | ≤ 1000 |")  # fmt: skip
    rows.append(f"| metadata_list_vs_unfiltered ({figures['metadata_sessions']:,} sessions) | "
                f"{figures['metadata_list_vs_unfiltered']} | ≤ 1.2 |")  # fmt: skip
    return "\n".join(rows)


def main() -> None:
    """``python -m bench.beyond [--uri URI] [--quick] [--only fork|search|metadata ...]``:
    these rows alone, against ``URI`` or a fresh embedded database."""
    parser = argparse.ArgumentParser(prog="python -m bench.beyond")
    parser.add_argument("--uri", help="a MongoDB URI; default: a fresh embedded database")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", nargs="+", choices=tuple(ROWS), default=tuple(ROWS))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="agent-sessions-beyond-db-") as tmp:
        server = None if args.uri else start_embedded(Path(tmp) / "data")
        try:
            uri = args.uri or server.uri  # type: ignore[union-attr]
            figures = asyncio.run(run(uri, args.quick, tuple(args.only), drop=server is None))
        finally:
            if server is not None:
                server.stop()
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
