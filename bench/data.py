"""Seed data: sessions S, M, L with retrieval-heavy runs, small sessions across users, and
two sessions for the append measurement. Documents are built with storage's own
constructors and inserted whole, so seeding a 1,000-message session is one write."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from agent_sessions.storage import Storage
from agent_sessions.storage.layout import SESSIONS
from agent_sessions.storage.sessions import message_document, run_document

BENCH_USER = "bench-user"
_VOCABULARY = "revenue quarter policy refund enterprise customer contract renewal forecast margin"
_MORE = "invoice region growth churn pipeline budget audit compliance retention pricing"
WORDS = (_VOCABULARY + " " + _MORE).split()


@dataclass(frozen=True)
class Sizes:
    sessions: dict[str, tuple[int, int]]  # name → (messages, runs)
    small_sessions: int
    users: int
    append_runs: tuple[int, int]


FULL = Sizes({"S": (10, 5), "M": (100, 50), "L": (1000, 500)}, 2000, 50, (10, 1000))
QUICK = Sizes({"S": (10, 5), "M": (100, 50), "L": (200, 100)}, 200, 10, (10, 200))


def _text(rng: random.Random, chars: int) -> str:
    out: list[str] = []
    n = 0
    while n < chars:
        word = rng.choice(WORDS)
        out.append(word)
        n += len(word) + 1
    return " ".join(out)[:chars]


def _chunks(rng: random.Random, run: int) -> list[dict[str, Any]]:
    return [
        {
            "id": f"chunk-{run}-{k}",
            "text": _text(rng, 800),
            "score": round(0.95 - k * 0.05, 3),
            "retrieval_score": round(0.9 - k * 0.05, 3),
            "reranker_score": round(0.95 - k * 0.05, 3),
            "source_id": f"src-{k % 4}",
            "source_name": f"Q{k % 4 + 1}-2026.pdf",
            "knowledge_base_id": "kb-finance",
            "kb_name": "Finance docs",
            "indexing_strategy": "chunk_embed",
            "meta": {"page": k + 1},
            "included_in_context": k < 6,
        }
        for k in range(10)
    ]


def diagnostics(query: str) -> dict[str, Any]:
    return {"query": query, "latency_ms": 12, "candidates": 40}


def session_document(
    session_id: str, user_id: str, runs: int, *, chunks: bool, start: datetime, rng: random.Random
) -> dict[str, Any]:
    """A session of ``runs`` runs, each a question and an answer (and 10 chunks)."""
    messages: list[dict[str, Any]] = []
    run_docs: list[dict[str, Any]] = []
    for r in range(runs):
        t = start + timedelta(seconds=r)
        run_id = f"{session_id}-run-{r}"
        pair = [
            message_document(role="user", content=_text(rng, 80), run_id=run_id, created_at=t),
            message_document(
                role="assistant", content=_text(rng, 240), run_id=run_id, created_at=t
            ),
        ]
        messages += pair
        run_docs.append(
            run_document(
                run_id=run_id, agent_id="finance_agent", status="COMPLETED", messages=pair,
                created_at=t, completed_at=t,
                reasoning={"enabled": True, "effort": "medium", "budget_tokens": None},
                usage={"input_tokens": 900, "output_tokens": 120, "reasoning_tokens": 40,
                       "total_tokens": 1060},
                retrieval_diagnostics=diagnostics(pair[0]["content"]) if chunks else None,
                retrieved_context=_chunks(rng, r) if chunks else (),
            )
        )  # fmt: skip
    end = start + timedelta(seconds=runs)
    return {
        "_id": session_id, "user_id": user_id, "agent_id": "finance_agent", "title": None,
        "metadata": {}, "created_at": start, "updated_at": end, "message_count": len(messages),
        "run_count": runs, "messages": messages, "runs": run_docs,
    }  # fmt: skip


async def seed(storage: Storage, sizes: Sizes) -> dict[str, Any]:
    """Insert the benchmark's data; return the ids the measurements need."""
    rng = random.Random(7)
    col = storage.client[storage.database][SESSIONS]
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for name, (_messages, runs) in sizes.sessions.items():
        await col.insert_one(
            session_document(name, BENCH_USER, runs, chunks=True, start=start, rng=rng)
        )
    small = [
        session_document(f"small-{i}", f"user-{i % sizes.users}", 1, chunks=False,
                         start=start + timedelta(minutes=i), rng=rng)
        for i in range(sizes.small_sessions)
    ]  # fmt: skip
    for i in range(0, len(small), 500):
        await col.insert_many(small[i : i + 500])
    few, many = sizes.append_runs
    await col.insert_one(
        session_document("append-few", BENCH_USER, few, chunks=False, start=start, rng=rng)
    )
    await col.insert_one(
        session_document("append-many", BENCH_USER, many, chunks=False, start=start, rng=rng)
    )
    return {"run_id": "M-run-25", "list_user": "user-3"}
