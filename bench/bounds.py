"""What a head's size costs: ``python -m bench.bounds``.

The measurement behind ``storage.layout.Bounds``: on the embedded database, one append
(``record_run``, two messages) and one chat view (the last 50 messages) against a head
that holds N turns, for a turn without chunks (3 entries: two messages, a run) and one
with 10 chunks of 800 characters (13 entries, ~10 kB). Heads are built whole, with moves
off, so each size is measured as it is. Prints a table; ``--json PATH`` writes it.
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
from pathlib import Path
from typing import Any

from agent_sessions.storage import Storage
from agent_sessions.storage.embedded import start_embedded
from agent_sessions.storage.layout import Bounds
from agent_sessions.storage.model import MessageSpec, Window
from agent_sessions.storage.sessions import message_document, now, run_document

from .data import session_parts

UNBOUNDED = Bounds(head_entries=10**9, head_bytes=10**12)
TURNS = (10, 25, 50, 85, 125, 250, 500)


async def _measure(uri: str, samples: int) -> list[dict[str, Any]]:
    storage = await Storage.connect(uri, "bench_bounds", bounds=UNBOUNDED)
    rows = []
    try:
        rng = random.Random(3)
        for chunks in (False, True):
            for turns in TURNS:
                sid = f"{'rag' if chunks else 'chat'}-{turns}"
                parts = session_parts(sid, "u", turns, chunks=chunks, start=now(), rng=rng)
                await storage.sessions.import_session(*parts)
                head = await storage.sessions.heads.find_one(
                    {"_id": sid}, {"bytes": 1, "entries": 1}
                )
                appends, reads = [], []
                for _ in range(samples):
                    t = now()
                    rid = uuid.uuid4().hex
                    pair = [
                        message_document(role="user", content="q?", run_id=rid, created_at=t),
                        message_document(role="assistant", content="a.", run_id=rid, created_at=t),
                    ]
                    run = run_document(run_id=rid, agent_id="a", status="COMPLETED", created_at=t)
                    start = time.perf_counter()
                    await storage.sessions.record_run(
                        session_id=sid, owner=None, new_session={"user_id": "u"}, run=run,
                        messages=pair, fresh_id=True,
                    )  # fmt: skip
                    appends.append(time.perf_counter() - start)
                    start = time.perf_counter()
                    await storage.sessions.page_messages(
                        [(sid, MessageSpec(window=Window(last=50)))], owner=None
                    )
                    reads.append(time.perf_counter() - start)
                rows.append(
                    {
                        "turn": "10 chunks" if chunks else "no chunks",
                        "turns": turns,
                        "entries": head["entries"],
                        "kb": round(head["bytes"] / 1024),
                        "append_ms": round(statistics.median(appends) * 1000, 2),
                        "chat_view_ms": round(statistics.median(reads) * 1000, 2),
                    }
                )
                print(rows[-1], file=sys.stderr)
    finally:
        await storage.client.drop_database("bench_bounds")
        await storage.client.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bounds", description=__doc__)
    parser.add_argument("--samples", type=int, default=30)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="agent-sessions-bounds-") as tmp:
        server = start_embedded(Path(tmp) / "data")
        try:
            rows = asyncio.run(_measure(server.uri, args.samples))
        finally:
            server.stop()
    print("| turn | turns in head | entries | KiB | append ms | chat view ms |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['turn']} | {r['turns']} | {r['entries']} | {r['kb']} | "
              f"{r['append_ms']:.2f} | {r['chat_view_ms']:.2f} |")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
