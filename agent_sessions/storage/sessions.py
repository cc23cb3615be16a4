"""Session operations in domain words. The only code that reads or writes session documents.

Every operation takes ``owner``: a user id that scopes it (the filter carries
``user_id``, so another user's session is simply not found), or ``None`` for an
administrator acting on any session.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DocumentTooLarge, DuplicateKeyError, OperationFailure, WriteError

from agent_sessions.errors import NotFound, SessionTooLarge

from .layout import (
    ChunkSpec,
    MessageSpec,
    Page,
    RunSpec,
    SessionRead,
    SessionView,
    Window,
    chunk_expr,
    literal,
    message_page_expr,
    run_item_expr,
    run_messages_expr,
    run_page_expr,
    session_read_projection,
    to_page,
)

# Server error codes for a document that would outgrow the 16 MB BSON limit.
_TOO_LARGE_CODES = {10334, 17419, 17420, 13548}
_TERMINAL = {"COMPLETED", "FAILED", "CANCELLED"}


def now() -> datetime:
    """The current time at BSON's millisecond precision, so cursors round-trip exactly."""
    t = datetime.now(UTC)
    return t.replace(microsecond=t.microsecond // 1000 * 1000)


def new_id() -> str:
    return str(uuid.uuid4())


@dataclass(frozen=True, slots=True)
class SessionFilter:
    user_id: str | None = None
    agent_id: str | None = None
    updated_after: datetime | None = None
    updated_before: datetime | None = None


@dataclass(slots=True)
class SessionSlice:
    """One keyset page of sessions, newest ``updated_at`` first."""

    sessions: list[dict[str, Any]]
    has_more: bool  # more sessions beyond this page, in the direction of travel


def _scope(owner: str | None, **filt: Any) -> dict[str, Any]:
    if owner is not None:
        filt["user_id"] = owner
    return filt


def _projection(fields: Iterable[str] | None) -> dict[str, int] | None:
    if fields is None:
        return {"messages": 0, "runs": 0}
    return {f: 1 for f in fields} | {"_id": 1}


def _too_large(exc: Exception) -> bool:
    if isinstance(exc, DocumentTooLarge):
        return True
    return isinstance(exc, OperationFailure) and exc.code in _TOO_LARGE_CODES


class SessionStore:
    def __init__(self, collection: AsyncCollection) -> None:
        self.col = collection

    # --- reads ------------------------------------------------------------------------

    async def get_sessions(
        self, ids: Sequence[str], fields: Iterable[str] | None, owner: str | None
    ) -> dict[str, dict[str, Any]]:
        """Sessions by id (top-level fields only; ``None`` fields means all of them)."""
        cursor = self.col.find(_scope(owner, _id={"$in": list(ids)}), _projection(fields))
        return {doc["_id"]: doc async for doc in cursor}

    async def get_session(
        self, session_id: str, fields: Iterable[str] | None = None, owner: str | None = None
    ) -> dict[str, Any] | None:
        return await self.col.find_one(_scope(owner, _id=session_id), _projection(fields))

    def _list_filter(self, filt: SessionFilter, owner: str | None) -> dict[str, Any] | None:
        q: dict[str, Any] = {}
        if filt.user_id is not None:
            if owner is not None and filt.user_id != owner:
                return None  # another user's sessions: nothing to see, nothing to ask
            q["user_id"] = filt.user_id
        elif owner is not None:
            q["user_id"] = owner
        if filt.agent_id is not None:
            q["agent_id"] = filt.agent_id
        bounds = {}
        if filt.updated_after is not None:
            bounds["$gt"] = filt.updated_after
        if filt.updated_before is not None:
            bounds["$lt"] = filt.updated_before
        if bounds:
            q["updated_at"] = bounds
        return q

    async def list_sessions(
        self,
        filt: SessionFilter,
        *,
        owner: str | None,
        limit: int,
        after: tuple[datetime, str] | None = None,
        before: tuple[datetime, str] | None = None,
        backwards: bool = False,
        fields: Iterable[str] | None = None,
    ) -> SessionSlice:
        """A keyset page: newest first, ties by id; ``after``/``before`` are (updated_at, id).

        ``backwards`` takes the ``limit`` sessions closest to ``before`` (or the oldest)
        instead of those closest to ``after`` (or the newest); the result is newest first
        either way.
        """
        q = self._list_filter(filt, owner)
        if q is None:
            return SessionSlice([], False)
        keyset = []
        if after is not None:
            t, i = after
            keyset.append(
                {"$or": [{"updated_at": {"$lt": t}}, {"updated_at": t, "_id": {"$gt": i}}]}
            )
        if before is not None:
            t, i = before
            keyset.append(
                {"$or": [{"updated_at": {"$gt": t}}, {"updated_at": t, "_id": {"$lt": i}}]}
            )
        if keyset:
            q = {"$and": [q, *keyset]}
        order = [("updated_at", DESCENDING), ("_id", ASCENDING)]
        if backwards:
            order = [("updated_at", ASCENDING), ("_id", DESCENDING)]
        docs = await self.col.find(q, _projection(fields), sort=order, limit=limit + 1).to_list()
        has_more = len(docs) > limit
        docs = docs[:limit]
        if backwards:
            docs.reverse()
        return SessionSlice(docs, has_more)

    async def count_sessions(self, filt: SessionFilter, *, owner: str | None) -> int:
        q = self._list_filter(filt, owner)
        return 0 if q is None else await self.col.count_documents(q)

    async def any_sessions_beyond(
        self, filt: SessionFilter, *, owner: str | None, edge: tuple[datetime, str], newer: bool
    ) -> bool:
        """Whether a session sorts before (``newer``) or after ``edge`` in list order."""
        q = self._list_filter(filt, owner)
        if q is None:
            return False
        t, i = edge
        if newer:
            cond = {"$or": [{"updated_at": {"$gt": t}}, {"updated_at": t, "_id": {"$lt": i}}]}
        else:
            cond = {"$or": [{"updated_at": {"$lt": t}}, {"updated_at": t, "_id": {"$gt": i}}]}
        return await self.col.find_one({"$and": [q, cond]}, {"_id": 1}) is not None

    async def page_sessions(
        self,
        filt: SessionFilter,
        *,
        owner: str | None,
        page: int,
        size: int,
        fields: Iterable[str] | None = None,
    ) -> tuple[list[dict[str, Any]], int]:
        """Page ``page`` (0-based) of ``size`` sessions, newest first, and the total count."""
        q = self._list_filter(filt, owner)
        if q is None:
            return [], 0
        order = [("updated_at", DESCENDING), ("_id", ASCENDING)]
        cursor = self.col.find(q, _projection(fields), sort=order, skip=page * size, limit=size)
        return await cursor.to_list(), await self.col.count_documents(q)

    async def _project(
        self, session_ids: Iterable[str], owner: str | None, projection: dict[str, Any]
    ) -> dict[str, dict[str, Any]]:
        """One aggregate over the visible sessions among ``session_ids``, projected."""
        pipeline = [
            {"$match": _scope(owner, _id={"$in": sorted(set(session_ids))})},
            {"$project": projection},
        ]
        cursor = await self.col.aggregate(pipeline)
        return {doc["_id"]: doc async for doc in cursor}

    async def _pages(
        self, requests: Sequence[tuple[str, Any]], owner: str | None, expr: Any
    ) -> list[Page | None]:
        specs = list(dict.fromkeys(spec for _, spec in requests))
        index = {spec: f"p{n}" for n, spec in enumerate(specs)}
        docs = await self._project(
            (sid for sid, _ in requests), owner, {index[spec]: expr(spec) for spec in specs}
        )
        return [
            to_page(docs[sid].get(index[spec]), spec.window) if sid in docs else None
            for sid, spec in requests
        ]

    async def page_messages(
        self, requests: Sequence[tuple[str, MessageSpec]], owner: str | None
    ) -> list[Page | None]:
        """Windows of messages, one per (session id, spec), in one round trip.
        ``None`` for a session that does not exist or is not ``owner``'s."""
        return await self._pages(requests, owner, message_page_expr)

    async def page_runs(
        self, requests: Sequence[tuple[str, RunSpec]], owner: str | None
    ) -> list[Page | None]:
        """Windows of runs, one per (session id, spec), in one round trip."""
        return await self._pages(requests, owner, run_page_expr)

    @staticmethod
    def _runs_among(run_ids: Iterable[str]) -> dict[str, Any]:
        return {
            "$filter": {
                "input": {"$ifNull": ["$runs", []]},
                "as": "r",
                "cond": {"$in": ["$$r.id", literal(sorted(set(run_ids)))]},
            }
        }

    async def read_session(
        self, session_id: str, read: SessionRead, owner: str | None
    ) -> SessionView | None:
        """Everything ``read`` asks of one session, in one aggregate; ``None`` when the
        session does not exist or is not ``owner``'s."""
        docs = await self._project([session_id], owner, session_read_projection(read))
        doc = docs.get(session_id)
        if doc is None:
            return None
        chunks: dict[tuple[str, ChunkSpec], list[dict[str, Any]]] = {}
        message_pages = []
        for n, (spec, chunk_specs) in enumerate(read.messages):
            window = doc.pop(f"m{n}", None) or {}
            message_pages.append(to_page(window.get("p"), spec.window))
            for run in window.get("c") or ():
                for k, cs in enumerate(chunk_specs):
                    chunks[(run["id"], cs)] = run.get(f"c{k}") or []
        run_pages = []
        for n, spec in enumerate(read.runs):
            page = to_page(doc.pop(f"r{n}", None), spec.window)
            if spec.fields is None or "retrieved_context" in spec.fields:
                for _, run in page.items:
                    chunks[(run["id"], spec.chunks)] = run.get("retrieved_context") or []
            run_pages.append(page)
        runs: list[dict[str, Any] | None] = []
        for n, (_, spec) in enumerate(read.run_lookups):
            found = doc.pop(f"x{n}", None) or []
            run = found[0] if found else None
            if run is not None and (spec.fields is None or "retrieved_context" in spec.fields):
                chunks[(run["id"], spec.chunks)] = run.get("retrieved_context") or []
            runs.append(run)
        return SessionView(doc, message_pages, run_pages, runs, chunks)

    async def get_runs(
        self, requests: Sequence[tuple[str, str]], fields: frozenset[str] | None, owner: str | None
    ) -> list[dict[str, Any] | None]:
        """Runs by (session id, run id), reduced to ``fields``, in one round trip."""
        item = run_item_expr("r", RunSpec(fields=None if fields is None else fields | {"id"}))
        proj = {
            "runs": {
                "$map": {"input": self._runs_among(r for _, r in requests), "as": "r", "in": item}
            }
        }
        docs = await self._project((s for s, _ in requests), owner, proj)
        found = {
            (sid, run["id"]): run for sid, doc in docs.items() for run in doc.get("runs") or ()
        }
        return [found.get(key) for key in requests]

    async def get_run_chunks(
        self, requests: Sequence[tuple[str, str, ChunkSpec]], owner: str | None
    ) -> list[list[dict[str, Any]] | None]:
        """Retrieved context of runs by (session id, run id, filter), in one round trip.
        ``None`` where the run is not found."""
        specs = list(dict.fromkeys(spec for *_, spec in requests))
        index = {spec: f"c{n}" for n, spec in enumerate(specs)}
        item = {"id": "$$r.id"} | {index[spec]: chunk_expr("r", spec) for spec in specs}
        proj = {
            "runs": {
                "$map": {
                    "input": self._runs_among(r for _, r, _ in requests),
                    "as": "r",
                    "in": item,
                }
            }
        }
        docs = await self._project((s for s, _, _ in requests), owner, proj)
        found = {
            (sid, run["id"]): run for sid, doc in docs.items() for run in doc.get("runs") or ()
        }
        out: list[list[dict[str, Any]] | None] = []
        for sid, rid, spec in requests:
            run = found.get((sid, rid))
            out.append(None if run is None else run.get(index[spec]) or [])
        return out

    async def get_run_messages(
        self, requests: Sequence[tuple[str, str]], fields: frozenset[str] | None, owner: str | None
    ) -> list[list[tuple[int, dict[str, Any]]]]:
        """The messages each run added, with their positions, in one round trip."""
        fields = None if fields is None else fields | {"run_id"}
        expr = run_messages_expr(sorted({rid for _, rid in requests}), fields)
        docs = await self._project((s for s, _ in requests), owner, {"p": expr})
        found: dict[tuple[str, str], list[tuple[int, dict[str, Any]]]] = {}
        for sid, doc in docs.items():
            for pos, msg in to_page(doc.get("p"), Window()).items:
                found.setdefault((sid, msg.get("run_id")), []).append((pos, msg))
        return [found.get(key, []) for key in requests]

    # --- writes -----------------------------------------------------------------------

    async def create_session(
        self,
        *,
        session_id: str | None,
        user_id: str,
        agent_id: str | None = None,
        title: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Insert an empty session. An id that exists already returns that session when it
        is ``user_id``'s (a retried create) and raises ``NotFound`` when it is not."""
        t = now()
        doc = {
            "_id": session_id or new_id(),
            "user_id": user_id,
            "agent_id": agent_id,
            "title": title,
            "metadata": metadata or {},
            "created_at": t,
            "updated_at": t,
            "message_count": 0,
            "run_count": 0,
            "messages": [],
            "runs": [],
        }
        try:
            await self.col.insert_one(doc)
        except DuplicateKeyError:
            existing = await self.get_session(doc["_id"], owner=user_id)
            if existing is None:
                raise NotFound("session not found") from None
            return existing
        del doc["messages"], doc["runs"]
        return doc

    async def delete_session(self, session_id: str, owner: str | None) -> bool:
        result = await self.col.delete_one(_scope(owner, _id=session_id))
        return result.deleted_count == 1

    async def record_run(
        self,
        *,
        session_id: str,
        owner: str | None,
        new_session: dict[str, Any],
        run: dict[str, Any],
        messages: list[dict[str, Any]],
    ) -> tuple[dict[str, Any], bool]:
        """Append a run and its messages to a session in one atomic update.

        Creates the session (with ``new_session``'s fields) when the id is free. A run id
        already in the session changes nothing and returns the stored run. Returns
        ``(run, created)``. Raises ``NotFound`` when the session belongs to someone else
        (or to another user than ``owner``), ``SessionTooLarge`` when the session would
        outgrow 16 MB, in which case nothing is written.
        """
        t = run.get("created_at") or now()
        filt = _scope(owner, _id=session_id, **{"runs.id": {"$ne": run["id"]}})
        on_insert = {k: v for k, v in new_session.items() if k not in filt}
        on_insert.setdefault("created_at", t)
        update = {
            "$push": {"runs": run, "messages": {"$each": messages}},
            "$inc": {"run_count": 1, "message_count": len(messages)},
            "$max": {"updated_at": now()},
            "$setOnInsert": on_insert,
        }
        for attempt in range(3):
            try:
                await self.col.update_one(filt, update, upsert=True)
                return run, True
            except DuplicateKeyError:
                # The id is taken: by this session with this run already (a retry), or by
                # a session this caller may not write to.
                found = await self.col.find_one(
                    _scope(owner, _id=session_id), {"runs": {"$elemMatch": {"id": run["id"]}}}
                )
                if found is None:
                    raise NotFound("session not found") from None
                if found.get("runs"):
                    return found["runs"][0], False
                if attempt == 2:
                    raise
            except (WriteError, OperationFailure, DocumentTooLarge) as exc:
                if _too_large(exc):
                    raise SessionTooLarge() from exc
                raise
        raise AssertionError("unreachable")

    async def update_run(
        self,
        *,
        session_id: str,
        run_id: str,
        owner: str | None,
        changes: dict[str, Any],
        messages: Sequence[dict[str, Any]] = (),
    ) -> None:
        """Set fields of one run (status, content, error, usage, completed_at, chunks…) and
        append messages it produced, in one atomic update."""
        update: dict[str, Any] = {
            "$set": {f"runs.$.{k}": v for k, v in changes.items()},
            "$max": {"updated_at": now()},
        }
        if messages:
            update["$push"] = {"messages": {"$each": list(messages)}}
            update["$inc"] = {"message_count": len(messages)}
        try:
            result = await self.col.update_one(
                _scope(owner, _id=session_id, **{"runs.id": run_id}), update
            )
        except (WriteError, OperationFailure, DocumentTooLarge) as exc:
            if _too_large(exc):
                raise SessionTooLarge() from exc
            raise
        if result.matched_count == 0:
            raise NotFound("run not found")

    # --- live runs (issue 12) ---------------------------------------------------------
    # A RUNNING run's progress, written while it streams (at a bounded rate) and when it
    # ends. Every write is conditional on the run still being RUNNING, so a run that
    # another party ended (cancelled, reaped) is never written back to life.

    async def update_live_run(
        self,
        *,
        session_id: str,
        run_id: str,
        owner: str | None,
        changes: dict[str, Any],
        message_changes: dict[str, dict[str, Any]] | None = None,
        new_messages: Sequence[dict[str, Any]] = (),
    ) -> bool:
        """Set fields of a RUNNING run (its partial ``content``; its ``status`` and the
        rest when it ends), set fields of messages it added already (by message id), and
        append the messages it added since. False when the run is not RUNNING any more,
        or the session is gone; nothing is written then."""
        filt = _scope(
            owner, _id=session_id, runs={"$elemMatch": {"id": run_id, "status": "RUNNING"}}
        )
        run_set = {f"runs.$[r].{k}": v for k, v in changes.items()}
        filters: list[dict[str, Any]] = [{"r.id": run_id}]
        message_set: dict[str, Any] = {}
        for n, (message_id, fields) in enumerate((message_changes or {}).items()):
            message_set |= {f"messages.$[m{n}].{k}": v for k, v in fields.items()}
            filters.append({f"m{n}.id": message_id})
        try:
            if message_set and new_messages:
                # One update cannot both set inside ``messages`` and push to it.
                result = await self.col.update_one(
                    filt, {"$set": message_set}, array_filters=filters[1:]
                )
                if result.matched_count == 0:
                    return False
                message_set, filters = {}, filters[:1]
            update: dict[str, Any] = {
                "$set": run_set | message_set,
                "$max": {"updated_at": now()},
            }
            if new_messages:
                update["$push"] = {"messages": {"$each": list(new_messages)}}
                update["$inc"] = {"message_count": len(new_messages)}
            result = await self.col.update_one(filt, update, array_filters=filters)
        except (WriteError, OperationFailure, DocumentTooLarge) as exc:
            if _too_large(exc):
                raise SessionTooLarge() from exc
            raise
        return result.matched_count == 1

    async def running_runs(self, *, started_before: datetime) -> list[tuple[str, str]]:
        """(session id, run id) of every run RUNNING since before ``started_before``:
        what a server that starts looks at, for runs a stopped server left behind."""
        cursor = await self.col.aggregate(
            [
                {"$match": {"runs.status": "RUNNING"}},
                {"$project": {"runs": {"$filter": {
                    "input": "$runs", "as": "r",
                    "cond": {"$and": [{"$eq": ["$$r.status", "RUNNING"]},
                                      {"$lt": ["$$r.started_at", started_before]}]},
                }}}},
                {"$project": {"runs.id": 1}},
            ]
        )  # fmt: skip
        return [(doc["_id"], r["id"]) async for doc in cursor for r in doc["runs"]]


def run_document(
    *,
    run_id: str,
    agent_id: str | None,
    status: str,
    messages: Sequence[dict[str, Any]],
    created_at: datetime,
    completed_at: datetime | None = None,
    content: str | None = None,
    error: str | None = None,
    reasoning: dict[str, Any] | None = None,
    usage: dict[str, Any] | None = None,
    retrieval_diagnostics: dict[str, Any] | None = None,
    retrieved_context: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    """A run as stored. ``input`` is the first user message, ``content`` (unless given)
    the last assistant message's content."""
    if content is None:
        content = next(
            (m.get("content") for m in reversed(messages) if m["role"] == "assistant"), None
        )
    if completed_at is None and status in _TERMINAL:
        completed_at = now()
    return {
        "id": run_id,
        "agent_id": agent_id,
        "status": status,
        "input": next((m.get("content") for m in messages if m["role"] == "user"), None),
        "content": content,
        "error": error,
        "reasoning": reasoning,
        "usage": usage,
        "created_at": created_at,
        "started_at": created_at,
        "completed_at": completed_at,
        "retrieval_diagnostics": retrieval_diagnostics,
        "retrieved_context": list(retrieved_context),
    }


def message_document(
    *,
    role: str,
    content: str | None,
    run_id: str | None,
    created_at: datetime,
    name: str | None = None,
    tool_calls: Sequence[dict[str, Any]] | None = None,
    tool_call_id: str | None = None,
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": new_id(),
        "role": role,
        "content": content,
        "run_id": run_id,
        "created_at": created_at,
    }
    if name is not None:
        doc["name"] = name
    if tool_calls:
        doc["tool_calls"] = list(tool_calls)
    if tool_call_id is not None:
        doc["tool_call_id"] = tool_call_id
    return doc


__all__ = [
    "SessionFilter",
    "SessionSlice",
    "SessionStore",
    "message_document",
    "new_id",
    "now",
    "run_document",
]
