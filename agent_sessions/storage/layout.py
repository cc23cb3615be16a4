"""How sessions are laid out in MongoDB: the only module that spells stored field names.

A session is a **head** document in ``sessions`` and, once it has grown past a bound, any
number of **page** documents in ``session_pages`` (MongoDB's Bucket and Outlier patterns).
The head holds the session's own fields, its counters and its newest turns; pages hold
older turns, in order, each with the runs and retrieved context it received::

    head  {_id, v: 2, user_id, agent_id, title, metadata, created_at, updated_at,
           expires_at?, forked_from?: {session_id, message_id},
           mkv: ["key\x00json value"],       # metadata terms, for the metadata index
           message_count, run_count,           # live totals
           n_roles: [user, assistant, tool, system], n_status: [QUEUED … CANCELLED],
           m_next, r_next,                     # the seq the next message / run gets
           m_cut, r_cut,                       # every seq below these is in the pages
           pages,                              # how many pages there are (n = 0 … pages-1)
           before: {m, r, roles, status},      # counts held by the pages, in all
           bytes, entries,                     # the head's size: BSON bytes, array entries
           messages: [message], runs: [run]}
    page  {_id, session_id, user_id, n, m_lo, m_hi, r_lo, r_hi,
           before: {m, r, roles, status},      # counts held by the pages before this one
           own: {m, r, roles, status}, bytes, messages: [message], runs: [run]}

    message {seq, id, role, content, run_id, created_at, name?, tool_calls?, tool_call_id?}
    run     {seq, id, agent_id, status, error, reasoning, usage, created_at, started_at,
             completed_at, retrieval_diagnostics, retrieved_context: [chunk],
             mseq: [seq],       # the run's messages
             in?, out?,         # seqs of its input (first user) and answer (last assistant)
             content?}          # only when recorded with an answer its messages do not hold

Every message and run has a ``seq``; page ``n`` holds the message seqs ``[m_lo, m_hi)``
and the run seqs ``[r_lo, r_hi)``, the head everything from ``m_cut``/``r_cut`` on; both
arrays are sorted by seq in every document. A user message's text is stored once:
``Run.input`` and ``Run.content`` are read through ``in``/``out``.

Sessions written before this layout (one document, no ``v``) are migrated at start-up
(``storage.migrate``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .model import (
    CHUNK_FIELDS,
    MESSAGE_FIELDS,
    ROLES,
    RUN_FIELDS,
    STATUSES,
    ChunkSpec,
    Window,
)

SESSIONS = "sessions"
PAGES = "session_pages"
API_KEYS = "api_keys"
META = "agent_sessions_meta"
LAYOUT_VERSION = 2

Doc = dict[str, Any]
IndexSpec = tuple[list[tuple[str, int]], dict[str, Any]]

# (keys, options) for create_index. The list reads walk these newest-first; the pages are
# found by session and seq, by number, or by a run id.
SESSION_INDEXES: list[IndexSpec] = [
    ([("user_id", 1), ("updated_at", -1), ("_id", 1)], {"name": "user_updated"}),
    ([("agent_id", 1), ("updated_at", -1), ("_id", 1)], {"name": "agent_updated"}),
    ([("updated_at", -1), ("_id", 1)], {"name": "updated"}),
    # Metadata filters (the attribute pattern): one multikey index serves every key.
    ([("user_id", 1), ("mkv", 1), ("updated_at", -1), ("_id", 1)], {"name": "user_metadata"}),
    ([("mkv", 1), ("updated_at", -1), ("_id", 1)], {"name": "metadata"}),
    # Retention: the sweep finds expired sessions by this.
    ([("expires_at", 1)], {"name": "expires", "sparse": True}),
]
PAGE_INDEXES: list[IndexSpec] = [
    ([("session_id", 1), ("n", 1)], {"name": "session_n", "unique": True}),
    ([("session_id", 1), ("m_lo", 1)], {"name": "session_messages"}),
    ([("session_id", 1), ("r_lo", 1)], {"name": "session_runs"}),
    ([("session_id", 1), ("runs.id", 1)], {"name": "session_run_ids"}),
]
API_KEY_INDEXES: list[IndexSpec] = [
    ([("hash", 1)], {"name": "hash", "unique": True}),
]

# The shard keys for a sharded cluster (README, "Scaling out"): every command on one
# session names its id, so each is routed to one shard; lists of sessions ask every shard.
SHARD_KEYS = {
    SESSIONS: {"_id": "hashed"},
    PAGES: {"session_id": "hashed"},
    "run_events": {"session_id": "hashed"},  # storage.live: a run's events, by session
}


@dataclass(frozen=True, slots=True)
class Bounds:
    """When the head moves its older turns into a page, and how large a page may be.

    The head moves turns out once it holds more than ``head_entries`` array entries
    (messages, runs and chunks) or ``head_bytes``, down to half of each; a page spans at
    most ``page_seqs`` message seqs and as many run seqs, and at most ``page_bytes``.
    See the README ("Sessions without a ceiling") for the measurements behind them.
    """

    head_entries: int = 256
    head_bytes: int = 512 * 1024
    page_seqs: int = 512
    page_bytes: int = 4 * 1024 * 1024


DEFAULT_BOUNDS = Bounds()

# A single message, and everything one write adds, are bounded: with a head of at most
# head_bytes, one write always fits a 16 MB document.
MAX_MESSAGE_BYTES = 4 * 1024 * 1024
MAX_WRITE_BYTES = 10 * 1024 * 1024


# --- records ↔ documents ----------------------------------------------------------------

SESSION_KEYS = (
    "user_id",
    "agent_id",
    "title",
    "metadata",
    "created_at",
    "updated_at",
    "message_count",
    "run_count",
    "expires_at",
    "forked_from",
)
RUN_STORED = frozenset(RUN_FIELDS - {"input", "content"})


def session_record(doc: Doc) -> Doc:
    """A head document's session fields under the record's names (``_id`` is ``id``)."""
    out = {k: v for k, v in doc.items() if k in SESSION_KEYS}
    out["id"] = doc["_id"]
    return out


# Metadata values the metadata index holds: top-level scalars, strings up to this long.
MAX_INDEXED_VALUE = 256


def metadata_term(key: str, value: Any) -> str | None:
    """The index term of one metadata entry; ``None`` for a value that is not indexed
    (an object, an array, null, a long string). Numbers compare as MongoDB compares them
    (``1`` and ``1.0`` are one term); a string and a number never match each other."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, int | float):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        text = repr(value)
    elif isinstance(value, str) and len(value) <= MAX_INDEXED_VALUE:
        text = json.dumps(value, ensure_ascii=False)
    else:
        return None
    return f"{key}\x00{text}"


