"""The window and projection expressions of ``storage.layout`` against plain-Python models,
with no database: ``segment_expr`` (a window's part of one document: range, filter, first
or last, counts), the item projections (``message_item``, ``run_item_expr`` with the
answers it looks up through ``with_texts``), the cited chunks of a message window
(``cited_chunks_expr``) and the lookups by id and by seq. The expressions run in the
tiny evaluator of ``tests/aggregation.py`` over random documents and windows; one test
runs them in the real database, so the evaluator is checked against the server."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent_sessions.storage import Storage
from agent_sessions.storage import layout as L
from agent_sessions.storage.model import (
    MESSAGE_FIELDS,
    ROLES,
    RUN_FIELDS,
    STATUSES,
    ChunkSpec,
    Window,
)
from agent_sessions.storage.windows import limit

from .aggregation import evaluate, present
from .test_storage_expressions import model as chunk_model

Doc = dict[str, Any]

# --- the models ---------------------------------------------------------------------------


def segment_model(
    items: list[Doc], window: Window, key: str, values: tuple[str, ...] | None, item: Any
) -> Doc:
    """One document's part of a window, as ``segment_expr`` documents it."""
    matched = [x for x in items if values is None or x.get(key) in values]
    ranged = [
        x
        for x in matched
        if (window.after is None or x["seq"] > window.after)
        and (window.before is None or x["seq"] < window.before)
    ]
    n = limit(window)
    from_back = window.first is None and window.last is not None
    kept = [] if n == 0 else ranged[-n:] if from_back else ranged[:n]
    out: Doc = {"items": [item(x) for x in kept], "rc": len(ranged)}
    if window.after is not None:
        out["le"] = sum(x["seq"] <= window.after for x in matched)
    if window.before is not None:
        out["lt"] = sum(x["seq"] < window.before for x in matched)
    return out


def pick(x: Doc, fields: frozenset[str] | None, every: frozenset[str]) -> Doc:
    """An item reduced to ``fields`` and its seq (all of it when they cover every field)."""
    if fields is None or fields >= every:
        return x
    return {k: v for k, v in x.items() if k in fields | {"seq"}}


def run_item_model(run: Doc, fields: frozenset[str] | None, chunks: ChunkSpec, doc: Doc) -> Doc:
    """A run as ``run_item_expr`` reads it: its stored fields, its chunks under ``chunks``,
    and ``input``/``content`` from the document's messages by the seqs ``in``/``out`` (a
    seq not found here is handed back as ``_in``/``_out``; a stored content wins)."""
    fields = RUN_FIELDS if fields is None else fields
    out = {k: run[k] for k in sorted(fields & L.RUN_STORED) if k in run}
    out["seq"], out["id"] = run["seq"], run["id"]
    if "retrieved_context" in fields:
        out["retrieved_context"] = chunk_model(run.get("retrieved_context") or [], chunks)
    seqs = [m["seq"] for m in doc.get("messages") or []]
    texts = [m.get("content") for m in doc.get("messages") or []]
    for name, ref in (("input", "in"), ("content", "out")):
        if name not in fields:
            continue
        at = seqs.index(run[ref]) if run.get(ref) in seqs else -1
        found = texts[at] if at >= 0 else None
        missing = run[ref] if run.get(ref) is not None and at < 0 else None
        if name == "content" and run.get("content") is not None:
            found, missing = run["content"], None
        out[name], out[f"_{ref}"] = found, missing
    return out


def cited_model(items: list[Doc], runs: list[Doc], specs: tuple[ChunkSpec, ...]) -> list[Doc]:
    """The runs of the assistant messages among ``items``, with their chunks per filter."""
    ids = [m.get("run_id") for m in items if m.get("role") == "assistant"]
    return [
        {"id": r["id"]}
        | {f"c{k}": chunk_model(r.get("retrieved_context") or [], s) for k, s in enumerate(specs)}
        for r in runs
        if r["id"] in ids
    ]


# --- random documents and windows ----------------------------------------------------------

