"""Session operations in domain words, over the layout of ``layout``.

Every operation takes ``owner`` as a required keyword: a user id that scopes it (the
filter carries ``user_id``, so another user's session is simply not found), or ``None``
for an administrator acting on any session. What comes back are records (``model``);
driver errors become ``DatabaseUnavailable`` (the database does not answer) or
``StorageFailed`` here, so nothing above storage needs to know the driver.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import apsw
import bson
from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import (
    ConnectionFailure,
    DocumentTooLarge,
    DuplicateKeyError,
    OperationFailure,
    PyMongoError,
)

from agent_sessions.errors import DatabaseUnavailable, NotFound, SessionTooLarge, TooLarge

from . import edits
from . import layout as L
from .build import build_session, default_title, readable_runs
from .layout import Bounds, Doc
from .model import (
    ROLES,
    STATUSES,
    TERMINAL,
    ChunkRecord,
    ChunkSpec,
    MessageRecord,
    MessageSpec,
    NewSession,
    Page,
    RunRecord,
    RunSpec,
    SessionFilter,
    SessionRead,
    SessionRecord,
    SessionSlice,
    SessionView,
    Window,
)
from .mongo_search import MongoTextIndex
from .paging import _Retry, move_older_turns, over
from .search import SearchIndex, snippet
from .search import terms as search_terms
from .windows import Missing, Segment, assemble, limit

log = logging.getLogger("agent_sessions.storage")

# Server error codes for a document that would outgrow the 16 MB BSON limit.
_TOO_LARGE_CODES = {10334, 17419, 17420, 13548}
_HEAD_STATS = {"bytes": 1, "entries": 1, "pages": 1, "r_next": 1, "m_next": 1, "before.r": 1,
               "user_id": 1, "agent_id": 1}  # fmt: skip
_MAX_ROUNDS = 64  # page reads one window may take: far beyond any real one


class StorageFailed(Exception):
    """The database refused an operation for a reason that is not the caller's; an
    internal error (masked for clients, logged)."""


def now() -> datetime:
    """The current time at BSON's millisecond precision, so cursors round-trip exactly."""
    t = datetime.now(UTC)
    return t.replace(microsecond=t.microsecond // 1000 * 1000)


def new_id() -> str:
    return str(uuid.uuid4())


def _translate(exc: PyMongoError) -> Exception:
    if isinstance(exc, ConnectionFailure):
        return DatabaseUnavailable()
    if _too_large(exc):
        return SessionTooLarge()
    return StorageFailed(f"{type(exc).__name__}: {exc}")


def translated(cls: type) -> type:
    """Every public coroutine (and async generator) of ``cls`` raises our errors, not the
    driver's."""
    for name, fn in list(vars(cls).items()):
        if name.startswith("_"):
            continue
        if inspect.isasyncgenfunction(fn):
            setattr(cls, name, _wrap_gen(fn))
        elif inspect.iscoroutinefunction(fn):
            setattr(cls, name, _wrap(fn))
    return cls


def _wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    async def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return await fn(*args, **kwargs)
        except PyMongoError as exc:
            raise _translate(exc) from exc

    return run


def _wrap_gen(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    async def run(*args: Any, **kwargs: Any) -> Any:
        try:
            async for item in fn(*args, **kwargs):
                yield item
        except PyMongoError as exc:
            raise _translate(exc) from exc

    return run


def _too_large(exc: Exception) -> bool:
    if isinstance(exc, DocumentTooLarge):
        return True
    return isinstance(exc, OperationFailure) and exc.code in _TOO_LARGE_CODES


def _scope(owner: str | None, **filt: Any) -> Doc:
    if owner is not None:
        filt["user_id"] = owner
    return filt


# --- what writes take -----------------------------------------------------------------


def message_document(
    *,
    role: str,
    content: str | None,
    run_id: str | None,
    created_at: datetime,
    name: str | None = None,
    tool_calls: Sequence[dict[str, Any]] | None = None,
    tool_call_id: str | None = None,
) -> Doc:
    """A new message (its ``seq`` is given when it is stored)."""
    doc: Doc = {
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


def run_document(
    *,
    run_id: str,
    agent_id: str | None,
    status: str,
    created_at: datetime,
    completed_at: datetime | None = None,
    content: str | None = None,
    error: str | None = None,
    reasoning: dict[str, Any] | None = None,
    usage: dict[str, Any] | None = None,
    retrieval_diagnostics: dict[str, Any] | None = None,
    retrieved_context: Sequence[dict[str, Any]] = (),
) -> Doc:
    """A new run. ``content`` is its final answer when it is not its last assistant
    message's (then it is stored; otherwise it is read from that message)."""
    if completed_at is None and status in TERMINAL:
        completed_at = now()
    run: Doc = {
        "id": run_id,
        "agent_id": agent_id,
        "status": status,
        "error": error,
        "reasoning": reasoning,
        "usage": usage,
        "created_at": created_at,
        "started_at": created_at,
        "completed_at": completed_at,
        "retrieval_diagnostics": retrieval_diagnostics,
        "retrieved_context": list(retrieved_context),
    }
    if content is not None:
        run["content"] = content
    return run


def _check_sizes(messages: Sequence[Doc], extra: Iterable[Doc] = ()) -> tuple[list[int], int]:
    """The BSON size of each message and of everything written; ``TooLarge`` past the
    per-message and per-write bounds."""
    sizes = []
    for n, m in enumerate(messages):
        text = m.get("content")
        # A str of n characters is at most 4n bytes: only long ones are measured.
        if (
            isinstance(text, str)
            and len(text) > L.MAX_MESSAGE_BYTES // 4
            and len(text.encode()) > L.MAX_MESSAGE_BYTES
        ):
            raise TooLarge(
                f"messages[{n}].content is {len(text.encode()) / 2**20:.1f} MiB; "
                f"a message may hold at most {L.MAX_MESSAGE_BYTES // 2**20} MiB"
            )
        sizes.append(len(bson.encode(m)))
    total = sum(sizes) + sum(len(bson.encode(x)) for x in extra)
    if total > L.MAX_WRITE_BYTES:
        raise TooLarge(
            f"one write may add at most {L.MAX_WRITE_BYTES // 2**20} MiB; this one adds "
            f"{total / 2**20:.1f} MiB"
        )
    return sizes, total


def _appended(messages: Sequence[Doc], next_seq: Any) -> Any:
    """``$messages`` with ``messages`` appended, numbered from ``next_seq`` on."""
    if not messages:
        return {"$ifNull": ["$messages", []]}
    numbered = {
        "$map": {
            "input": {"$range": [0, len(messages)]},
            "as": "i",
            "in": {
                "$mergeObjects": [
                    {"$arrayElemAt": [L.literal(list(messages)), "$$i"]},
                    {"seq": {"$add": [next_seq, "$$i"]}},
                ]
            },
        }
    }
    return {"$concatArrays": [{"$ifNull": ["$messages", []]}, numbered]}


def _refs(messages: Sequence[Doc], base: Any) -> Doc:
    """The run's references to ``messages`` (numbered from ``base``): ``mseq``, and ``in``
    / ``out`` when the batch holds a user / an assistant message."""
    out: Doc = {"mseq": {"$range": [base, {"$add": [base, len(messages)]}]}}
    first_user = next((i for i, m in enumerate(messages) if m["role"] == "user"), None)
    last_answer = next(
        (i for i in range(len(messages) - 1, -1, -1) if messages[i]["role"] == "assistant"), None
    )
    if first_user is not None:
        out["in"] = {"$add": [base, first_user]}
    if last_answer is not None:
        out["out"] = {"$add": [base, last_answer]}
    return out


def _role_counts(messages: Sequence[Doc]) -> list[int]:
    return [sum(1 for m in messages if m["role"] == role) for role in ROLES]


def _add_vector(path: str, deltas: Sequence[int]) -> Any:
    """``$path`` (a vector of counts, maybe absent) plus ``deltas``."""
    return [
        {"$add": [{"$ifNull": [{"$arrayElemAt": [f"${path}", i]}, 0]}, d]}
        for i, d in enumerate(deltas)
    ]


def _derived(run: Doc, messages: Sequence[Doc]) -> Doc:
    """``input`` and ``content`` of a run being written, from its messages."""
    user = next((m for m in messages if m["role"] == "user"), None)
    answer = next((m for m in reversed(messages) if m["role"] == "assistant"), None)
    content = run.get("content")
    return {
        "input": user.get("content") if user else None,
        "content": content if content is not None else (answer.get("content") if answer else None),
    }


def _stored_run(run: Doc, messages: Sequence[Doc]) -> Doc:
    """The run as it is stored: an answer equal to its last assistant message is not kept."""
    run = dict(run)
    answer = next((m for m in reversed(messages) if m["role"] == "assistant"), None)
    if answer is not None and run.get("content") == answer.get("content"):
        run.pop("content", None)
    return run


# --- reads across head and pages --------------------------------------------------------


@dataclass(eq=False)
class _Job:
    """One window of one session, resolved over its head and as many pages as it needs."""

    session_id: str
    kind: str  # "m" or "r"
    window: Window
    values: tuple[str, ...] | None  # roles or statuses
    item: Any  # the projection of one item
    texts: bool  # run items that read input/content
    chunk_specs: tuple[ChunkSpec, ...] = ()  # message windows: their runs' chunks
    segments: list[Segment] = field(default_factory=list)
    read: set[int] = field(default_factory=set)
    missing: Missing | None = None
    page: Page | None = None
    cited: dict[tuple[str, ChunkSpec], list[ChunkRecord]] = field(default_factory=dict)

    def expr(self) -> Any:
        match = L.role_match(self.values) if self.kind == "m" else L.status_match(self.values)
        array = "messages" if self.kind == "m" else "runs"
        var = "m" if self.kind == "m" else "r"
        out: Any = L.segment_expr(array, self.window, match, self.item, var, limit(self.window))
        if self.chunk_specs:
            out = {
                "$let": {
                    "vars": {"w": out},
                    "in": {
                        "items": "$$w.items",
                        "rc": "$$w.rc",
                        "le": "$$w.le",
                        "lt": "$$w.lt",
                        "c": L.cited_chunks_expr("w.items", self.chunk_specs),
                    },
                }
            }
        return L.with_texts(out) if self.texts else out

    def add(self, raw: Doc | None, lo: int, hi: int | None, before: Doc, own: Doc) -> None:
        part = raw or {}
        items = [(x["seq"], x) for x in part.get("items") or ()]
        window = self.window
        self.segments.append(
            Segment(
                lo=lo,
                hi=hi,
                before=L.matching(before, self.kind, self.values),
                own=L.matching(own, self.kind, self.values),
                items=items,
                in_range=part.get("rc") or 0,
                le_after=(part.get("le") or 0) if window.after is not None else 0,
                lt_before=(part.get("lt") or 0)
                if window.before is not None
                else L.matching(own, self.kind, self.values),
            )
        )
        for run in part.get("c") or ():
            for k, cs in enumerate(self.chunk_specs):
                self.cited[(run["id"], cs)] = run.get(f"c{k}") or []

    def settle(self, total: int, paged: bool) -> None:
        got = assemble(self.window, total, self.segments)
        if isinstance(got, Missing):
            if not paged:
                raise AssertionError(f"window {self.window} needs pages of an unpaged session")
            self.missing = got
        else:
            self.missing, self.page = None, got


def _exprs(by_session: dict[str, list[_Job]], session_id: str, key: str) -> Doc:
    """The expressions of a session's jobs of the kind ``key`` finds pages for."""
    kind = "m" if key == "m_lo" else "r"
    return {f"_w{id(job)}": job.expr() for job in by_session[session_id] if job.kind == kind}


def _head_segment_bounds(head: Doc, kind: str) -> tuple[int, Doc, Doc]:
    totals = L.head_counts(head)
    before = head.get("before") or L.zero_counts()
    lo = (head.get("m_cut") if kind == "m" else head.get("r_cut")) or 0
    return lo, before, L.add_counts(totals, before, -1)


@translated
class SessionStore:
    def __init__(
        self,
        db: AsyncDatabase,
        *,
        bounds: Bounds = L.DEFAULT_BOUNDS,
        moves: bool = True,
        retention: timedelta | None = None,
    ) -> None:
        self.heads: AsyncCollection = db[L.SESSIONS]
        self.pages: AsyncCollection = db[L.PAGES]
        self.client = db.client
        self.bounds = bounds
        # How long new sessions are kept (``retention_days``): their ``expires_at``.
        self.retention = retention
        # Whether heads move their older turns into pages: it takes transactions.
        self.moves = moves
        # Sessions known to have runs in pages, with their page count: their appends with
        # a client's run id go straight to the check across pages. A hint only, bounded;
        # a stale one costs a command.
        self._paged: OrderedDict[str, int] = OrderedDict()
        # The full-text index kept in step with the writes (``storage.search``), if any.
        self.search: SearchIndex | MongoTextIndex | None = None

    # --- sessions -------------------------------------------------------------------------

    async def get_sessions(
        self, ids: Sequence[str], fields: frozenset[str] | None, *, owner: str | None
    ) -> dict[str, SessionRecord]:
        """Sessions by id (their own fields; ``None`` fields means all of them)."""
        cursor = self.heads.find(
            _live(_scope(owner, _id={"$in": list(ids)})), L.head_projection(fields)
        )
        return {doc["_id"]: L.session_record(doc) async for doc in cursor}  # type: ignore[misc]

    async def get_session(
        self, session_id: str, fields: frozenset[str] | None = None, *, owner: str | None
    ) -> SessionRecord | None:
        doc = await self.heads.find_one(
            _live(_scope(owner, _id=session_id)), L.head_projection(fields)
        )
        return None if doc is None else L.session_record(doc)  # type: ignore[return-value]

    def _list_filter(self, filt: SessionFilter, owner: str | None) -> Doc | None:
        q: Doc = {}
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
        q["expires_at"] = _not_expired()
        for n, (key, values) in enumerate(filt.metadata):
            terms = [t for t in (L.metadata_term(key, v) for v in values) if t is not None]
            if n == 0:  # the first key is looked up in the metadata index
                q["mkv"] = terms[0] if len(terms) == 1 else {"$in": terms}
            else:  # the others are checked on the sessions it finds
                q[f"metadata.{key}"] = values[0] if len(values) == 1 else {"$in": list(values)}
        return q

    @staticmethod
    def _beyond(edge: tuple[datetime, str], newer: bool) -> Doc:
        """Sessions before (``newer``) or after ``edge`` in list order (newest first)."""
        t, i = edge
        if newer:
            return {"$or": [{"updated_at": {"$gt": t}}, {"updated_at": t, "_id": {"$lt": i}}]}
        return {"$or": [{"updated_at": {"$lt": t}}, {"updated_at": t, "_id": {"$gt": i}}]}

    async def list_sessions(
        self,
        filt: SessionFilter,
        *,
        owner: str | None,
        limit: int,
        after: tuple[datetime, str] | None = None,
        before: tuple[datetime, str] | None = None,
        backwards: bool = False,
        fields: frozenset[str] | None = None,
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
            keyset.append(self._beyond(after, newer=False))
        if before is not None:
            keyset.append(self._beyond(before, newer=True))
        order = [("updated_at", DESCENDING), ("_id", ASCENDING)]
        if backwards:
            order = [("updated_at", ASCENDING), ("_id", DESCENDING)]
        if keyset:
            q = {"$and": [q, *keyset]}
        cursor = self.heads.find(q, L.head_projection(fields), sort=order, limit=limit + 1)
        docs = [L.session_record(d) for d in await cursor.to_list()]
        has_more = len(docs) > limit
        docs = docs[:limit]
        if backwards:
            docs.reverse()
        return SessionSlice(docs, has_more)  # type: ignore[arg-type]

    async def count_sessions(self, filt: SessionFilter, *, owner: str | None) -> int:
        q = self._list_filter(filt, owner)
        return 0 if q is None else await self.heads.count_documents(q)

    async def any_sessions_beyond(
        self, filt: SessionFilter, *, owner: str | None, edge: tuple[datetime, str], newer: bool
    ) -> bool:
        """Whether a session sorts before (``newer``) or after ``edge`` in list order."""
        q = self._list_filter(filt, owner)
        if q is None:
            return False
        found = await self.heads.find_one({"$and": [q, self._beyond(edge, newer)]}, {"_id": 1})
        return found is not None

    async def page_sessions(
        self,
        filt: SessionFilter,
        *,
        owner: str | None,
        page: int,
        size: int,
        fields: frozenset[str] | None = None,
    ) -> tuple[list[SessionRecord], int]:
        """Page ``page`` (0-based) of ``size`` sessions, newest first, and the total count."""
        q = self._list_filter(filt, owner)
        if q is None:
            return [], 0
        order = [("updated_at", DESCENDING), ("_id", ASCENDING)]
        cursor = self.heads.find(
            q, L.head_projection(fields), sort=order, skip=page * size, limit=size
        )
        docs = [L.session_record(d) for d in await cursor.to_list()]
        return docs, await self.heads.count_documents(q)  # type: ignore[return-value]

    # --- windows, runs, chunks ------------------------------------------------------------

    async def _resolve(self, jobs: list[_Job], heads: dict[str, Doc]) -> None:
        """Finish every job from its head (already read into ``heads``) and the pages it
        needs: one more command for all the jobs' pages, rarely a few."""
        for job in jobs:
            head = heads[job.session_id]
            lo, before, own = _head_segment_bounds(head, job.kind)
            job.add(head.get(f"_w{id(job)}"), lo, None, before, own)
            job.settle(L.matching(L.head_counts(head), job.kind, job.values), _paged(head))
        for _ in range(_MAX_ROUNDS):
            waiting = [j for j in jobs if j.missing is not None]
            if not waiting:
                return
            span = self.bounds.page_seqs
            clauses = []
            for job in waiting:
                assert job.missing is not None
                head = heads[job.session_id]
                cut = (head.get("m_cut") if job.kind == "m" else head.get("r_cut")) or 0
                key = "m_lo" if job.kind == "m" else "r_lo"
                hi = min(job.missing.hi, cut)
                clauses.append(
                    {
                        "session_id": job.session_id,
                        key: {"$gt": job.missing.lo - span, "$lt": max(hi, job.missing.lo + 1)},
                    }
                )
            by_session: dict[str, list[_Job]] = {}
            for job in waiting:
                by_session.setdefault(job.session_id, []).append(job)
            below = {sid: heads[sid].get("pages") or 0 for sid in by_session}
            pages = await self._page_docs(clauses, functools.partial(_exprs, by_session), below)
            had = {id(job): len(job.segments) for job in waiting}
            for page in pages:
                for job in by_session[page["session_id"]]:
                    # A page found for the other kind does not carry this job's window.
                    if page["n"] in job.read or f"_w{id(job)}" not in page:
                        continue
                    job.read.add(page["n"])
                    lo, hi = (
                        (page["m_lo"], page["m_hi"])
                        if job.kind == "m"
                        else (page["r_lo"], page["r_hi"])
                    )
                    job.add(page.get(f"_w{id(job)}"), lo, hi, page["before"], page["own"])
            for job in waiting:
                head = heads[job.session_id]
                total = L.matching(L.head_counts(head), job.kind, job.values)
                job.settle(total, True)
                if job.missing is not None and len(job.segments) == had[id(job)]:
                    raise AssertionError(f"pages of session {job.session_id} not found")
        raise AssertionError("a window took more page reads than any session could need")

    async def _page_docs(
        self,
        clauses: list[Doc],
        project: Callable[[str, str], Doc],
        below: dict[str, int],
    ) -> list[Doc]:
        """The pages matching any of ``clauses`` (each one session's seq range or run
        ids), each projected by ``project(session id, key of the clause)`` plus its place
        and counts, in order; only pages numbered below ``below[session]``, the head's
        page count (a page an interrupted import left behind is never read). A page two
        commands find carries what both projected: each computes only its own kind's
        expressions, so a page is not projected and sent twice over.

        Owners are not filtered here: a page is only ever asked for after its head was
        read with the owner's filter, and session ids are unique across users. Each
        session's clauses are merged into one range per kind and sent as one command
        each, at once: a ``$or`` or an extra field would keep SecantusDB's planner from
        the index (it would read every page of the collection)."""
        merged: dict[tuple[str, str], Doc] = {}
        for clause in clauses:
            sid = clause["session_id"]
            key = next(k for k in clause if k != "session_id")
            seen = merged.get((sid, key))
            if seen is None:
                merged[(sid, key)] = dict(clause)
            elif key == "runs.id":
                seen[key] = {"$in": sorted(set(seen[key]["$in"]) | set(clause[key]["$in"]))}
            else:
                lo = min(seen[key]["$gt"], clause[key]["$gt"])
                hi = max(
                    seen[key].get("$lt", seen[key].get("$lte")),
                    clause[key].get("$lt", clause[key].get("$lte")),
                )
                seen[key] = {"$gt": lo, "$lte": hi}
        base = {"session_id": 1, "n": 1, "m_lo": 1, "m_hi": 1, "r_lo": 1, "r_hi": 1,
                "before": 1, "own": 1}  # fmt: skip

        async def one(sid: str, key: str, match: Doc) -> list[Doc]:
            pipeline = [{"$match": match}, {"$project": base | project(sid, key)}]
            return await (await self.pages.aggregate(pipeline)).to_list()

        found = await asyncio.gather(*(one(*k, m) for k, m in merged.items()))
        pages: dict[tuple[str, int], Doc] = {}
        for page in (p for part in found for p in part):
            if page["n"] < below.get(page["session_id"], 0):
                pages.setdefault((page["session_id"], page["n"]), {}).update(page)
        return [pages[key] for key in sorted(pages)]

    async def _heads_projected(
        self, session_ids: Iterable[str], owner: str | None, projection: Doc
    ) -> dict[str, Doc]:
        meta = {
            "m_cut": 1,
            "r_cut": 1,
            "pages": 1,
            "before": 1,
            "message_count": 1,
            "run_count": 1,
            "n_roles": 1,
            "n_status": 1,
        }
        pipeline = [
            {"$match": _live(_scope(owner, _id={"$in": sorted(set(session_ids))}))},
            {"$project": meta | projection},
        ]
        cursor = await self.heads.aggregate(pipeline)
        return {doc["_id"]: doc async for doc in cursor}

    def _message_job(self, sid: str, spec: MessageSpec, chunks: tuple[ChunkSpec, ...] = ()) -> _Job:
        return _Job(sid, "m", spec.window, spec.roles, L.message_item(spec.fields), False, chunks)

    def _run_job(self, sid: str, spec: RunSpec) -> _Job:
        fields = None if spec.fields is None else spec.fields | {"id"}
        texts = fields is None or bool(fields & {"input", "content"})
        return _Job(
            sid, "r", spec.window, spec.statuses, L.run_item_expr("r", fields, spec.chunks), texts
        )

    async def page_messages(
        self, requests: Sequence[tuple[str, MessageSpec]], *, owner: str | None
    ) -> list[Page | None]:
        """Windows of messages, one per (session id, spec), in one or two round trips.
        ``None`` for a session that does not exist or is not ``owner``'s."""
        jobs = [self._message_job(sid, spec) for sid, spec in requests]
        return await self._windows(jobs, owner)

    async def page_runs(
        self, requests: Sequence[tuple[str, RunSpec]], *, owner: str | None
    ) -> list[Page | None]:
        """Windows of runs, one per (session id, spec), in one or two round trips."""
        jobs = [self._run_job(sid, spec) for sid, spec in requests]
        pages = await self._windows(jobs, owner)
        found = [
            (job.session_id, run)
            for job, page in zip(jobs, pages, strict=True)
            for _, run in (page.items if page else ())
        ]
        await self._finish_runs(found, owner)
        return pages

    async def _windows(self, jobs: list[_Job], owner: str | None) -> list[Page | None]:
        unique: dict[tuple[Any, ...], _Job] = {}
        for job in jobs:
            unique.setdefault(
                (job.session_id, job.kind, repr(job.window), job.values, repr(job.item), job.texts),
                job,
            )
        distinct = list(unique.values())
        heads = await self._heads_projected(
            (j.session_id for j in distinct), owner, {f"_w{id(j)}": j.expr() for j in distinct}
        )
        live = [j for j in distinct if j.session_id in heads]
        await self._resolve(live, heads)
        out = []
        for job in jobs:
            twin = unique[
                (job.session_id, job.kind, repr(job.window), job.values, repr(job.item), job.texts)
            ]
            out.append(twin.page if twin.session_id in heads else None)
        return out

    async def read_session(
        self, session_id: str, read: SessionRead, *, owner: str | None
    ) -> SessionView | None:
        """Everything ``read`` asks of one session: one command when its head holds it,
        two when the windows reach into pages; ``None`` when the session does not exist
        or is not ``owner``'s."""
        m_jobs = [self._message_job(session_id, spec, chunks) for spec, chunks in read.messages]
        r_jobs = [self._run_job(session_id, spec) for spec in read.runs]
        lookups = list(read.run_lookups)
        projection: Doc = {f: 1 for f in read.fields if f in L.SESSION_KEYS}
        for job in (*m_jobs, *r_jobs):
            projection[f"_w{id(job)}"] = job.expr()
        for n, (run_id, spec) in enumerate(lookups):
            fields = None if spec.fields is None else spec.fields | {"id"}
            projection[f"_x{n}"] = L.with_texts(
                L.runs_by_id_expr([run_id], L.run_item_expr("r", fields, spec.chunks))
            )
        heads = await self._heads_projected([session_id], owner, projection)
        head = heads.get(session_id)
        if head is None:
            return None
        await self._resolve([*m_jobs, *r_jobs], heads)
        runs: list[RunRecord | None] = []
        for n, _ in enumerate(lookups):
            found = head.get(f"_x{n}") or []
            runs.append(found[0] if found else None)
        # Lookups the head did not hold: in the pages, by their ids.
        absent = [(n, lookups[n]) for n, r in enumerate(runs) if r is None]
        if absent and (head.get("before") or {}).get("r"):
            found_runs = await self._runs_in_pages(
                session_id, owner, absent, head.get("pages") or 0
            )
            for n, found_run in found_runs.items():
                runs[n] = found_run
        chunks: dict[tuple[str, ChunkSpec], list[ChunkRecord]] = {}
        for job in m_jobs:
            chunks.update(job.cited)
        for spec, job in zip(read.runs, r_jobs, strict=True):
            if spec.fields is None or "retrieved_context" in spec.fields:
                for _, run in job.page.items if job.page else ():
                    chunks[(run["id"], spec.chunks)] = run.get("retrieved_context") or []
        for (_, spec), run in zip(lookups, runs, strict=True):
            if run is not None and (spec.fields is None or "retrieved_context" in spec.fields):
                chunks[(run["id"], spec.chunks)] = run.get("retrieved_context") or []
        # Assistant messages whose run lives in another document than they do.
        wanted = [
            (msg["run_id"], cs)
            for job in m_jobs
            for _, msg in (job.page.items if job.page else ())
            if msg.get("role") == "assistant" and msg.get("run_id")
            for cs in job.chunk_specs
            if (msg["run_id"], cs) not in chunks
        ]
        if wanted:
            found = await self.get_run_chunks(
                [(session_id, rid, cs) for rid, cs in dict.fromkeys(wanted)], owner=owner
            )
            for (rid, cs), got in zip(dict.fromkeys(wanted), found, strict=True):
                chunks[(rid, cs)] = got or []
        await self._finish_runs(
            [(session_id, run) for job in r_jobs for _, run in (job.page.items if job.page else ())]
            + [(session_id, r) for r in runs if r is not None],
            owner,
        )
        return SessionView(
            L.session_record({k: v for k, v in head.items() if k in L.SESSION_KEYS or k == "_id"}),  # type: ignore[arg-type]
            [job.page for job in m_jobs],  # type: ignore[misc]
            [job.page for job in r_jobs],  # type: ignore[misc]
            runs,
            chunks,
        )

    async def _runs_in_pages(
        self,
        session_id: str,
        owner: str | None,
        wanted: list[tuple[int, tuple[str, RunSpec]]],
        page_count: int,
    ) -> dict[int, RunRecord]:
        """Runs by id from a session's pages: ``{slot: run}`` for those found."""
        ids = sorted({rid for _, (rid, _) in wanted})
        specs = {n: spec for n, (_, spec) in wanted}
        project = {
            f"_x{n}": L.with_texts(
                L.runs_by_id_expr(
                    [rid],
                    L.run_item_expr("r", None if s.fields is None else s.fields | {"id"}, s.chunks),
                )
            )
            for n, (rid, s) in wanted
        }
        pages = await self._page_docs(
            [{"session_id": session_id, "runs.id": {"$in": ids}}],
            lambda _sid, _key: project,
            {session_id: page_count},
        )
        out: dict[int, RunRecord] = {}
        for page in pages:
            for n in specs:
                found = page.get(f"_x{n}") or []
                if found:
                    out[n] = found[0]
        return out

    async def _runs_by_id(
        self,
        requests: Iterable[tuple[str, str]],
        item: Any,
        owner: str | None,
        *,
        texts: bool = False,
        heads: dict[str, Doc] | None = None,
    ) -> dict[tuple[str, str], Doc]:
        """Runs by (session id, run id), each projected by ``item`` (bound to ``$$r``), from
        the heads and then, for those not there, the pages: one command, or two. ``heads``
        already read (with their counters) spares the first command."""
        by_session: dict[str, list[str]] = {}
        for sid, rid in requests:
            by_session.setdefault(sid, []).append(rid)

        def expr(rids: list[str]) -> Any:
            found = L.runs_by_id_expr(sorted(set(rids)), item)
            return L.with_texts(found) if texts else found

        found: dict[tuple[str, str], Doc] = {}
        if heads is None:
            heads = await self._heads_by_session(by_session, owner, expr)
            for sid, read in heads.items():
                for run in read.get("_q") or ():
                    found[(sid, run["id"])] = run
        clauses, absent = [], {}
        for sid, rids in by_session.items():
            head = heads.get(sid)
            if head is None or not (head.get("before") or {}).get("r"):
                continue
            rest = sorted({r for r in rids if (sid, r) not in found})
            if rest:
                absent[sid] = rest
                clauses.append({"session_id": sid, "runs.id": {"$in": rest}})
        below = {sid: heads[sid].get("pages") or 0 for sid in absent}
        for page in await self._page_docs(
            clauses, lambda sid, _key: {"_q": expr(absent[sid])}, below
        ):
            for run in page.get("_q") or ():
                found[(page["session_id"], run["id"])] = run
        return found

    async def get_runs(
        self,
        requests: Sequence[tuple[str, str]],
        fields: frozenset[str] | None,
        *,
        owner: str | None,
    ) -> list[RunRecord | None]:
        """Runs by (session id, run id), reduced to ``fields``, in one or two round trips."""
        fields = None if fields is None else fields | {"id"}
        texts = fields is None or bool(fields & {"input", "content"})
        item = L.run_item_expr("r", fields, ChunkSpec())
        found = await self._runs_by_id(requests, item, owner, texts=texts)
        await self._finish_runs([(sid, run) for (sid, _), run in found.items()], owner)
        return [found.get(key) for key in requests]  # type: ignore[misc]

    async def get_run_chunks(
        self, requests: Sequence[tuple[str, str, ChunkSpec]], *, owner: str | None
    ) -> list[list[ChunkRecord] | None]:
        """Retrieved context of runs by (session id, run id, filter), in one or two round
        trips. ``None`` where the run is not found."""
        specs = list(dict.fromkeys(spec for *_, spec in requests))
        index = {spec: f"c{n}" for n, spec in enumerate(specs)}
        item = {"id": "$$r.id"} | {index[s]: L.chunk_expr("r", s) for s in specs}
        found = await self._runs_by_id(((s, r) for s, r, _ in requests), item, owner)
        out: list[list[ChunkRecord] | None] = []
        for sid, rid, spec in requests:
            run = found.get((sid, rid))
            out.append(None if run is None else run.get(index[spec]) or [])
        return out

    async def _heads_by_session(
        self, by_session: dict[str, list[Any]], owner: str | None, expr: Callable[[list[Any]], Any]
    ) -> dict[str, Doc]:
        """Heads (with their counters) and ``_q``: ``expr`` of each session's own list."""
        if len(by_session) == 1:
            [(sid, wanted)] = by_session.items()
            return await self._heads_projected([sid], owner, {"_q": expr(wanted)})
        branches = [
            {"case": {"$eq": ["$_id", L.literal(sid)]}, "then": expr(wanted)}
            for sid, wanted in by_session.items()
        ]
        return await self._heads_projected(
            by_session, owner, {"_q": {"$switch": {"branches": branches, "default": None}}}
        )

    async def get_run_messages(
        self,
        requests: Sequence[tuple[str, str]],
        fields: frozenset[str] | None,
        *,
        owner: str | None,
    ) -> list[list[tuple[int, MessageRecord]]]:
        """The messages each run added, in order, with their seqs."""
        fields = None if fields is None else fields | {"run_id"}
        keys = list(dict.fromkeys(requests))
        runs = await self._runs_by_id(keys, {"id": "$$r.id", "mseq": "$$r.mseq"}, owner)
        seqs: dict[str, set[int]] = {}
        for (sid, _), run in runs.items():
            seqs.setdefault(sid, set()).update(run.get("mseq") or ())
        messages = await self._messages_by_seq(seqs, fields, owner)
        out = []
        for sid, rid in requests:
            mseq = (runs.get((sid, rid)) or {}).get("mseq") or ()
            got = messages.get(sid, {})
            out.append([(seq, got[seq]) for seq in mseq if seq in got])
        return out

    async def _messages_by_seq(
        self, seqs: dict[str, set[int]], fields: frozenset[str] | None, owner: str | None
    ) -> dict[str, dict[int, MessageRecord]]:
        """Messages by seq from heads and pages: ``{session: {seq: message}}``."""
        seqs = {sid: s for sid, s in seqs.items() if s}
        if not seqs:
            return {}
        heads = await self._heads_by_session(
            {sid: sorted(s) for sid, s in seqs.items()},
            owner,
            lambda wanted: L.messages_by_seq_expr(wanted, fields),
        )
        out: dict[str, dict[int, MessageRecord]] = {}
        clauses, wanted_in_pages = [], {}
        for sid, wanted in seqs.items():
            head = heads.get(sid)
            if head is None:
                continue
            got = out.setdefault(sid, {})
            for m in head.get("_q") or ():
                got[m["seq"]] = m
            rest = sorted(s for s in wanted if s not in got and s < (head.get("m_cut") or 0))
            if rest:
                wanted_in_pages[sid] = rest
                span = self.bounds.page_seqs
                clauses.append(
                    {
                        "session_id": sid,
                        "m_lo": {"$gt": rest[0] - span, "$lte": rest[-1]},
                    }
                )
        if clauses:
            below = {sid: heads[sid].get("pages") or 0 for sid in wanted_in_pages}
            for page in await self._page_docs(
                clauses,
                lambda sid, _key: {"_q": L.messages_by_seq_expr(wanted_in_pages[sid], fields)},
                below,
            ):
                for m in page.get("_q") or ():
                    out[page["session_id"]][m["seq"]] = m
        return out

    async def _finish_runs(self, runs: list[tuple[str, Doc]], owner: str | None) -> None:
        """Fill the ``input``/``content`` of runs whose messages live in another document
        than they do, and drop the reference fields from every run."""
        wanted: dict[str, set[int]] = {}
        for sid, run in runs:
            for ref in ("_in", "_out"):
                if run.get(ref) is not None:
                    wanted.setdefault(sid, set()).add(run[ref])
        texts = await self._messages_by_seq(wanted, frozenset({"content"}), owner) if wanted else {}
        for sid, run in runs:
            for ref, name in (("_in", "input"), ("_out", "content")):
                seq = run.pop(ref, None)
                if seq is not None:
                    msg = texts.get(sid, {}).get(seq)
                    run[name] = msg.get("content") if msg else None

    async def runs_by_status(self) -> dict[str, int]:
        """How many runs of all sessions have each status, from the heads' counters."""
        totals = {
            status: {"$sum": {"$ifNull": [{"$arrayElemAt": ["$n_status", i]}, 0]}}
            for i, status in enumerate(STATUSES)
        }
        rows = await (await self.heads.aggregate([{"$group": {"_id": None, **totals}}])).to_list()
        return {status: int(rows[0][status]) for status in STATUSES} if rows else {}

    # --- writes -----------------------------------------------------------------------

    async def create_session(
        self,
        *,
        session_id: str | None,
        user_id: str,
        agent_id: str | None = None,
        title: str | None = None,
        metadata: dict[str, Any] | None = None,
        expires_at: datetime | None = None,
    ) -> SessionRecord:
        """Insert an empty session, expiring at ``expires_at`` (default: the retention after
        now, or never). An id that exists already returns that session when it is
        ``user_id``'s (a retried create) and raises ``NotFound`` when it is not."""
        t = now()
        doc = _new_head(
            session_id or new_id(),
            {"user_id": user_id, "agent_id": agent_id, "title": title, "metadata": metadata or {}},
            t,
            self.retention,
        )
        if expires_at is not None:
            doc["expires_at"] = expires_at
        try:
            await self.heads.insert_one(doc)
        except DuplicateKeyError:
            existing = await self.get_session(doc["_id"], owner=user_id)
            if existing is None:
                raise NotFound("session not found") from None
            return existing
        return L.session_record(doc)  # type: ignore[return-value]

    async def update_session(
        self, session_id: str, changes: Doc, *, owner: str | None
    ) -> SessionRecord | None:
        """Set a session's ``title``, ``metadata`` and ``expires_at`` (the keys ``changes``
        has; ``None`` clears a title or an expiry, and empties the metadata), in one
        update; ``None`` when the session is missing or not ``owner``'s."""
        unknown = set(changes) - {"title", "metadata", "expires_at"}
        if unknown:
            raise ValueError(f"not a session field one may change: {sorted(unknown)}")
        sets: Doc = {"updated_at": now()}
        unset: Doc = {}
        for key, value in changes.items():
            if key == "metadata":
                sets["metadata"] = value or {}
                sets["mkv"] = L.metadata_terms(value)
            elif value is None and key == "expires_at":
                unset[key] = ""  # absent, not null: the expiry index is sparse
            else:
                sets[key] = value
        update: Doc = {"$set": sets} | ({"$unset": unset} if unset else {})
        # update_one and a read, not findAndModify: see ``_appended``.
        done = await self.heads.update_one(_scope(owner, _id=session_id), update)
        if not done.matched_count:
            return None
        doc = await self.heads.find_one({"_id": session_id}, L.head_projection(None))
        return None if doc is None else L.session_record(doc)  # type: ignore[return-value]

    async def delete_run(self, session_id: str, run_id: str, *, owner: str | None) -> bool:
        """Remove one run with its messages and chunks, from the head or the pages that
        hold them, counters corrected (``edits.delete_run``); ``False`` when the session
        is missing or not ``owner``'s, ``NotFound`` when it has no such run."""
        deleted = await edits.delete_run(self, session_id, run_id, owner=owner, t=now())
        if deleted:
            await self._unindex(session_id, run_id)
        return deleted

    async def fork_session(
        self,
        session_id: str,
        message_id: str,
        *,
        owner: str | None,
        title: str | None = None,
        new_session_id: str | None = None,
    ) -> SessionRecord | None:
        """A new session with the messages up to ``message_id`` and their runs
        (``edits.fork_session``); ``None`` when the session is missing or not ``owner``'s."""
        return await edits.fork_session(
            self, session_id, message_id, owner=owner, title=title,
            new_id=new_session_id or new_id(), t=now(),
        )  # fmt: skip

    async def search_messages(
        self,
        query: str,
        filt: SessionFilter,
        *,
        owner: str | None,
        first: int,
        offset: int = 0,
        newest: bool = False,
    ) -> tuple[list[Doc], bool]:
        """Messages matching ``query`` (``storage.search``), best or newest first, each
        ``{session_id, message_id, run_id, role, created_at, score, snippet}``; and whether
        there are more. Only messages still stored for ``owner`` are hits."""
        if self.search is None:
            raise StorageFailed("this server has no search index")
        words = search_terms(query)
        if filt.user_id is not None and owner is not None and filt.user_id != owner:
            return [], False
        hits = await self.search.search(
            words, owner=filt.user_id or owner, agent_id=filt.agent_id, newest=newest,
            limit=first + 1, offset=offset,
        )  # fmt: skip
        wanted: dict[str, set[int]] = {}
        for hit in hits[:first]:
            wanted.setdefault(hit.session_id, set()).add(hit.seq)
        texts = await self._messages_by_seq(wanted, frozenset({"id", "content"}), owner)
        out = []
        for hit in hits[:first]:
            message = texts.get(hit.session_id, {}).get(hit.seq)
            if message is None or message.get("id") != hit.message_id:
                continue  # deleted, expired or not the owner's: gone at once
            out.append({
                "session_id": hit.session_id, "message_id": hit.message_id,
                "run_id": hit.run_id, "role": hit.role, "created_at": hit.created_at,
                "score": hit.score, "snippet": snippet(message.get("content") or "", words),
            })  # fmt: skip
        return out, len(hits) > first

    async def reindex(self, progress: Callable[[int], None] | None = None) -> int:
        """Rebuild the search index from every stored session; how many messages."""
        if self.search is None:
            raise StorageFailed("this server has no search index")
        await self.search.clear()
        count = 0
        async for head in self.heads.find({}, {"_id": 1, "user_id": 1, "agent_id": 1, "pages": 1,
                                               "messages": 1}):  # fmt: skip
            messages = list(head.get("messages") or [])
            if head.get("pages"):
                async for page in self.pages.find(
                    {"session_id": head["_id"], "n": {"$lt": head["pages"]}}, {"messages": 1}
                ):
                    messages += page.get("messages") or []
            await self._index(head["_id"], head, [(m["seq"], m) for m in messages])
            count += len(messages)
            if progress is not None:
                progress(count)
        await self.search.settle()  # rebuilt when this returns, not only queued
        return count

    async def index_metadata(self) -> int:
        """Give sessions written before the metadata index their index terms (once per
        database: a marker records it); how many were changed."""
        meta = self.heads.database[L.META]
        if await meta.find_one({"_id": "metadata_terms"}) is not None:
            return 0
        changed = 0
        async for head in self.heads.find({"mkv": {"$exists": False}}, {"metadata": 1}):
            await self.heads.update_one(
                {"_id": head["_id"]}, {"$set": {"mkv": L.metadata_terms(head.get("metadata"))}}
            )
            changed += 1
        await meta.replace_one({"_id": "metadata_terms"}, {"_id": "metadata_terms"}, upsert=True)
        return changed

    async def delete_session(self, session_id: str, *, owner: str | None) -> bool:
        """Delete a session with its pages; ``False`` when it is missing or not ``owner``'s."""
        result = await self.heads.delete_one(
            _scope(owner, _id=session_id, pages={"$in": [0, None]})
        )
        if result.deleted_count == 1:
            await self._unindex(session_id)
            return True
        head = await self.heads.find_one(_scope(owner, _id=session_id), {"pages": 1})
        if head is None:
            return False

        async def both(s: Any) -> bool:
            gone = await self.heads.delete_one(_scope(owner, _id=session_id), session=s)
            await self.pages.delete_many({"session_id": session_id}, session=s)
            return gone.deleted_count == 1

        deleted = await self._transaction(both)
        if deleted:
            await self._unindex(session_id)
        return deleted

    async def _transaction(self, work: Callable[[Any], Any]) -> Any:
        async with self.client.start_session() as s:
            return await s.with_transaction(work)

    async def record_run(
        self,
        *,
        session_id: str,
        owner: str | None,
        new_session: NewSession,
        run: Doc,
        messages: list[Doc],
        fresh_id: bool = False,
    ) -> tuple[RunRecord, bool]:
        """Append a run and its messages to a session, in one atomic update of its head.

        Creates the session (with ``new_session``'s fields) when the id is free. A run id
        already in the session, in its head or its pages, changes nothing and returns the
        stored run (``fresh_id``: the id was made just now, so no check is needed).
        Returns ``(run, created)``. Raises ``NotFound`` when the session belongs to
        someone else (or to another user than ``owner``), ``TooLarge`` past the bounds of
        one message or one write, in which case nothing is written.
        """
        sizes, _ = _check_sizes(messages, [run])
        stored = _stored_run(run, messages)
        t = now()
        pipeline = _append_pipeline(new_session, stored, messages, sizes, t, self.retention)
        filt = _scope(owner, _id=session_id, **{"runs.id": {"$ne": run["id"]}})
        # How many pages the session has, when it is known to keep runs in them.
        hint = None if fresh_id else self._paged.get(session_id)
        upserted = False
        for _ in range(8):
            if hint is None:
                # A new session, or one without runs in pages: one command.
                attempt = filt if fresh_id else filt | {"before.r": {"$in": [0, None]}}
                upserted = True
                try:
                    done = await self.heads.update_one(attempt, pipeline, upsert=True)
                except DuplicateKeyError:
                    done = None
                if done is not None and (done.matched_count or done.upserted_id is not None):
                    return await self._appended(session_id, stored, messages, owner), True
            else:
                # Runs in pages: is this one among them? Then the append, on condition
                # that no page was added meanwhile (a move changes ``pages``).
                holders = self.pages.find(
                    {"session_id": session_id, "runs.id": run["id"]}, {"n": 1}
                )  # n is checked here: in the filter it would cost the index (SecantusDB)
                if any(p["n"] < hint for p in await holders.to_list()):
                    return await self._existing(session_id, run["id"], owner), False
                done = await self.heads.update_one(filt | {"pages": hint}, pipeline)
                if done.matched_count:
                    return await self._appended(session_id, stored, messages, owner), True
            # The id is taken: by this session with this run already (a retry), by a
            # session with runs in pages (the run may be there), or by a session this
            # caller may not write to; or the hint was stale.
            probe = await self._probe_head(session_id, run["id"], owner)
            if probe is None:
                self._paged.pop(session_id, None)
                if upserted:
                    raise NotFound("session not found")
                hint = None  # deleted since it was seen: a new session may take the id
                continue
            pages, paged_runs, here = probe
            if here:
                return await self._existing(session_id, run["id"], owner), False
            hint = pages if paged_runs else None
            if hint is not None:
                self._remember_paged(session_id, hint)
        raise StorageFailed(f"session {session_id}: the append kept conflicting; try again")

    async def _existing(self, session_id: str, run_id: str, owner: str | None) -> RunRecord:
        [existing] = await self.get_runs([(session_id, run_id)], None, owner=owner)
        if existing is None:  # deleted between the check and the read
            raise NotFound("session not found")
        return existing

    def _remember_paged(self, session_id: str, pages: int) -> None:
        self._paged[session_id] = pages
        self._paged.move_to_end(session_id)
        while len(self._paged) > 4096:
            self._paged.popitem(last=False)

    async def _probe_head(
        self, session_id: str, run_id: str, owner: str | None
    ) -> tuple[int, int, bool] | None:
        """(pages, runs in pages, whether ``run_id`` is in the head); ``None`` when the
        session is not there for ``owner``."""
        pipeline = [
            {"$match": _scope(owner, _id=session_id)},
            {
                "$project": {
                    "pages": {"$ifNull": ["$pages", 0]},
                    "paged": {"$ifNull": ["$before.r", 0]},
                    "here": {"$in": [L.literal(run_id), L.field_of("runs", "id")]},
                }
            },
        ]
        found = await (await self.heads.aggregate(pipeline)).to_list()
        if not found:
            return None
        doc = found[0]
        return int(doc["pages"]), int(doc["paged"]), bool(doc["here"])

    async def _appended(
        self, session_id: str, run: Doc, messages: list[Doc], owner: str | None
    ) -> RunRecord:
        """The run just appended, as read; and a move when the head outgrew its bounds.

        The seqs it was given are read back by the run's id, in a second command: the
        append is an ``update_one``, not a ``findAndModify`` returning the head, because
        SecantusDB's ``findAndModify`` scans the whole collection for its write (~180 ms
        at 10,000 sessions against ~4 ms). Reading by the run's id, not the head's
        counters, stays right when another append lands in between."""
        head = await self._head_after(session_id, run["id"])
        if head is None:  # moved into a page or deleted in between: read it where it is
            existing = await self._existing(session_id, run["id"], owner)
            await self._index_run(session_id, run["id"])
            return existing
        record = dict(run) | _derived(run, messages)
        record["seq"] = head["seq"]
        first = head.get("mseq") or 0
        await self._index(session_id, head, [(first + i, m) for i, m in enumerate(messages)])
        head = await self._maybe_move(session_id, head)
        if (head.get("before") or {}).get("r"):
            self._remember_paged(session_id, head.get("pages") or 0)
        return record  # type: ignore[return-value]

    async def _head_after(self, session_id: str, run_id: str) -> Doc | None:
        """The head's stats and the seqs of run ``run_id`` in it (``seq``, and ``mseq``,
        its first message's); ``None`` when the run is not in the head."""
        ran = {"$filter": {"input": {"$ifNull": ["$runs", []]},
                           "cond": {"$eq": ["$$this.id", L.literal(run_id)]}}}  # fmt: skip
        stats = {key: 1 for key in _HEAD_STATS}
        pipeline: list[Doc] = [
            {"$match": {"_id": session_id}},
            {"$project": stats | {"ran": {"$arrayElemAt": [ran, 0]}}},
            {"$project": stats | {"seq": "$ran.seq", "mseq": {"$arrayElemAt": ["$ran.mseq", 0]}}},
        ]
        found = await (await self.heads.aggregate(pipeline)).to_list()
        return found[0] if found and found[0].get("seq") is not None else None

    async def _index(
        self, session_id: str, head: Doc | None, messages: Sequence[tuple[int, Doc]]
    ) -> None:
        """Put messages into the search index; a failure there loses nothing stored (the
        messages are in the database; ``agent-sessions reindex`` puts them back)."""
        if self.search is None or not messages:
            return
        if head is None or "user_id" not in head:
            head = await self.heads.find_one({"_id": session_id}, {"user_id": 1, "agent_id": 1})
            if head is None:
                return
        try:
            await self.search.add(session_id, head["user_id"], head.get("agent_id"), messages)
        except (apsw.Error, PyMongoError) as exc:  # the index's own failure
            log.warning("the search index missed messages of session %s: %s", session_id, exc)

    async def _unindex(self, session_id: str, run_id: str | None = None) -> None:
        if self.search is None:
            return
        try:
            if run_id is None:
                await self.search.delete_session(session_id)
            else:
                await self.search.delete_run(session_id, run_id)
        except (apsw.Error, PyMongoError) as exc:  # the index's own failure
            log.warning("the search index kept words of session %s: %s", session_id, exc)

    async def _index_run(self, session_id: str, run_id: str) -> None:
        """Index a run's messages as they are now (a run that streamed, now finished)."""
        if self.search is not None:
            [messages] = await self.get_run_messages([(session_id, run_id)], None, owner=None)
            await self._index(session_id, None, messages)  # type: ignore[arg-type]

    async def _maybe_move(self, session_id: str, head: Doc) -> Doc:
        """Move older turns out of a head past its bounds; the head's stats after."""
        if not self.moves or not over(head, self.bounds):
            return head

        async def move(s: Any) -> bool:
            return await move_older_turns(self.heads, self.pages, session_id, self.bounds, s)

        for _ in range(5):
            try:
                moved = await self._transaction(move)
            except _Retry:
                continue
            head = await self.heads.find_one({"_id": session_id}, _HEAD_STATS) or {}
            # One move halves the head; concurrent appends may need another.
            if not moved or not over(head, self.bounds):
                break
        return head

    async def update_run(
        self,
        *,
        session_id: str,
        run_id: str,
        owner: str | None,
        changes: Doc,
        messages: Sequence[Doc] = (),
    ) -> None:
        """Set fields of one run (status, content, error, usage, completed_at, chunks…) and
        append the messages it produced, in one atomic update of the head (a run that was
        moved into a page meanwhile is updated there, in a transaction). ``NotFound`` when
        there is no such run for ``owner``."""
        if not await self._change_run(session_id, run_id, owner, changes, list(messages), {}):
            raise NotFound("run not found")
        await self._index_run(session_id, run_id)

    async def update_live_run(
        self,
        *,
        session_id: str,
        run_id: str,
        owner: str | None,
        changes: Doc,
        message_changes: dict[str, Doc] | None = None,
        new_messages: Sequence[Doc] = (),
    ) -> bool:
        """A RUNNING run's progress (issue 12: written while it streams, at a bounded
        rate, and when it ends): set fields of the run, set fields of messages it added
        already (by message id), append the messages it added since. False, and nothing
        written, when the run is not RUNNING any more (cancelled, reaped) or the session
        is gone: a run another party ended is never written back to life."""
        changed = await self._change_run(
            session_id, run_id, owner, changes, list(new_messages), message_changes or {},
            running_only=True,
        )  # fmt: skip
        # Its words as stored: at each flush that brought text (at most every run_flush_s),
        # and when it ends.
        if changed and (new_messages or message_changes or changes.get("status") in TERMINAL):
            await self._index_run(session_id, run_id)
        return changed

    async def _change_run(
        self,
        session_id: str,
        run_id: str,
        owner: str | None,
        changes: Doc,
        messages: list[Doc],
        message_changes: dict[str, Doc],
        *,
        running_only: bool = False,
    ) -> bool:
        sizes, _ = _check_sizes(messages, [changes, *message_changes.values()])
        changes = dict(changes)
        answers = [m.get("content") for m in messages if m["role"] == "assistant"][-1:]
        answers += [c["content"] for c in message_changes.values() if "content" in c]
        if "content" in changes and (changes["content"] is None or changes["content"] in answers):
            changes.pop("content")  # read from its answer message, not stored twice
        t = now()
        which: Doc = {"id": run_id, "status": "RUNNING"} if running_only else {"id": run_id}
        # update_one and a read, not findAndModify: see ``_appended``.
        done = await self.heads.update_one(
            _scope(owner, _id=session_id, runs={"$elemMatch": which}),
            _update_pipeline(run_id, changes, messages, sizes, t, message_changes),
        )
        head = None
        if done.matched_count:
            head = await self.heads.find_one({"_id": session_id}, _HEAD_STATS)
        if head is None:
            return await self._change_paged_run(
                session_id, run_id, owner, changes, messages, message_changes, sizes, t,
                running_only,
            )  # fmt: skip
        await self._maybe_move(session_id, head)
        return True

    async def _change_paged_run(
        self,
        session_id: str,
        run_id: str,
        owner: str | None,
        changes: Doc,
        messages: list[Doc],
        message_changes: dict[str, Doc],
        sizes: list[int],
        t: datetime,
        running_only: bool,
    ) -> bool:
        """``_change_run`` for a run that lives in a page: the page's run (and its
        messages there), its counts and those of the pages after it, and the head's
        messages, in one transaction; False when there is no such run (RUNNING)."""

        async def work(s: Any) -> bool:
            head = await self.heads.find_one(
                _scope(owner, _id=session_id), {"pages": 1, "m_next": 1}, session=s
            )
            if head is None:
                return False
            found = await self.pages.find(
                {"session_id": session_id, "runs.id": run_id},
                {"n": 1, "runs": {"$elemMatch": {"id": run_id}}},
                session=s,
            ).to_list()
            page = next((p for p in found if p["n"] < (head.get("pages") or 0)), None)
            if page is None:
                return False
            old = page["runs"][0]["status"]
            if running_only and old != "RUNNING":
                return False
            new = changes.get("status", old)
            await self.heads.update_one(
                {"_id": session_id},
                _update_pipeline(None, {}, messages, sizes, t, message_changes,
                                 status_change=(old, new)),
                session=s,
            )  # fmt: skip
            refs = _refs_values(messages, head.get("m_next") or 0)
            stage: Doc = {"runs": _run_map(run_id, changes, refs)}
            if message_changes:
                stage["messages"] = _changed_messages(message_changes)
            await self.pages.update_one(
                {"_id": page["_id"]},
                [{"$set": stage}] + ([_status_shift("own.status", old, new)] if old != new else []),
                session=s,
            )
            if old != new:
                await self.pages.update_many(
                    {"session_id": session_id, "n": {"$gt": page["n"]}},
                    [_status_shift("before.status", old, new)],
                    session=s,
                )
                await self.heads.update_one(
                    {"_id": session_id}, [_status_shift("before.status", old, new)], session=s
                )
            return True

        return bool(await self._transaction(work))

    # --- moving data in and out -----------------------------------------------------------

    async def insert_pages(self, pages: Iterable[tuple[Any, int]]) -> None:
        """Insert (page, its size in bytes) pairs, about 8 MiB of pages a command."""
        batch: list[Any] = []
        size = 0
        for page, page_bytes in pages:
            batch.append(page)
            size += page_bytes
            if size > 8 * 1024 * 1024:
                await self.pages.insert_many(batch)
                batch, size = [], 0
        if batch:
            await self.pages.insert_many(batch)

    async def import_session(
        self, session: Doc, messages: Sequence[Doc], runs: Sequence[Doc]
    ) -> bool:
        """Store a whole session at once (an import): ``session`` its fields with its
        ``id``, ``messages`` and ``runs`` records in order. ``False``, and nothing
        changed, when a session with that id exists already.

        The pages go in first and the head last: readers reach pages only through a head
        (and only below its page count), so the session appears whole or not at all,
        whatever the size, with no transaction to bound it.
        """
        head, pages = build_session(session, messages, runs, self.bounds, paged=self.moves)
        if await self.heads.find_one({"_id": head["_id"]}, {"_id": 1}) is not None:
            return False
        if pages:
            # Pages a failed import of this id left behind (no head has them).
            await self.pages.delete_many({"session_id": head["_id"]})
            await self.insert_pages((page, page["bytes"]) for page in pages)
        try:
            await self.heads.insert_one(head)
        except DuplicateKeyError:
            if pages:
                await self.pages.delete_many({"_id": {"$in": [p["_id"] for p in pages]}})
            return False
        every = [m for doc in (*pages, head) for m in doc.get("messages") or []]
        await self._index(head["_id"], head, [(m["seq"], m) for m in every])
        return True

    async def export_sessions(
        self,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        since: datetime | None = None,
        batch: int = 100,
    ) -> AsyncIterator[Doc]:
        """Every matching session whole, newest ``updated_at`` first (the list indexes'
        order), one at a time: ``{"session", "messages", "runs"}`` as records, its pages
        read with it. ``since`` is inclusive. Administrators' reads: no owner scope."""
        cursor = self.heads.find(
            _export_filter(user_id, agent_id, since),
            sort=[("updated_at", DESCENDING), ("_id", ASCENDING)],
            batch_size=batch,
        )
        async with cursor:
            async for head in cursor:
                messages: list[Doc] = []
                runs: list[Doc] = []
                if head.get("pages"):
                    async for page in self.pages.find(
                        {"session_id": head["_id"], "n": {"$lt": head["pages"]}},
                        {"messages": 1, "runs": 1},
                        sort=[("n", 1)],
                    ):
                        messages += page.get("messages") or []
                        runs += page.get("runs") or []
                messages += head.get("messages") or []
                runs += head.get("runs") or []
                yield {
                    "session": L.session_record(head),
                    "messages": [{k: v for k, v in m.items() if k != "seq"} for m in messages],
                    "runs": readable_runs(runs, messages),
                }

    async def count_for_export(
        self,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        since: datetime | None = None,
    ) -> int:
        return await self.heads.count_documents(_export_filter(user_id, agent_id, since))


def _export_filter(user_id: str | None, agent_id: str | None, since: datetime | None) -> Doc:
    filt: Doc = {}
    if user_id is not None:
        filt["user_id"] = user_id
    if agent_id is not None:
        filt["agent_id"] = agent_id
    if since is not None:
        filt["updated_at"] = {"$gte": since}
    return filt


def _not_expired() -> Doc:
    """Sessions without an expiry or expiring later: expired ones are gone from every read
    at once, before the sweep (``storage.retention``) deletes them."""
    return {"$not": {"$lte": now()}}


def _live(q: Doc) -> Doc:
    """``q`` for sessions that have not expired. (No index hint: SecantusDB's explain
    calls such a filter a collection scan, yet it is answered as fast as the id alone,
    where a hint makes it walk the whole index: ``python -m bench`` measures reads.)"""
    return q | {"expires_at": _not_expired()}


def _paged(head: Doc) -> bool:
    return bool(head.get("pages"))


def _new_head(session_id: str, fields: Doc, t: datetime, retention: timedelta | None = None) -> Doc:
    expiry = {} if retention is None else {"expires_at": t + retention}
    return {
        **expiry,
        "_id": session_id,
        "v": L.LAYOUT_VERSION,
        **fields,
        "mkv": L.metadata_terms(fields.get("metadata")),
        "created_at": t,
        "updated_at": t,
        "message_count": 0,
        "run_count": 0,
        "n_roles": [0] * len(ROLES),
        "n_status": [0] * len(STATUSES),
        "m_next": 0,
        "r_next": 0,
        "m_cut": 0,
        "r_cut": 0,
        "pages": 0,
        "before": L.zero_counts(),
        "bytes": 0,
        "entries": 0,
        "messages": [],
        "runs": [],
    }


def _append_pipeline(
    new_session: NewSession,
    run: Doc,
    messages: list[Doc],
    sizes: list[int],
    t: datetime,
    retention: timedelta | None = None,
) -> list[Doc]:
    """The update that appends ``run`` and ``messages`` to a head, numbering them from
    the head's counters, and creates the head when there is none (an upsert)."""
    m_next, r_next = {"$ifNull": ["$m_next", 0]}, {"$ifNull": ["$r_next", 0]}
    # A session made by its first run starts when that run did (an import keeps its times).
    fields = {
        "user_id": new_session["user_id"],
        "agent_id": new_session.get("agent_id"),
        "title": new_session.get("title"),
        "metadata": new_session.get("metadata") or {},
    }
    fresh = _new_head("", fields, run.get("created_at") or t)
    keep_or_new = {
        key: {"$cond": ["$_new", L.literal(fresh[key]), f"${key}"]}
        for key in (
            "user_id",
            "agent_id",
            "title",
            "metadata",
            "mkv",
            "created_at",
            "m_cut",
            "r_cut",
            "pages",
            "before",
        )
    }
    if retention is not None:  # a session this run creates is kept for the retention
        keep_or_new["expires_at"] = {
            "$cond": ["$_new", L.literal(fresh["created_at"] + retention), "$expires_at"]
        }
    title = default_title(messages)
    if title is not None:  # a session without a title takes its first user message's
        keep_or_new["title"] = {"$ifNull": [keep_or_new["title"], L.literal(title)]}
    status = L.status_index(run["status"])
    run_bytes = len(bson.encode(run)) + 16 * len(messages)
    return [
        {"$set": {"_new": {"$eq": [{"$type": "$created_at"}, "missing"]}}},
        {
            "$set": {
                **keep_or_new,
                "v": L.LAYOUT_VERSION,
                "messages": _appended(messages, m_next),
                "runs": {
                    "$concatArrays": [
                        {"$ifNull": ["$runs", []]},
                        [
                            {
                                "$mergeObjects": [
                                    L.literal(run),
                                    {"seq": r_next},
                                    _refs(messages, m_next),
                                ]
                            }
                        ],
                    ]
                },
                "m_next": {"$add": [m_next, len(messages)]},
                "r_next": {"$add": [r_next, 1]},
                "message_count": {"$add": [{"$ifNull": ["$message_count", 0]}, len(messages)]},
                "run_count": {"$add": [{"$ifNull": ["$run_count", 0]}, 1]},
                "n_roles": _add_vector("n_roles", _role_counts(messages)),
                "n_status": _add_vector(
                    "n_status", [int(i == status) for i in range(len(STATUSES))]
                ),
                "bytes": {"$add": [{"$ifNull": ["$bytes", 0]}, sum(sizes) + run_bytes]},
                "entries": {
                    "$add": [
                        {"$ifNull": ["$entries", 0]},
                        len(messages) + 1 + len(run.get("retrieved_context") or ()),
                    ]
                },
                "updated_at": {"$max": [{"$ifNull": ["$updated_at", None]}, L.literal(t)]},
            }
        },
        {"$unset": "_new"},
    ]


def _refs_values(messages: Sequence[Doc], base: int) -> Doc:
    """``_refs`` with the seqs known (the base was read in a transaction)."""
    out: Doc = {"mseq_add": list(range(base, base + len(messages)))}
    first_user = next((i for i, m in enumerate(messages) if m["role"] == "user"), None)
    last_answer = next(
        (i for i in range(len(messages) - 1, -1, -1) if messages[i]["role"] == "assistant"), None
    )
    if first_user is not None:
        out["in"] = base + first_user
    if last_answer is not None:
        out["out"] = base + last_answer
    return out


def _run_map(run_id: str, changes: Doc, refs: Doc) -> Doc:
    """``$runs`` with run ``run_id`` changed: ``changes`` set, the new messages' seqs
    added to its ``mseq``, its answer (and its input, when it had none) pointing at them.
    ``refs`` values may be expressions."""
    add = refs.get("mseq_add", refs.get("mseq_expr", []))
    merged: list[Any] = ["$$r", L.literal(changes)]
    extra: Doc = {
        "mseq": {
            "$concatArrays": [
                {"$ifNull": ["$$r.mseq", []]},
                add if isinstance(add, dict) else L.literal(add),
            ]
        }
    }
    if "out" in refs:
        extra["out"] = refs["out"] if isinstance(refs["out"], dict) else L.literal(refs["out"])
        if "content" not in changes:
            merged.append({"content": None})  # a stored answer gives way to the new message
    if "in" in refs:
        extra["in"] = {
            "$ifNull": [
                "$$r.in",
                refs["in"] if isinstance(refs["in"], dict) else L.literal(refs["in"]),
            ]
        }
    merged.append(extra)
    return {
        "$map": {
            "input": {"$ifNull": ["$runs", []]},
            "as": "r",
            "in": {
                "$cond": [{"$eq": ["$$r.id", L.literal(run_id)]}, {"$mergeObjects": merged}, "$$r"]
            },
        }
    }


def _changed_messages(changes: dict[str, Doc]) -> Doc:
    """``$messages`` with the messages whose ids ``changes`` names merged with its fields."""
    branches = [
        {
            "case": {"$eq": ["$$m.id", L.literal(mid)]},
            "then": {"$mergeObjects": ["$$m", L.literal(fields)]},
        }
        for mid, fields in changes.items()
    ]
    return {
        "$map": {
            "input": {"$ifNull": ["$messages", []]},
            "as": "m",
            "in": {"$switch": {"branches": branches, "default": "$$m"}},
        }
    }


def _status_shift(path: str, old: str, new: str) -> Doc:
    """A stage moving one count of ``path`` (a status vector) from ``old`` to ``new``."""
    o, n = L.status_index(old), L.status_index(new)
    deltas = [(i == n) - (i == o) for i in range(len(STATUSES))]
    return {"$set": {path: _add_vector(path, deltas)}}


def _update_pipeline(
    run_id: str | None,
    changes: Doc,
    messages: list[Doc],
    sizes: list[int],
    t: datetime,
    message_changes: dict[str, Doc] | None = None,
    *,
    status_change: tuple[str, str] | None = None,
) -> list[Doc]:
    """The update of a head for ``update_run``: messages of this head changed
    (``message_changes``, by id), messages appended and numbered, run ``run_id`` (when
    it is in this head) changed, the counters kept."""
    m_next = {"$ifNull": ["$m_next", 0]}
    existing = _changed_messages(message_changes) if message_changes else None
    grown = _appended(messages, m_next)
    if existing is not None:
        grown = {"$concatArrays": [existing, grown["$concatArrays"][1]]} if messages else existing
    extra = len(bson.encode(message_changes)) if message_changes else 0
    stage: Doc = {
        "messages": grown,
        "m_next": {"$add": [m_next, len(messages)]},
        "message_count": {"$add": [{"$ifNull": ["$message_count", 0]}, len(messages)]},
        "n_roles": _add_vector("n_roles", _role_counts(messages)),
        "bytes": {
            "$add": [{"$ifNull": ["$bytes", 0]}, sum(sizes) + len(bson.encode(changes)) + extra]
        },
        "entries": {
            "$add": [
                {"$ifNull": ["$entries", 0]},
                len(messages) + len(changes.get("retrieved_context") or ()),
            ]
        },
        "updated_at": {"$max": ["$updated_at", L.literal(t)]},
    }
    stages: list[Doc] = []
    if run_id is not None:
        refs = _refs(messages, m_next)
        refs = {"mseq_expr": refs["mseq"], **{k: v for k, v in refs.items() if k != "mseq"}}
        stage["runs"] = _run_map(run_id, changes, refs)
        if "status" in changes:
            # The old status is read from the run itself, in the same update.
            old = {
                "$indexOfArray": [
                    L.literal(list(STATUSES)),
                    {
                        "$arrayElemAt": [
                            {
                                "$map": {
                                    "input": {
                                        "$filter": {
                                            "input": "$runs",
                                            "as": "r",
                                            "cond": {"$eq": ["$$r.id", L.literal(run_id)]},
                                        }
                                    },
                                    "as": "r",
                                    "in": "$$r.status",
                                }
                            },
                            0,
                        ]
                    },
                ]
            }
            new = L.status_index(changes["status"])
            stages.append({"$set": {"_old": old}})
            stage["n_status"] = [
                {
                    "$add": [
                        {"$ifNull": [{"$arrayElemAt": ["$n_status", i]}, 0]},
                        int(i == new),
                        {"$cond": [{"$eq": ["$_old", i]}, -1, 0]},
                    ]
                }
                for i in range(len(STATUSES))
            ]
    elif status_change is not None and status_change[0] != status_change[1]:
        o, n = (L.status_index(s) for s in status_change)
        stage["n_status"] = _add_vector(
            "n_status", [(i == n) - (i == o) for i in range(len(STATUSES))]
        )
    stages.append({"$set": stage})
    if run_id is not None and "status" in changes:
        stages.append({"$unset": "_old"})
    return stages


__all__ = [
    "SessionFilter",
    "SessionSlice",
    "SessionStore",
    "StorageFailed",
    "message_document",
    "new_id",
    "now",
    "run_document",
]
