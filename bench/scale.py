"""An append on a full database: ``recordRun`` into an existing session among 10,000
sessions, over the same among 10 (``append_10000_sessions_vs_10``; ``--quick``: 1,000).

The other append rows grow one session; this one grows the collection around it, which
is what a write that scans the collection pays for (SecantusDB's ``findAndModify`` did:
~300 ms an append at 10,000 sessions, so appends are ``update_one`` and a read by id).
Sessions are seeded with bulk inserts of documents built by ``storage.build``.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agent_sessions.storage import Storage

from .beyond import RECORD, _client, _insert, _session, _timed

KEY = "append_10000_sessions_vs_10"
TURN = [{"role": "user", "content": "a question"}, {"role": "assistant", "content": "an answer"}]


async def _seeded(uri: str, tmp: Path, sessions: int) -> tuple[Storage, Any, Any]:
    storage = await Storage.connect(uri, f"bench_scale_{uuid.uuid4().hex[:8]}")
    t = datetime(2026, 1, 1, tzinfo=UTC)
    built = [_session(f"s{i}", f"user{i % 50}", t, TURN * 3) for i in range(sessions)]
    await _insert(storage, built)
    app, client = await _client(storage, tmp / f"scale{sessions}")
    return storage, app, client


def _run(sid: str) -> dict[str, Any]:
    return {"sessionId": sid, "userId": f"user{int(sid[1:]) % 50}", "agentId": "bench",
            "messages": [m | {"role": m["role"].upper()} for m in TURN]}  # fmt: skip


async def run(uri: str, quick: bool, drop: bool = True) -> dict[str, Any]:
    """The row; ``drop``: drop its databases after (not when the server goes anyway:
    SecantusDB drops a database one key at a time)."""
    large, samples = (1_000, 15) if quick else (10_000, 41)
    sizes = (10, large)
    times: dict[int, list[float]] = {n: [] for n in sizes}
    with tempfile.TemporaryDirectory(prefix="agent-sessions-scale-") as tmp:
        seeded = {n: await _seeded(uri, Path(tmp), n) for n in sizes}
        for k in range(samples):  # alternated, so a busy machine weighs on both alike
            for n, (_, _, client) in seeded.items():
                sid = f"s{(k * 7919) % n}"  # spread over the collection
                times[n].append(await _timed(client, RECORD, {"i": _run(sid)}))
        for storage, app, client in seeded.values():
            await client.aclose()
            await app.state.services.agents.aclose()
            if drop:
                await storage.client.drop_database(storage.database)
            await storage.client.close()
    few, many = (statistics.median(times[n]) * 1000 for n in sizes)
    return {
        KEY: round(many / few, 2),
        "append_in_10_sessions_ms": round(few, 2),
        "append_in_many_sessions_ms": round(many, 2),
        "append_many_sessions": large,
    }


def table(figures: dict[str, Any]) -> str:
    return "\n".join([
        "| append on a full database | value | target |",
        "|---|---:|---:|",
        f"| recordRun among 10 sessions (ms) | {figures['append_in_10_sessions_ms']} | |",
        f"| recordRun among {figures['append_many_sessions']:,} sessions (ms) | "
        f"{figures['append_in_many_sessions_ms']} | |",
        f"| {KEY} | {figures[KEY]} | ≤ 1.2 |",
    ])  # fmt: skip


if __name__ == "__main__":  # python -m bench.scale URI [--quick]: this row alone
    print(table(asyncio.run(run(sys.argv[1], "--quick" in sys.argv))))