def metadata_terms(metadata: Doc | None) -> list[str]:
    """The index terms of a session's metadata (its ``mkv`` field)."""
    terms = (metadata_term(k, v) for k, v in (metadata or {}).items())
    return sorted(t for t in terms if t is not None)


def head_projection(fields: frozenset[str] | None) -> dict[str, Any]:
    """A ``find`` projection of a head's session fields (``None``: all of them)."""
    keys = SESSION_KEYS if fields is None else sorted(f for f in fields if f in SESSION_KEYS)
    return {k: 1 for k in keys} | {"_id": 1}


def role_index(role: str) -> int:
    return ROLES.index(role)


def status_index(status: str) -> int:
    return STATUSES.index(status)


def zero_counts() -> Doc:
    return {"m": 0, "r": 0, "roles": [0] * len(ROLES), "status": [0] * len(STATUSES)}


def counts_of(messages: list[Doc], runs: list[Doc]) -> Doc:
    """The counters of a set of stored messages and runs."""
    counts = zero_counts()
    counts["m"], counts["r"] = len(messages), len(runs)
    for m in messages:
        counts["roles"][role_index(m["role"])] += 1
    for r in runs:
        counts["status"][status_index(r["status"])] += 1
    return counts


def add_counts(a: Doc, b: Doc, sign: int = 1) -> Doc:
    return {
        "m": a["m"] + sign * b["m"],
        "r": a["r"] + sign * b["r"],
        "roles": [x + sign * y for x, y in zip(a["roles"], b["roles"], strict=True)],
        "status": [x + sign * y for x, y in zip(a["status"], b["status"], strict=True)],
    }


def matching(counts: Doc, kind: str, values: tuple[str, ...] | None) -> int:
    """How many of the counted messages (``kind`` "m") or runs ("r") a filter matches."""
    if values is None:
        return int(counts[kind])
    if kind == "m":
        return sum(counts["roles"][role_index(v)] for v in values)
    return sum(counts["status"][status_index(v)] for v in values)


def head_counts(head: Doc) -> Doc:
    """The session's totals, as ``counts_of`` would count them."""
    return {
        "m": head.get("message_count") or 0,
        "r": head.get("run_count") or 0,
        "roles": head.get("n_roles") or [0] * len(ROLES),
        "status": head.get("n_status") or [0] * len(STATUSES),
    }


