"""The session document: its field names, indexes, and the read specs that project it.

One document per session (collection ``sessions``)::

    {_id, user_id, agent_id, title, metadata, created_at, updated_at,
     message_count, run_count,
     messages: [{id, role, content, run_id, created_at, name?, tool_calls?, tool_call_id?}],
     runs: [{id, agent_id, status, input, content, error, reasoning, usage,
             created_at, started_at, completed_at, retrieval_diagnostics,
             retrieved_context: [{id, text, score, retrieval_score, reranker_score,
                                  source_id, source_name, knowledge_base_id, kb_name,
                                  indexing_strategy, meta, included_in_context}]}]}

Messages and runs are append-only, so an item's position in its array is stable and
serves as its cursor. Every read names the fields it needs; the pipelines below return
only those, so bytes read from the database follow the fields asked for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SESSIONS = "sessions"
API_KEYS = "api_keys"

SESSION_FIELDS = frozenset(
    {
        "user_id",
        "agent_id",
        "title",
        "metadata",
        "created_at",
        "updated_at",
        "message_count",
        "run_count",
    }
)
MESSAGE_FIELDS = frozenset(
    {"id", "role", "content", "run_id", "created_at", "name", "tool_calls", "tool_call_id"}
)
RUN_FIELDS = frozenset(
    {
        "id",
        "agent_id",
        "status",
        "input",
        "content",
        "error",
        "reasoning",
        "usage",
        "created_at",
        "started_at",
        "completed_at",
        "retrieval_diagnostics",
        "retrieved_context",
    }
)
CHUNK_FIELDS = frozenset(
    {
        "id",
        "text",
        "score",
        "retrieval_score",
        "reranker_score",
        "source_id",
        "source_name",
        "knowledge_base_id",
        "kb_name",
        "indexing_strategy",
        "meta",
        "included_in_context",
    }
)

# (keys, options) for create_index; the list reads walk these newest-first.
SESSION_INDEXES: list[tuple[list[tuple[str, int]], dict[str, Any]]] = [
    ([("user_id", 1), ("updated_at", -1), ("_id", 1)], {"name": "user_updated"}),
    ([("agent_id", 1), ("updated_at", -1), ("_id", 1)], {"name": "agent_updated"}),
    ([("updated_at", -1), ("_id", 1)], {"name": "updated"}),
]
API_KEY_INDEXES: list[tuple[list[tuple[str, int]], dict[str, Any]]] = [
    ([("hash", 1)], {"name": "hash", "unique": True}),
]


@dataclass(frozen=True, slots=True)
class Window:
    """A Relay-style window over positions: ``after``/``before`` are exclusive positions."""

    first: int | None = None
    after: int | None = None
    last: int | None = None
    before: int | None = None


@dataclass(frozen=True, slots=True)
class ChunkSpec:
    """Which chunks of a run, and which of their fields (``None``: all)."""

    fields: frozenset[str] | None = None
    included_only: bool = False
    min_score: float | None = None


@dataclass(frozen=True, slots=True)
class MessageSpec:
    window: Window = Window()
    roles: tuple[str, ...] | None = None
    fields: frozenset[str] | None = None


@dataclass(frozen=True, slots=True)
class RunSpec:
    window: Window = Window()
    statuses: tuple[str, ...] | None = None
    fields: frozenset[str] | None = None  # "retrieved_context" among them brings ``chunks``
    chunks: ChunkSpec = ChunkSpec()


@dataclass(slots=True)
class Page:
    """A window of an embedded list: ``items`` are ``(position, item)`` pairs."""

    items: list[tuple[int, dict[str, Any]]]
    total: int
    has_next: bool
    has_previous: bool


# --- projection expressions ------------------------------------------------------------


def _pick(var: str, fields: frozenset[str] | None, extra: dict[str, Any] | None = None) -> Any:
    """``$$var`` reduced to ``fields`` (all of it when ``fields`` is None)."""
    if fields is None and not extra:
        return f"$${var}"
    out: dict[str, Any] = {f: f"$${var}.{f}" for f in sorted(fields or ())}
    if extra:
        out.update(extra)
    return out


def chunk_expr(run_var: str, spec: ChunkSpec) -> dict[str, Any]:
    """The chunks of ``$$run_var`` that ``spec`` selects, reduced to its fields."""
    conds: list[Any] = []
    if spec.included_only:
        conds.append({"$eq": ["$$c.included_in_context", True]})
    if spec.min_score is not None:
        # A chunk without a score does not pass a score threshold.
        conds.append({"$ne": [{"$ifNull": ["$$c.score", None]}, None]})
        conds.append({"$gte": ["$$c.score", spec.min_score]})
    source: Any = {"$ifNull": [f"$${run_var}.retrieved_context", []]}
    if conds:
        source = {"$filter": {"input": source, "as": "c", "cond": {"$and": conds}}}
    if spec.fields is None:
        return source
    return {"$map": {"input": source, "as": "c", "in": _pick("c", spec.fields)}}


def run_item_expr(var: str, spec: RunSpec) -> Any:
    """One run reduced to ``spec.fields``; its chunks filtered and reduced by ``spec.chunks``."""
    fields = spec.fields
    wants_chunks = fields is None or "retrieved_context" in fields
    if fields is None and spec.chunks == ChunkSpec():
        return f"$${var}"
    base = (fields or RUN_FIELDS) - {"retrieved_context"}
    extra = {"retrieved_context": chunk_expr(var, spec.chunks)} if wants_chunks else None
    return _pick(var, frozenset(base), extra)


def window_expr(
    array: str, window: Window, cond: Any | None, item: Any, var: str
) -> dict[str, Any]:
    """An expression giving a window of ``$array``: ``{items, count, lp}`` plus either
    ``start`` (unfiltered: items are contiguous from there) or ``fp`` (filtered: items are
    ``{i, v}`` pairs).

    ``cond`` (over ``$$x.v``) filters the list first; ``count`` is the filtered size,
    ``fp``/``lp`` the first and last filtered positions, used for hasPrevious/hasNext.
    ``item`` projects one element bound to ``$$var``.
    """
    src = {"$ifNull": [f"${array}", []]}
    lo, hi = (window.after + 1 if window.after is not None else 0), window.before
    empty = window.first == 0 or window.last == 0
    if cond is None:
        # Fast path: positions are contiguous, so the window is one $slice from ``start``.
        lo_e: Any = {"$min": [lo, "$$n"]}
        hi_e: Any = {"$max": [{"$min": [hi, "$$n"]} if hi is not None else "$$n", lo_e]}
        hi2 = {"$min": [hi_e, {"$add": [lo_e, window.first]}]} if window.first is not None else hi_e
        lo2 = (
            {"$max": [lo_e, {"$subtract": [hi2, window.last]}]} if window.last is not None else lo_e
        )
        size = {"$subtract": ["$$hi2", "$$lo2"]}
        items: Any = (
            []
            if empty
            else {
                "$cond": [
                    {"$gt": [size, 0]},
                    {
                        "$map": {
                            "input": {"$slice": [src, "$$lo2", {"$max": [size, 1]}]},
                            "as": var,
                            "in": item,
                        }
                    },
                    [],
                ]
            }
        )
        last_pos = {"$cond": [{"$gt": ["$$n", 0]}, {"$subtract": ["$$n", 1]}, None]}
        return {
            "$let": {
                "vars": {"n": {"$size": src}},
                "in": {
                    "$let": {
                        "vars": {"lo2": lo2, "hi2": hi2},
                        "in": {
                            "items": items,
                            "start": "$$lo2",
                            "count": "$$n",
                            "lp": last_pos,
                            "rc": {"$subtract": [hi_e, lo_e]},
                        },
                    }
                },
            }
        }

    indexed = {
        "$map": {
            "input": {"$range": [0, {"$size": src}]},
            "as": "i",
            "in": {"i": "$$i", "v": {"$arrayElemAt": [src, "$$i"]}},
        }
    }
    bounds = [{"$gte": ["$$x.i", lo]}]
    if hi is not None:
        bounds.append({"$lt": ["$$x.i", hi]})
    in_range: Any = {"$filter": {"input": "$$f", "as": "x", "cond": {"$and": bounds}}}
    ranged: Any = "$$r"
    if empty:
        ranged = []
    else:
        if window.first is not None:
            ranged = {"$slice": [ranged, window.first]}
        if window.last is not None:
            ranged = {"$slice": [ranged, -window.last]}
        ranged = {
            "$map": {
                "input": ranged,
                "as": "x",
                "in": {"i": "$$x.i", "v": {"$let": {"vars": {var: "$$x.v"}, "in": item}}},
            }
        }
    return {
        "$let": {
            "vars": {"f": {"$filter": {"input": indexed, "as": "x", "cond": cond}}},
            "in": {
                "$let": {
                    "vars": {"r": in_range},
                    "in": {
                        "items": ranged,
                        "rc": {"$size": "$$r"},
                        "count": {"$size": "$$f"},
                        "fp": {
                            "$let": {"vars": {"e": {"$arrayElemAt": ["$$f", 0]}}, "in": "$$e.i"}
                        },
                        "lp": {
                            "$let": {"vars": {"e": {"$arrayElemAt": ["$$f", -1]}}, "in": "$$e.i"}
                        },
                    },
                }
            },
        }
    }


def message_page_expr(spec: MessageSpec) -> dict[str, Any]:
    cond = {"$in": ["$$x.v.role", list(spec.roles)]} if spec.roles is not None else None
    return window_expr("messages", spec.window, cond, _pick("m", spec.fields), "m")


def run_messages_expr(run_ids: list[str], fields: frozenset[str] | None) -> dict[str, Any]:
    """Every message that one of ``run_ids`` added, with its position."""
    cond = {"$in": ["$$x.v.run_id", run_ids]}
    return window_expr("messages", Window(), cond, _pick("m", fields), "m")


def run_page_expr(spec: RunSpec) -> dict[str, Any]:
    cond = {"$in": ["$$x.v.status", list(spec.statuses)]} if spec.statuses is not None else None
    return window_expr("runs", spec.window, cond, run_item_expr("r", spec), "r")


def to_page(raw: dict[str, Any] | None, window: Window) -> Page:
    """Turn a window expression's result into a ``Page`` with honest hasNext/hasPrevious."""
    if not raw:
        return Page([], 0, False, False)
    if "start" in raw:  # contiguous slice: positions follow from its start
        start = raw["start"]
        items = [(start + k, v) for k, v in enumerate(raw.get("items") or ())]
        fp = 0 if raw.get("count") else None
    else:
        items = [(x["i"], x["v"]) for x in raw.get("items") or ()]
        fp = raw.get("fp")
    lp = raw.get("lp")
    if items:
        has_next = lp is not None and items[-1][0] < lp
        has_previous = fp is not None and items[0][0] > fp
    else:
        # An empty window: "first: 0" still has a next page when its range is not empty.
        in_range = raw.get("rc") or 0
        has_next = (window.first is not None and in_range > window.first) or (
            window.before is not None and lp is not None and lp >= window.before
        )
        has_previous = (window.last is not None and in_range > window.last) or (
            window.after is not None and fp is not None and fp <= window.after
        )
    return Page(items, raw.get("count") or 0, has_next, has_previous)


__all__ = [
    "API_KEYS",
    "API_KEY_INDEXES",
    "CHUNK_FIELDS",
    "MESSAGE_FIELDS",
    "RUN_FIELDS",
    "SESSIONS",
    "SESSION_FIELDS",
    "SESSION_INDEXES",
    "ChunkSpec",
    "MessageSpec",
    "Page",
    "RunSpec",
    "Window",
    "chunk_expr",
    "message_page_expr",
    "run_item_expr",
    "run_messages_expr",
    "run_page_expr",
    "to_page",
    "window_expr",
]
