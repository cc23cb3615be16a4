"""The chunk filter and projection expression (``layout.chunk_expr``) against a plain-Python
model, with no database: a tiny evaluator of the aggregation operators the expression
uses (``tests/aggregation.py``) runs it over random chunks and filters. One test runs the same expressions in the
real database, so the evaluator itself is checked against what MongoDB computes."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from agent_sessions.storage import Storage
from agent_sessions.storage.layout import chunk_expr
from agent_sessions.storage.model import CHUNK_FIELDS, ChunkSpec

from .aggregation import evaluate, present


def model(chunks: list[dict[str, Any]], spec: ChunkSpec) -> list[dict[str, Any]]:
    """What ``retrievedContext(includedOnly, minScore)`` means, in plain Python."""
    kept = [
        c
        for c in chunks
        if (not spec.included_only or c.get("included_in_context") is not False)
        and (
            spec.min_score is None or (c.get("score") is not None and c["score"] >= spec.min_score)
        )
    ]
    if spec.fields is None:
        return kept
    return [{k: v for k, v in c.items() if k in spec.fields} for c in kept]


scores = st.none() | st.integers(-2, 2) | st.floats(-2, 2, allow_nan=False)
chunk = st.fixed_dictionaries(
    {"id": st.text("abc", min_size=1, max_size=3)},
    optional={
        "score": scores,
        "included_in_context": st.none() | st.booleans(),
        "kb_name": st.none() | st.text("xy", max_size=2),
        "meta": st.none() | st.just({"page": 1}),
    },
)
specs = st.builds(
    ChunkSpec,
    fields=st.none() | st.frozensets(st.sampled_from(sorted(CHUNK_FIELDS))),
    included_only=st.booleans(),
    min_score=st.none() | st.floats(-2, 2, allow_nan=False),
)


@settings(max_examples=300, deadline=None, database=None, derandomize=True)
@given(st.none() | st.lists(chunk, max_size=6), specs)
def test_chunk_expressions_match_the_model(
    chunks: list[dict[str, Any]] | None, spec: ChunkSpec
) -> None:
    run = {} if chunks is None else {"retrieved_context": chunks}
    got = evaluate(chunk_expr("r", spec), {"r": run})
    assert got == model(chunks or [], spec)


CASES = [
    [{"id": "a", "score": 0.5}, {"id": "b", "included_in_context": False, "score": 1}],
    [{"id": "c", "score": None, "included_in_context": None}, {"id": "d", "kb_name": "k"}],
    [{"id": "e", "score": 2, "included_in_context": True, "meta": {"page": 1}}],
]
SPECS = [
    ChunkSpec(),
    ChunkSpec(included_only=True),
    ChunkSpec(min_score=0.5),
    ChunkSpec(fields=frozenset({"id", "kb_name"}), included_only=True, min_score=-1),
]


async def test_the_evaluator_agrees_with_the_database(storage: Storage) -> None:
    collection = storage.db["expressions"]
    await collection.insert_many(
        [{"_id": n, "r": {"retrieved_context": c}} for n, c in enumerate(CASES)]
    )
    await collection.insert_one({"_id": len(CASES), "r": {}})
    for spec in SPECS:
        found = await (
            await collection.aggregate(
                [
                    {"$sort": {"_id": 1}},
                    {
                        "$project": {
                            "out": {"$let": {"vars": {"r": "$r"}, "in": chunk_expr("r", spec)}}
                        }
                    },
                ]
            )
        ).to_list()
        for doc, chunks in zip(found, [*CASES, {}], strict=True):
            run = {"retrieved_context": chunks} if chunks != {} else {}
            assert present(doc["out"]) == present(evaluate(chunk_expr("r", spec), {"r": run}))
