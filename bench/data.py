"""Seed data: sessions S, M, L with retrieval-heavy runs, a long session XL far past one
document's 16 MB, small sessions across users, and three sessions for the append
measurement. Sessions are built as records and stored with storage's own import, so they
are laid out (head and pages) exactly as appends would have left them."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from agent_sessions.storage import Storage
from agent_sessions.storage.sessions import message_document, run_document

BENCH_USER = "bench-user"
_VOCABULARY = "revenue quarter policy refund enterprise customer contract renewal forecast margin"
_MORE = "invoice region growth churn pipeline budget audit compliance retention pricing"
WORDS = (_VOCABULARY + " " + _MORE).split()


@dataclass(frozen=True)
class Sizes:
    sessions: dict[str, tuple[int, int]]  # name → (messages, runs), two messages a run
    long: tuple[int, int]  # XL: (messages, runs), ten messages a run with tool calls
    small_sessions: int
    users: int
    append_runs: tuple[int, int, int]


FULL = Sizes(
    {"S": (10, 5), "M": (100, 50), "L": (1000, 500)}, (100_000, 10_000), 2000, 50,
    (10, 1000, 10_000),
)  # fmt: skip
QUICK = Sizes(
    {"S": (10, 5), "M": (100, 50), "L": (200, 100)}, (2_000, 200), 200, 10, (10, 200, 1000)
)


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


def _turn(run_id: str, t: datetime, rng: random.Random, tools: int) -> list[dict[str, Any]]:
    """A question, ``tools`` tool calls with their results, and the answer."""
    out = [message_document(role="user", content=_text(rng, 80), run_id=run_id, created_at=t)]
    for k in range(tools):
        call = {"id": f"{run_id}-call-{k}", "name": "lookup", "arguments": '{"q": "revenue"}'}
        out.append(
            message_document(
                role="assistant", content=None, run_id=run_id, created_at=t, tool_calls=[call]
            )
        )
        out.append(
            message_document(
                role="tool", content=_text(rng, 120), run_id=run_id, created_at=t,
                tool_call_id=call["id"], name="lookup",
            )
        )  # fmt: skip
    out.append(
        message_document(role="assistant", content=_text(rng, 240), run_id=run_id, created_at=t)
    )
    return out


def session_parts(
    session_id: str, user_id: str, runs: int, *, chunks: bool, start: datetime,
    rng: random.Random, tools: int = 0,
) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:  # fmt: skip
    """A session of ``runs`` runs (and 10 chunks each): its fields, messages, runs."""
    messages: list[dict[str, Any]] = []
    run_docs: list[dict[str, Any]] = []
    for r in range(runs):
        t = start + timedelta(seconds=r)
        run_id = f"{session_id}-run-{r}"
        turn = _turn(run_id, t, rng, tools)
        messages += turn
        run_docs.append(
            run_document(
                run_id=run_id, agent_id="finance_agent", status="COMPLETED",
                created_at=t, completed_at=t,
                reasoning={"enabled": True, "effort": "medium", "budget_tokens": None},
                usage={"input_tokens": 900, "output_tokens": 120, "reasoning_tokens": 40,
                       "total_tokens": 1060},
                retrieval_diagnostics=diagnostics(turn[0]["content"]) if chunks else None,
                retrieved_context=_chunks(rng, r) if chunks else (),
            )
        )  # fmt: skip
    fields = {
        "id": session_id, "user_id": user_id, "agent_id": "finance_agent", "title": None,
        "metadata": {}, "created_at": start, "updated_at": start + timedelta(seconds=runs),
    }  # fmt: skip
    return fields, messages, run_docs


async def seed(storage: Storage, sizes: Sizes) -> dict[str, Any]:
    """Store the benchmark's data; return the ids the measurements need, and how long
    the long session took to store."""
    rng = random.Random(7)
    store = storage.sessions
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for name, (_messages, runs) in sizes.sessions.items():
        await store.import_session(
            *session_parts(name, BENCH_USER, runs, chunks=True, start=start, rng=rng)
        )
    for i in range(sizes.small_sessions):
        await store.import_session(
            *session_parts(f"small-{i}", f"user-{i % sizes.users}", 1, chunks=False,
                           start=start + timedelta(minutes=i), rng=rng)
        )  # fmt: skip
    for name, runs in zip(
        ("append-few", "append-many", "append-huge"), sizes.append_runs, strict=True
    ):
        await store.import_session(
            *session_parts(name, BENCH_USER, runs, chunks=False, start=start, rng=rng)
        )
    messages, runs = sizes.long
    parts = session_parts(
        "XL", BENCH_USER, runs, chunks=True, start=start, rng=rng, tools=messages // runs // 2 - 1
    )
    assert len(parts[1]) == messages, len(parts[1])
    t = time.perf_counter()
    await store.import_session(*parts)
    long_load_s = time.perf_counter() - t
    size = {"$sum": {"$bsonSize": "$$ROOT"}}
    [pages] = await (
        await store.pages.aggregate(
            [
                {"$match": {"session_id": "XL"}},
                {"$group": {"_id": None, "bytes": size, "n": {"$sum": 1}}},
            ]
        )
    ).to_list()
    head = await store.heads.find_one({"_id": "XL"}, {"bytes": 1})
    return {
        "run_id": "M-run-25",
        "list_user": "user-3",
        "long": {
            "messages": messages,
            "runs": runs,
            "load_s": round(long_load_s, 2),
            "stored_mb": round((pages["bytes"] + head["bytes"]) / 1e6, 1),
            "pages": pages["n"],
        },
    }