seqs = st.lists(st.integers(0, 20), max_size=8, unique=True).map(sorted)
small = st.none() | st.integers(0, 22)
windows = st.builds(
    Window,
    first=st.none() | st.integers(0, 6),
    after=small,
    last=st.none() | st.integers(0, 6),
    before=small,
)
chunks = st.lists(
    st.fixed_dictionaries(
        {"id": st.sampled_from("abc")},
        optional={
            "score": st.none() | st.sampled_from([0, 0.5, 1]),
            "included_in_context": st.booleans(),
        },
    ),
    max_size=3,
)
chunk_specs = st.builds(
    ChunkSpec,
    fields=st.none() | st.just(frozenset({"id"})),
    included_only=st.booleans(),
    min_score=st.none() | st.just(0.5),
)


@st.composite
def documents(draw: st.DrawFn) -> Doc:
    """A head or a page: messages and runs under their seqs, some fields left out."""
    messages = []
    for seq in draw(seqs):
        m: Doc = {"seq": seq, "id": f"m{seq}", "role": draw(st.sampled_from(ROLES))}
        if draw(st.booleans()):
            m["content"] = draw(st.none() | st.sampled_from(["x", "y"]))
        if draw(st.booleans()):
            m["run_id"] = draw(st.sampled_from(["r1", "r3", "r5"]))
        messages.append(m)
    runs = []
    for seq in draw(seqs):
        r: Doc = {"seq": seq, "id": f"r{seq}", "status": draw(st.sampled_from(STATUSES))}
        for ref in ("in", "out"):
            if draw(st.booleans()):
                r[ref] = draw(st.none() | st.integers(0, 20))
        if draw(st.booleans()):
            r["content"] = draw(st.none() | st.just("stored"))
        if draw(st.booleans()):
            r["retrieved_context"] = draw(chunks)
        if draw(st.booleans()):
            r["agent_id"] = "a"
        runs.append(r)
    return {"messages": messages, "runs": runs}


def _values(options: tuple[str, ...]) -> st.SearchStrategy[tuple[str, ...] | None]:
    return st.none() | st.lists(st.sampled_from(options), max_size=3, unique=True).map(
        lambda v: tuple(sorted(v))
    )


message_fields = st.none() | st.frozensets(st.sampled_from(sorted(MESSAGE_FIELDS)))
run_fields = st.none() | st.frozensets(st.sampled_from(sorted(RUN_FIELDS)))


def message_window_expr(
    window: Window, roles: tuple[str, ...] | None, fields: Any, specs: tuple[ChunkSpec, ...]
) -> Any:
    """A message window with its cited chunks, composed as storage composes it."""
    seg = L.segment_expr(
        "messages", window, L.role_match(roles), L.message_item(fields), "m", limit(window)
    )
    if not specs:
        return seg
    out = {k: f"$$w.{k}" for k in ("items", "rc", "le", "lt")}
    return {"$let": {"vars": {"w": seg}, "in": out | {"c": L.cited_chunks_expr("w.items", specs)}}}


def message_window_model(
    doc: Doc,
    window: Window,
    roles: tuple[str, ...] | None,
    fields: Any,
    specs: tuple[ChunkSpec, ...],
) -> Doc:
    item = lambda m: pick(m, fields, MESSAGE_FIELDS)  # noqa: E731
    out = segment_model(doc["messages"], window, "role", roles, item)
    if specs:
        out["c"] = cited_model(out["items"], doc["runs"], specs)
    return out


def run_window_expr(
    window: Window, statuses: tuple[str, ...] | None, fields: Any, spec: ChunkSpec
) -> Any:
    item = L.run_item_expr("r", fields, spec)
    return L.with_texts(
        L.segment_expr("runs", window, L.status_match(statuses), item, "r", limit(window))
    )


# --- the properties -----------------------------------------------------------------------

EXAMPLES = settings(max_examples=200, deadline=None, database=None, derandomize=True)


@pytest.mark.slow  # a few seconds of generated documents each
@EXAMPLES
@given(documents(), windows, _values(ROLES), message_fields, st.lists(chunk_specs, max_size=2))
def test_message_windows_match_the_model(
    doc: Doc, window: Window, roles: Any, fields: Any, specs: list[ChunkSpec]
) -> None:
    got = evaluate(message_window_expr(window, roles, fields, tuple(specs)), {"CURRENT": doc})
    assert got == message_window_model(doc, window, roles, fields, tuple(specs))


