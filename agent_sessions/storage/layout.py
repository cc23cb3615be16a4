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


@dataclass(frozen=True, slots=True)
class SessionRead:
    """Everything one request reads from one session, answered by a single aggregate.

    ``messages``: windows of messages, each with the chunk filters to apply to the runs
    of its assistant messages. ``runs``: windows of runs, each with (at most one) chunk
    filter for every run in it. ``run_lookups``: runs by id, with their fields and
    optional chunk filter.
    """

    fields: frozenset[str]
    messages: tuple[tuple[MessageSpec, tuple[ChunkSpec, ...]], ...] = ()
    runs: tuple[RunSpec, ...] = ()
    run_lookups: tuple[tuple[str, RunSpec], ...] = ()


@dataclass(slots=True)
class SessionView:
    """What a ``SessionRead`` found: the session's fields and each window or lookup, in
    the read's order; ``chunks`` by (run id, chunk filter) for every run the windows or
    lookups brought chunks for."""

    doc: dict[str, Any]
    message_pages: list[Page]
    run_pages: list[Page]
    runs: list[dict[str, Any] | None]
    chunks: dict[tuple[str, ChunkSpec], list[dict[str, Any]]]


@dataclass(slots=True)
class Page:
    """A window of an embedded list: ``items`` are ``(position, item)`` pairs."""

    items: list[tuple[int, dict[str, Any]]]
    total: int
    has_next: bool
    has_previous: bool


# --- projection expressions ------------------------------------------------------------


def literal(value: Any) -> dict[str, Any]:
    """A client's value as a constant in an expression: inside one, a string such as
    ``"$$r.id"`` would otherwise be read as a path or a variable."""
    return {"$literal": list(value) if isinstance(value, tuple) else value}


def _pick(var: str, fields: frozenset[str] | None, every: frozenset[str]) -> Any:
    """``$$var`` reduced to ``fields``; as it is when they cover ``every`` stored field,
    since listing them all costs a per-field evaluation on the server for no bytes saved."""
    if fields is None or fields >= every:
        return f"$${var}"
    return {f: f"$${var}.{f}" for f in sorted(fields)}


def chunk_expr(run_var: str, spec: ChunkSpec) -> dict[str, Any]:
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
        source = {"$filter": {"input": source, "as": "c", "cond": {"$and": conds}}}
    picked = _pick("c", spec.fields, CHUNK_FIELDS)
    if picked == "$$c":
        return source
    return {"$map": {"input": source, "as": "c", "in": picked}}


def run_item_expr(var: str, spec: RunSpec) -> Any:
    """One run reduced to ``spec.fields``; its chunks filtered and reduced by ``spec.chunks``."""
    fields = RUN_FIELDS if spec.fields is None else spec.fields
    if "retrieved_context" in fields and spec.chunks == ChunkSpec() and fields >= RUN_FIELDS:
        return f"$${var}"
    out = {f: f"$${var}.{f}" for f in sorted(fields - {"retrieved_context"})}
    if "retrieved_context" in fields:
        out["retrieved_context"] = chunk_expr(var, spec.chunks)
    return out


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
        sliced: Any = {"$slice": [src, "$$lo2", {"$max": [size, 1]}]}
        if item != f"$${var}":  # an identity $map would still visit every item
            sliced = {"$map": {"input": sliced, "as": var, "in": item}}
        items: Any = [] if empty else {"$cond": [{"$gt": [size, 0]}, sliced, []]}
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
    cond = {"$in": ["$$x.v.role", literal(spec.roles)]} if spec.roles is not None else None
    return window_expr("messages", spec.window, cond, _pick("m", spec.fields, MESSAGE_FIELDS), "m")


def _assistant_run_ids(spec: MessageSpec) -> dict[str, Any]:
    """The run ids of the assistant messages in the window bound to ``$$p``."""
    v = "$$it" if spec.roles is None else "$$it.v"
    assistants = {
        "$filter": {"input": "$$p.items", "as": "it", "cond": {"$eq": [f"{v}.role", "assistant"]}}
    }
    return {"$map": {"input": assistants, "as": "it", "in": f"{v}.run_id"}}


SMALL_WINDOW = 200


def _window_size(window: Window) -> int:
    sizes = [n for n in (window.first, window.last) if n is not None]
    return min(sizes) if sizes else 1 << 30


def session_read_projection(read: SessionRead) -> dict[str, Any]:
    """The ``$project`` stage answering ``read``: fields as they are, windows as ``m<n>``
    (``{p: page, c: [{id, c<k>: chunks}]}``) and ``r<n>``, lookups as ``x<n>`` (a list of
    zero or one run)."""
    proj: dict[str, Any] = {f: 1 for f in read.fields}
    for n, (spec, chunk_specs) in enumerate(read.messages):
        if not chunk_specs:
            proj[f"m{n}"] = {"p": message_page_expr(spec)}
            continue
        item = {"id": "$$r.id"} | {f"c{k}": chunk_expr("r", cs) for k, cs in enumerate(chunk_specs)}
        if _window_size(spec.window) > SMALL_WINDOW:
            # A large window cites most runs: map them all rather than match each run
            # against the window's run ids, which costs runs × ids comparisons.
            with_chunks: Any = {
                "p": "$$p",
                "c": {"$map": {"input": {"$ifNull": ["$runs", []]}, "as": "r", "in": item}},
            }
        else:
            # The run ids are bound once: an expression inside $filter's cond would be
            # evaluated again for every run.
            cited = {
                "$filter": {
                    "input": {"$ifNull": ["$runs", []]},
                    "as": "r",
                    "cond": {"$in": ["$$r.id", "$$ids"]},
                }
            }
            with_chunks = {
                "$let": {
                    "vars": {"ids": _assistant_run_ids(spec)},
                    "in": {"p": "$$p", "c": {"$map": {"input": cited, "as": "r", "in": item}}},
                }
            }
        proj[f"m{n}"] = {"$let": {"vars": {"p": message_page_expr(spec)}, "in": with_chunks}}
    for n, spec in enumerate(read.runs):
        proj[f"r{n}"] = run_page_expr(spec)
    for n, (run_id, spec) in enumerate(read.run_lookups):
        found = {
            "$filter": {
                "input": {"$ifNull": ["$runs", []]},
                "as": "r",
                "cond": {"$eq": ["$$r.id", literal(run_id)]},
            }
        }
        proj[f"x{n}"] = {"$map": {"input": found, "as": "r", "in": run_item_expr("r", spec)}}
    return proj


def run_messages_expr(run_ids: list[str], fields: frozenset[str] | None) -> dict[str, Any]:
    """Every message that one of ``run_ids`` added, with its position."""
    cond = {"$in": ["$$x.v.run_id", literal(run_ids)]}
    return window_expr("messages", Window(), cond, _pick("m", fields, MESSAGE_FIELDS), "m")


def run_page_expr(spec: RunSpec) -> dict[str, Any]:
    cond = {"$in": ["$$x.v.status", literal(spec.statuses)]} if spec.statuses is not None else None
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