# --- expressions -------------------------------------------------------------------------
# Client values inside expressions are always wrapped in $literal: a string such as
# "$$r.id" would otherwise be read as a path or a variable.


def literal(value: Any) -> dict[str, Any]:
    return {"$literal": list(value) if isinstance(value, tuple) else value}


def _size(expr: Any) -> dict[str, Any]:
    return {"$size": expr}


def _filter(source: Any, var: str, cond: Any) -> dict[str, Any]:
    return {"$filter": {"input": source, "as": var, "cond": cond}}


def _map(source: Any, var: str, expr: Any) -> dict[str, Any]:
    return {"$map": {"input": source, "as": var, "in": expr}}


def _pick(var: str, fields: frozenset[str] | None, every: frozenset[str]) -> Any:
    """``$$var`` reduced to ``fields`` (and its seq); as it is when they cover every
    stored field, since listing them all costs a per-field evaluation for no bytes saved."""
    if fields is None or fields >= every:
        return f"$${var}"
    return {f: f"$${var}.{f}" for f in sorted(fields | {"seq"})}


def chunk_expr(run_var: str, spec: ChunkSpec) -> Any:
    """The chunks of ``$$run_var`` that ``spec`` selects, reduced to its fields."""
    conds: list[Any] = []
    if spec.included_only:
        # Absent counts as included, as it reads (RetrievedChunk.includedInContext).
        conds.append({"$ne": ["$$c.included_in_context", False]})
    if spec.min_score is not None:
        # A chunk without a score does not pass a score threshold.
        conds.append({"$ne": [{"$ifNull": ["$$c.score", None]}, None]})
        conds.append({"$gte": ["$$c.score", spec.min_score]})
    source: Any = {"$ifNull": [f"$${run_var}.retrieved_context", []]}
    if conds:
        source = _filter(source, "c", {"$and": conds})
    if spec.fields is None or spec.fields >= CHUNK_FIELDS:
        return source
    return _map(source, "c", {f: f"$$c.{f}" for f in sorted(spec.fields)})


def run_item_expr(var: str, fields: frozenset[str] | None, chunks: ChunkSpec) -> Any:
    """One run of this document reduced to ``fields``, its chunks filtered by ``chunks``.

    ``input`` and ``content`` are read from the document's own messages (bound as
    ``$$SEQ``/``$$TEXT`` by ``with_texts``) through the run's ``in``/``out``; ``_in``/
    ``_out`` carry the seqs that were not found here, for the caller to read elsewhere.
    """
    fields = RUN_FIELDS if fields is None else fields
    out: dict[str, Any] = {f: f"$${var}.{f}" for f in sorted(fields & RUN_STORED)}
    out["seq"] = f"$${var}.seq"
    out["id"] = f"$${var}.id"
    if "retrieved_context" in fields:
        out["retrieved_context"] = chunk_expr(var, chunks)
    for name, ref in (("input", "in"), ("content", "out")):
        if name not in fields:
            continue
        at = {"$indexOfArray": ["$$SEQ", f"$${var}.{ref}"]}
        found: Doc = {"$cond": [{"$gte": [at, 0]}, {"$arrayElemAt": ["$$TEXT", at]}, None]}
        missing: Doc = {
            "$cond": [
                {
                    "$and": [
                        {"$ne": [{"$ifNull": [f"$${var}.{ref}", None]}, None]},
                        {"$lt": [at, 0]},
                    ]
                },
                f"$${var}.{ref}",
                None,
            ]
        }
        if name == "content":
            # A stored answer of its own wins over the derived one.
            found = {"$ifNull": [f"$${var}.content", found]}
            missing = {
                "$cond": [{"$ne": [{"$ifNull": [f"$${var}.content", None]}, None]}, None, missing]
            }
        out[name] = found
        out[f"_{ref}"] = missing
    return out


def field_of(array: str, key: str) -> dict[str, Any]:
    """``[x.key for x in $array]``. (``"$array.key"`` means the same in MongoDB, but
    SecantusDB 0.7 reads such a path through an array of documents as missing.)"""
    return _map({"$ifNull": [f"${array}", []]}, "x", f"$$x.{key}")


def with_texts(expr: Any) -> dict[str, Any]:
    """``expr`` with the document's message seqs and texts bound as ``$$SEQ``/``$$TEXT``
    (once per document: ``run_item_expr`` looks answers up in them)."""
    return {
        "$let": {
            "vars": {"SEQ": field_of("messages", "seq"), "TEXT": field_of("messages", "content")},
            "in": expr,
        }
    }