@pytest.mark.slow
@EXAMPLES
@given(documents(), windows, _values(STATUSES), run_fields, chunk_specs)
def test_run_windows_match_the_model(
    doc: Doc, window: Window, statuses: Any, fields: Any, spec: ChunkSpec
) -> None:
    got = evaluate(run_window_expr(window, statuses, fields, spec), {"CURRENT": doc})
    item = lambda r: run_item_model(r, fields, spec, doc)  # noqa: E731
    assert got == segment_model(doc["runs"], window, "status", statuses, item)


@pytest.mark.slow
@EXAMPLES
@given(documents(), st.lists(st.integers(0, 21), max_size=4), message_fields, run_fields)
def test_lookups_by_id_and_seq_match_the_model(
    doc: Doc, wanted: list[int], m_fields: Any, r_fields: Any
) -> None:
    run_ids = [f"r{n}" for n in wanted]
    item = L.run_item_expr("r", r_fields, ChunkSpec())
    got_runs = evaluate(L.with_texts(L.runs_by_id_expr(run_ids, item)), {"CURRENT": doc})
    assert got_runs == [
        run_item_model(r, r_fields, ChunkSpec(), doc) for r in doc["runs"] if r["id"] in run_ids
    ]
    got_messages = evaluate(L.messages_by_seq_expr(wanted, m_fields), {"CURRENT": doc})
    assert got_messages == [
        pick(m, m_fields, MESSAGE_FIELDS) for m in doc["messages"] if m["seq"] in wanted
    ]


# --- the evaluator against the server -------------------------------------------------------

DOCS: list[Doc] = [
    {
        "messages": [
            {"seq": 0, "id": "m0", "role": "user", "content": "q", "run_id": "r1"},
            {"seq": 1, "id": "m1", "role": "assistant", "run_id": "r1"},
            {"seq": 3, "id": "m3", "role": "assistant", "content": "a", "run_id": "r3"},
            {"seq": 4, "id": "m4", "role": "tool", "content": None},
        ],
        "runs": [
            {
                "seq": 1,
                "id": "r1",
                "status": "COMPLETED",
                "in": 0,
                "out": 9,
                "retrieved_context": [
                    {"id": "a", "score": 0.5},
                    {"id": "b", "included_in_context": False},
                ],
            },
            {"seq": 3, "id": "r3", "status": "FAILED", "in": 7, "out": 3, "content": "stored"},
            {"seq": 5, "id": "r5", "status": "RUNNING", "agent_id": "a"},
        ],
    },
    {"messages": [], "runs": []},
]
WINDOWS = [
    Window(first=2),
    Window(last=2, before=4),
    Window(first=1, after=0, last=1),
    Window(after=1, before=5, last=0),
]


async def test_the_evaluator_agrees_with_the_database(storage: Storage) -> None:
    exprs: dict[str, Any] = {}
    for n, w in enumerate(WINDOWS):
        exprs[f"m{n}"] = message_window_expr(w, None if n % 2 else ("assistant",), None,
                                             (ChunkSpec(), ChunkSpec(included_only=True)))  # fmt: skip
        exprs[f"p{n}"] = message_window_expr(w, None, frozenset({"role", "run_id"}), (ChunkSpec(),))
        exprs[f"r{n}"] = run_window_expr(w, None if n % 2 else ("COMPLETED", "FAILED"),
                                         None if n < 2 else frozenset({"input", "content", "status"}),
                                         ChunkSpec(min_score=0.1))  # fmt: skip
    exprs["x"] = L.with_texts(
        L.runs_by_id_expr(["r1", "r5"], L.run_item_expr("r", None, ChunkSpec()))
    )
    exprs["s"] = L.messages_by_seq_expr([1, 4], frozenset({"content"}))
    collection = storage.db["layout_model"]
    await collection.insert_many([{"_id": n} | doc for n, doc in enumerate(DOCS)])
    cursor = await collection.aggregate([{"$sort": {"_id": 1}}, {"$project": exprs}])
    found = await cursor.to_list()
    assert len(found) == len(DOCS)
    for row, doc in zip(found, DOCS, strict=True):
        for name, expr in exprs.items():
            assert present(row[name]) == present(evaluate(expr, {"CURRENT": doc})), name
