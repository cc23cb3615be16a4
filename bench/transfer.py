"""Export and import against the driver (``export_vs_driver``, ``import_vs_driver``).

Sessions of 100 messages (50 runs, each with 5 retrieved chunks of 400 characters, its
diagnostics, reasoning and usage): 1,000 of them, 100,000 messages (``--quick``: 100).

- export: ``agent-sessions export``'s pipeline (``data_commands.write_jsonl``: the
  storage cursor, the export format, orjson, one line per session) into memory, against
  the driver's bare ``find`` of the same documents, every document decoded;
- import: ``agent-sessions import``'s pipeline (``data_commands.import_lines``: JSON
  parsing, validation, the window of concurrent inserts) of those lines into an empty
  database, against the driver's ``insert_many`` of the same documents into another.

Each pair alternates, ``rounds`` times, and each side keeps its best time (what other
processes on the machine took from it is not the code's); the ratios are speeds, the
driver's time over ours: higher is better, 1.0 is the driver's own speed.
"""

from __future__ import annotations

import gc
import io
import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from agent_sessions.data_commands import import_lines, write_jsonl
from agent_sessions.storage import Storage
from agent_sessions.storage.layout import PAGES, SESSIONS
from agent_sessions.storage.sessions import message_document, run_document

from .data import _text, diagnostics

FULL_SESSIONS, QUICK_SESSIONS = 1000, 100
RUNS_PER_SESSION, CHUNKS_PER_RUN, CHUNK_CHARS = 50, 5, 400


def session_parts(rng: random.Random, n: int, start: datetime) -> tuple[dict, list, list]:
    """A session of the measurement: its fields, messages and runs (records)."""
    session_id = f"transfer-{n}"
    messages: list[dict[str, Any]] = []
    runs: list[dict[str, Any]] = []
    for r in range(RUNS_PER_SESSION):
        t = start + timedelta(seconds=r)
        run_id = f"{session_id}-run-{r}"
        pair = [
            message_document(role="user", content=_text(rng, 80), run_id=run_id, created_at=t),
            message_document(
                role="assistant", content=_text(rng, 240), run_id=run_id, created_at=t
            ),
        ]
        messages += pair
        chunks = [
            {
                "id": f"chunk-{r}-{k}", "text": _text(rng, CHUNK_CHARS),
                "score": round(rng.random(), 3), "retrieval_score": round(rng.random(), 3),
                "reranker_score": round(rng.random(), 3), "source_id": f"src-{k}",
                "source_name": f"doc-{k}.pdf", "knowledge_base_id": "kb-1", "kb_name": "Docs",
                "indexing_strategy": "chunk_embed", "meta": {"page": k + 1},
                "included_in_context": k < 3,
            }
            for k in range(CHUNKS_PER_RUN)
        ]  # fmt: skip
        runs.append(
            run_document(
                run_id=run_id, agent_id="finance_agent", status="COMPLETED",
                created_at=t, completed_at=t,
                reasoning={"enabled": True, "effort": "medium", "budget_tokens": None},
                usage={"input_tokens": 900, "output_tokens": 120, "reasoning_tokens": 40,
                       "total_tokens": 1060},
                retrieval_diagnostics=diagnostics(pair[0]["content"]), retrieved_context=chunks,
            )
        )  # fmt: skip
    end = start + timedelta(seconds=RUNS_PER_SESSION)
    fields = {
        "id": session_id, "user_id": f"user-{n % 20}", "agent_id": "finance_agent",
        "title": f"Session {n}", "metadata": {"n": n}, "created_at": start, "updated_at": end,
    }  # fmt: skip
    return fields, messages, runs


async def _seed(storage: Storage, sessions: int) -> None:
    rng = random.Random(11)
    start = datetime(2026, 3, 1, tzinfo=UTC)
    for n in range(sessions):
        await storage.sessions.import_session(*session_parts(rng, n, start + timedelta(minutes=n)))