def segment_expr(
    array: str, window: Window, match: Any | None, item: Any, var: str, limit: int
) -> dict[str, Any]:
    """One document's part of a window over ``$array``: ``{items, rc, le, lt}``.

    ``items``: the matching items in the range ``(after, before)``, at most ``limit``,
    from the front (or from the back when only ``last`` is given), each as ``item`` with
    the element bound to ``$$var``; ``rc`` counts them all; ``le``/``lt`` count the
    matching items at or below ``after`` / below ``before`` (when those are given).
    ``match`` is a condition over ``$$x`` (``None``: every item).
    """
    source = {"$ifNull": [f"${array}", []]}
    matched: Any = source if match is None else _filter(source, "x", match)
    bounds = []
    if window.after is not None:
        bounds.append({"$gt": ["$$x.seq", window.after]})
    if window.before is not None:
        bounds.append({"$lt": ["$$x.seq", window.before]})
    ranged: Any = "$$M" if not bounds else _filter("$$M", "x", {"$and": bounds})
    from_back = window.first is None and window.last is not None
    if limit == 0:
        items: Any = []
    else:
        items = {"$slice": ["$$R", -limit if from_back else limit]}
        if item != f"$${var}":  # an identity $map would still visit every item
            items = _map(items, var, item)
    out: dict[str, Any] = {"items": items, "rc": _size("$$R")}
    if window.after is not None:
        out["le"] = _size(_filter("$$M", "x", {"$lte": ["$$x.seq", window.after]}))
    if window.before is not None:
        out["lt"] = _size(_filter("$$M", "x", {"$lt": ["$$x.seq", window.before]}))
    return {"$let": {"vars": {"M": matched}, "in": {"$let": {"vars": {"R": ranged}, "in": out}}}}


def message_item(fields: frozenset[str] | None) -> Any:
    return _pick("m", fields, MESSAGE_FIELDS)


def role_match(roles: tuple[str, ...] | None) -> Any | None:
    return None if roles is None else {"$in": ["$$x.role", literal(roles)]}


def status_match(statuses: tuple[str, ...] | None) -> Any | None:
    return None if statuses is None else {"$in": ["$$x.status", literal(statuses)]}


def cited_chunks_expr(items_var: str, chunk_specs: tuple[ChunkSpec, ...]) -> dict[str, Any]:
    """For the assistant messages among ``$$items_var``, their runs in this document, each
    as ``{id, c<k>: chunks}`` for every chunk filter."""
    assistants = _filter(f"$${items_var}", "it", {"$eq": ["$$it.role", "assistant"]})
    cited = _filter(
        {"$ifNull": ["$runs", []]}, "r", {"$in": ["$$r.id", "$$ids"]}
    )  # the ids are bound once: inside $filter's cond they would be evaluated per run
    item = {"id": "$$r.id"} | {f"c{k}": chunk_expr("r", cs) for k, cs in enumerate(chunk_specs)}
    return {
        "$let": {
            "vars": {"ids": _map(assistants, "it", "$$it.run_id")},
            "in": _map(cited, "r", item),
        }
    }


def runs_by_id_expr(run_ids: list[str], item: Any) -> dict[str, Any]:
    """The runs of this document among ``run_ids``, each as ``item`` (bound to ``$$r``)."""
    found = _filter({"$ifNull": ["$runs", []]}, "r", {"$in": ["$$r.id", literal(run_ids)]})
    return _map(found, "r", item)


def messages_by_seq_expr(seqs: list[int], fields: frozenset[str] | None) -> dict[str, Any]:
    """The messages of this document among ``seqs``."""
    found = _filter({"$ifNull": ["$messages", []]}, "m", {"$in": ["$$m.seq", literal(seqs)]})
    item = message_item(fields)
    return found if item == "$$m" else _map(found, "m", item)


__all__ = [
    "API_KEYS",
    "API_KEY_INDEXES",
    "DEFAULT_BOUNDS",
    "LAYOUT_VERSION",
    "MAX_MESSAGE_BYTES",
    "MAX_WRITE_BYTES",
    "META",
    "PAGES",
    "PAGE_INDEXES",
    "SESSIONS",
    "SESSION_INDEXES",
    "SHARD_KEYS",
    "Bounds",
    "add_counts",
    "chunk_expr",
    "cited_chunks_expr",
    "counts_of",
    "field_of",
    "head_counts",
    "head_projection",
    "literal",
    "matching",
    "message_item",
    "messages_by_seq_expr",
    "metadata_term",
    "metadata_terms",
    "role_match",
    "run_item_expr",
    "runs_by_id_expr",
    "segment_expr",
    "session_record",
    "status_match",
    "with_texts",
    "zero_counts",
]