async def measure(uri: str, *, sessions: int, rounds: int) -> dict[str, Any]:
    """Seed ``sessions`` sessions in fresh databases on ``uri``, time both pairs, drop them."""
    names = {k: f"bench_transfer_{k}" for k in ("source", "imported", "inserted")}
    source = await Storage.connect(uri, names["source"])
    client = source.client
    try:
        for name in names.values():
            await client.drop_database(name)
        await source.create_indexes()  # dropped with the database just above
        await _seed(source, sessions)
        # The driver's side reads and writes the same documents: heads and their pages.
        cols = [source.client[names["source"]][c] for c in (SESSIONS, PAGES)]
        times: dict[str, list[float]] = {k: [] for k in ("find", "export", "insert", "import")}
        lines: list[bytes] = []
        count = None
        for _ in range(rounds):
            # Streamed like the export: holding a thousand decoded sessions would make the
            # garbage collector walk them all, again and again, and slow the driver down.
            read = 0
            t = time.perf_counter()
            for col in cols:
                async for _doc in col.find({}):
                    read += col is cols[0]
            times["find"].append(time.perf_counter() - t)
            assert read == sessions

            out = io.BytesIO()
            t = time.perf_counter()
            count = await write_jsonl(source, out)
            times["export"].append(time.perf_counter() - t)
            lines = out.getvalue().splitlines(keepends=True)

        assert count is not None and count.sessions == sessions, count
        docs = [await c.find({}).to_list() for c in cols]  # insert_many's input, as read
        # Neither side should pay for the garbage collector walking what the benchmark
        # itself holds (these documents, the lines): freeze it out of the collector's view.
        gc.collect()
        gc.freeze()
        for _ in range(rounds):
            await client.drop_database(names["inserted"])
            targets = [client[names["inserted"]][c] for c in (SESSIONS, PAGES)]
            t = time.perf_counter()
            for target, part in zip(targets, docs, strict=True):
                if part:
                    await target.insert_many(part)
            times["insert"].append(time.perf_counter() - t)

            await client.drop_database(names["imported"])
            imported = await Storage.connect(uri, names["imported"])
            problems: list[str] = []

            def report(_number: int, outcome: Any, problems: list[str] = problems) -> None:
                if outcome.status != "imported":
                    problems.append(f"{outcome.status}: {outcome.reason}")

            t = time.perf_counter()
            counts = await import_lines(imported, lines, report)
            times["import"].append(time.perf_counter() - t)
            await imported.client.close()
            assert counts["imported"] == sessions, (counts, problems[:3])
        gc.unfreeze()
        best = {k: min(v) for k, v in times.items()}
        return {
            "export_vs_driver": round(best["find"] / best["export"], 3),
            "import_vs_driver": round(best["insert"] / best["import"], 3),
            "transfer": {
                "sessions": sessions,
                "messages": count.messages,
                "runs": count.runs,
                "chunks": count.runs * CHUNKS_PER_RUN,
                "export_mb": round(sum(map(len, lines)) / 1e6, 1),
                "rounds": rounds,
                "seconds": {k: round(v, 3) for k, v in best.items()},
            },
        }
    finally:
        for name in names.values():
            await client.drop_database(name)
        await client.close()


def table(figures: dict[str, Any]) -> str:
    t = figures["transfer"]
    s = t["seconds"]
    what = f"{t['messages']:,} messages, {t['chunks']:,} chunks, {t['export_mb']} MB of JSON"
    return "\n".join(
        [
            f"| transfer ({what}) | seconds | driver seconds | speed vs driver |",
            "|---|---:|---:|---:|",
            f"| export_vs_driver (vs find) | {s['export']:.2f} | {s['find']:.2f} "
            f"| {figures['export_vs_driver']:.2f} |",
            f"| import_vs_driver (vs insert_many) | {s['import']:.2f} | {s['insert']:.2f} "
            f"| {figures['import_vs_driver']:.2f} |",
        ]
    )


async def run(uri: str, quick: bool) -> dict[str, Any]:
    sessions = QUICK_SESSIONS if quick else FULL_SESSIONS
    return await measure(uri, sessions=sessions, rounds=1 if quick else 2)
