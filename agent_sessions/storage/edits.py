"""Changes to a stored session beyond appends: deleting one run, forking at a message.

Both work on the head-and-pages layout of ``layout``: a deleted run leaves gaps in the
seqs (they never change) and every counter the windows rely on (the head's totals and
``before``, each page's ``before`` and ``own``) is corrected in the same transaction; a
fork copies the pages it keeps unchanged as stored (raw BSON) and builds the rest, the
part from the page holding the fork point on, in memory; it is stored as an import is.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import chain
from typing import TYPE_CHECKING, Any

import apsw
import bson
from bson import ObjectId
from bson.codec_options import CodecOptions
from bson.raw_bson import RawBSONDocument
from pymongo.errors import DuplicateKeyError, PyMongoError

from agent_sessions.errors import BadInput, NotFound

from . import layout as L
from .build import default_title, readable_runs, stored_run_documents
from .layout import Doc
from .model import TERMINAL, SessionRecord
from .paging import entries, page_out

if TYPE_CHECKING:
    from .sessions import SessionStore

log = logging.getLogger("agent_sessions.storage")

RUN_NOT_FOUND = "run not found in this session"
MESSAGE_NOT_FOUND = "message not found in this session"
FORKED_WHILE_RUNNING = "the session was forked while this run was in progress"


def _inc_counts(prefix: str, counts: Doc, sign: int = -1) -> Doc:
    """``$inc`` of a counts document (``{m, r, roles, status}``) at ``prefix``."""
    inc: Doc = {}
    for key in ("m", "r"):
        if counts[key]:
            inc[f"{prefix}.{key}"] = sign * counts[key]
    for key in ("roles", "status"):
        for i, n in enumerate(counts[key]):
            if n:
                inc[f"{prefix}.{key}.{i}"] = sign * n
    return inc


def _head_inc(counts: Doc) -> Doc:
    """``$inc`` of the head's totals for the removal of ``counts``."""
    inc: Doc = {}
    if counts["m"]:
        inc["message_count"] = -counts["m"]
    if counts["r"]:
        inc["run_count"] = -counts["r"]
    for i, n in enumerate(counts["roles"]):
        if n:
            inc[f"n_roles.{i}"] = -n
    for i, n in enumerate(counts["status"]):
        if n:
            inc[f"n_status.{i}"] = -n
    return inc


def _size(items: Sequence[Doc]) -> int:
    return sum(len(bson.encode(x)) for x in items)


def _scope(owner: str | None, session_id: str) -> Doc:
    return {"_id": session_id} | ({"user_id": owner} if owner is not None else {})


async def delete_run(
    store: SessionStore, session_id: str, run_id: str, *, owner: str | None, t: datetime
) -> bool:
    """Remove one run with its messages and chunks; ``False`` when the session is missing
    or not ``owner``'s. ``NotFound`` when it has no such run; ``BadInput`` for a run that
    is still QUEUED or RUNNING (cancel it first: its server is still writing to it)."""

    async def work(s: Any) -> bool:
        head = await store.heads.find_one(
            _scope(owner, session_id), {"messages": 1, "runs": 1, "m_cut": 1, "pages": 1},
            session=s,
        )  # fmt: skip
        if head is None:
            return False
        run = next((r for r in head.get("runs") or [] if r["id"] == run_id), None)
        page_of_run = None
        if run is None and head.get("pages"):
            page_of_run = await store.pages.find_one(
                {"session_id": session_id, "runs.id": run_id},
                {"n": 1, "runs": 1},
                session=s,
            )
            if page_of_run is not None and page_of_run["n"] < head["pages"]:
                run = next(r for r in page_of_run["runs"] if r["id"] == run_id)
        if run is None:
            raise NotFound(RUN_NOT_FOUND)
        if run["status"] not in TERMINAL:
            raise BadInput(f"run {run_id} is {run['status']}: cancel it before deleting it")
        seqs = set(run.get("mseq") or ())
        m_cut = head.get("m_cut") or 0
        in_head = [m for m in head.get("messages") or [] if m.get("run_id") == run_id]
        removed_head = L.counts_of(in_head, [run] if page_of_run is None else [])
        # The run's messages below the head's cut are in pages: find those pages by seq.
        paged_seqs = sorted(q for q in seqs if q < m_cut)
        pages: dict[int, dict[str, Any]] = {}
        if page_of_run is not None:
            pages[page_of_run["n"]] = {"messages": [], "runs": [run]}
        if paged_seqs:
            span = store.bounds.page_seqs
            cursor = store.pages.find(
                {"session_id": session_id,
                 "m_lo": {"$gt": paged_seqs[0] - span, "$lte": paged_seqs[-1]}},
                {"n": 1, "m_lo": 1, "m_hi": 1, "messages": 1},
                session=s,
            )  # fmt: skip
            async for page in cursor:
                mine = [m for m in page.get("messages") or [] if m.get("run_id") == run_id]
                if mine and page["n"] < head["pages"]:
                    pages.setdefault(page["n"], {"messages": [], "runs": []})["messages"] = mine
        removed_pages = L.zero_counts()
        later = L.zero_counts()  # what pages below the one being changed lost
        for n in sorted(pages):
            gone = pages[n]
            own = L.counts_of(gone["messages"], gone["runs"])
            update: Doc = {"$inc": {**_inc_counts("own", own), **_inc_counts("before", later)}}
            update["$inc"]["bytes"] = -_size(gone["messages"] + gone["runs"])
            pull: Doc = {}
            if gone["messages"]:
                pull["messages"] = {"run_id": run_id}
            if gone["runs"]:
                pull["runs"] = {"id": run_id}
            if pull:
                update["$pull"] = pull
            await store.pages.update_one({"session_id": session_id, "n": n}, update, session=s)
            later = L.add_counts(later, own)
            removed_pages = L.add_counts(removed_pages, own)
        # Pages after the last changed one (up to the head) hold counts of all before them.
        if pages:
            last = max(pages)
            if last + 1 < head["pages"]:
                await store.pages.update_many(
                    {"session_id": session_id, "n": {"$gt": last, "$lt": head["pages"]}},
                    {"$inc": _inc_counts("before", removed_pages)},
                    session=s,
                )
        total = L.add_counts(removed_head, removed_pages)
        head_update: Doc = {
            "$inc": {
                **_head_inc(total),
                **_inc_counts("before", removed_pages),
                "bytes": -_size(in_head + ([run] if page_of_run is None else [])),
                "entries": -(len(in_head) + (1 + len(run.get("retrieved_context") or ())
                                             if page_of_run is None else 0)),
            },
            "$set": {"updated_at": t},
        }  # fmt: skip
        pull = {"messages": {"run_id": run_id}} if in_head else {}
        if page_of_run is None:
            pull["runs"] = {"id": run_id}
        if pull:
            head_update["$pull"] = pull
        result = await store.heads.update_one({"_id": session_id}, head_update, session=s)
        return result.matched_count == 1

    if not store.moves:
        # Without transactions a session is its head alone: one atomic update.
        return bool(await work(None))
    return bool(await store._transaction(work))


@dataclass(slots=True)
class _Prefix:
    """What a fork copies as stored: the original's pages ``0 … pages-1``, which hold
    the message seqs below ``m_cut`` and the run seqs below ``r_cut``, counted in
    ``before``."""

    pages: int
    m_cut: int
    r_cut: int
    before: Doc


# BSON value sizes (bsonspec.org) of the types a page's top level holds; any other type
# (a page written by something else) makes the fork rebuild that page instead.
_FIXED = {0x01: 8, 0x07: 12, 0x08: 1, 0x09: 8, 0x0A: 0, 0x10: 4, 0x11: 8, 0x12: 8, 0x13: 16}
# Runs are read to check them only: no time zone to attach.
_NAIVE: CodecOptions[dict[str, Any]] = CodecOptions()


def _elements(raw: bytes) -> Iterator[tuple[str, memoryview, memoryview]]:
    """The top-level elements of a BSON document: name, whole element, value bytes."""
    view = memoryview(raw)
    at = 4
    while at < len(raw) - 1:
        kind = raw[at]
        name_end = raw.index(b"\x00", at + 1)
        v = name_end + 1
        if kind in _FIXED:
            size = _FIXED[kind]
        elif kind == 0x02:
            size = 4 + struct.unpack_from("<i", raw, v)[0]
        elif kind in (0x03, 0x04):
            size = struct.unpack_from("<i", raw, v)[0]
        else:
            raise ValueError(f"BSON type {kind:#x} in a page")
        yield bytes(view[at + 1 : name_end]).decode(), view[at : v + size], view[v : v + size]
        at = v + size


@dataclass(slots=True)
class _RawPage:
    """A page as stored: its bytes, its ``m_lo``, and its runs' ``(status, mseq)``."""

    raw: bytes
    m_lo: int
    runs: list[tuple[str, list[int]]]

    @classmethod
    def read(cls, raw: bytes) -> _RawPage:
        m_lo, runs = 0, []
        try:
            for name, _, value in _elements(raw):
                if name == "m_lo":  # an int32 or an int64
                    m_lo = int.from_bytes(value, "little", signed=True)
                elif name == "runs":
                    runs = [(r["status"], r["mseq"]) for r in bson.decode(value, _NAIVE).values()]
        except ValueError:
            runs = [("", [])]  # not one to copy as it is: rebuilt
        return cls(raw, m_lo, runs)

    def copy(self, session_id: str, page_id: ObjectId) -> RawBSONDocument:
        """This page as ``page_id`` of session ``session_id``; the rest as stored."""
        body = bytearray(bson.encode({"_id": page_id, "session_id": session_id})[4:-1])
        for name, element, _ in _elements(self.raw):
            if name not in ("_id", "session_id"):
                body += element
        return RawBSONDocument(struct.pack("<i", len(body) + 5) + bytes(body) + b"\x00")


def _copyable(pages: Sequence[_RawPage], cut: int, end: Doc) -> int:
    """How many of ``pages`` (the pages before the one being cut, in order) a fork at
    message seq ``cut`` can copy unchanged: every run in them finished, with messages,
    none after the fork point; and no message in them belonging to a run after them
    (runs are stored with their first message, so a run beyond page ``k`` with a message
    below that page's ``m_lo`` is one). ``end``: the first document not among them (the
    page being cut or the head), as ``{m_lo, first}`` (its runs' lowest message seq)."""
    firsts: list[float] = []  # per page: the lowest message seq of its runs
    k_clean = len(pages)  # pages[:k_clean] hold only runs the fork keeps as they are
    for k, page in enumerate(pages):
        firsts.append(min((min(mseq) for _, mseq in page.runs if mseq), default=float("inf")))
        if k < k_clean and any(
            not mseq or status not in TERMINAL or max(mseq) > cut for status, mseq in page.runs
        ):
            k_clean = k
    lowest_after = float(end["first"])
    for k in range(len(pages), -1, -1):
        if k < len(pages):
            lowest_after = min(lowest_after, firsts[k])
        m_lo = pages[k].m_lo if k < len(pages) else end["m_lo"]
        if k <= k_clean and lowest_after >= m_lo:
            return k
    return 0


async def fork_session(
    store: SessionStore,
    session_id: str,
    message_id: str,
    *,
    owner: str | None,
    title: str | None = None,
    new_id: str,
    t: datetime,
) -> SessionRecord | None:
    """A new session with the messages of ``session_id`` up to and including
    ``message_id``, the runs that added them (with their chunks) and
    ``forked_from``; the original is unchanged. ``None`` when the session is missing or
    not ``owner``'s; ``NotFound`` when it has no such message. Message and run ids and
    seqs are kept (they are unique within a session).

    A long session is mostly pages the fork holds unchanged: those are copied as stored
    (raw BSON, only their ``_id`` and ``session_id`` new), and their messages' search
    index rows shared; only the page holding the fork point and what follows it up to
    there are rebuilt. Stored like an import: pages first, the head last."""
    head = await store.heads.find_one(_scope(owner, session_id))
    if head is None:
        return None
    n_pages = head.get("pages") or 0
    at = next((m for m in head.get("messages") or [] if m["id"] == message_id), None)
    f = n_pages  # the page holding the fork point; n_pages: the head holds it
    if at is None:
        found = None
        if n_pages:
            found = await store.pages.find_one(
                {"session_id": session_id, "n": {"$lt": n_pages}, "messages.id": message_id},
                {"n": 1},
            )
        if found is None:
            raise NotFound(MESSAGE_NOT_FOUND)
        f = found["n"]
    options = store.pages.codec_options
    raw_pages: list[_RawPage] = []
    if n_pages:
        raw = options.with_options(document_class=RawBSONDocument)
        cursor = store.pages.with_options(codec_options=raw).find(
            {"session_id": session_id, "n": {"$lte": f, "$lt": n_pages}}, sort=[("n", 1)]
        )
        raw_pages = [_RawPage.read(bytes(page.raw)) async for page in cursor]
    # The document holding the fork point, decoded: the page being cut, or the head.
    holder = bson.decode(raw_pages.pop().raw, options) if f < n_pages else head
    if at is None:
        at = next(m for m in holder["messages"] if m["id"] == message_id)
    cut = at["seq"]
    # A run still going stays in the head while its older messages move into pages: a
    # fork at one of those takes the head's runs along.
    later_runs = (holder.get("runs") or []) + (head.get("runs") or [] if f < n_pages else [])
    end = {
        "m_lo": holder["m_lo"] if f < n_pages else head.get("m_cut") or 0,
        "first": min((min(r["mseq"]) for r in later_runs if r.get("mseq")), default=float("inf")),
    }
    c = _copyable(raw_pages, cut, end)
    rebuilt = [bson.decode(p.raw, options) for p in raw_pages[c:]] + [holder]
    if c < len(raw_pages) or f < n_pages:
        first = rebuilt[0]
        prefix = _Prefix(c, first["m_lo"], first["r_lo"], first["before"])
    else:
        prefix = _Prefix(c, head.get("m_cut") or 0, head.get("r_cut") or 0,
                         head.get("before") or L.zero_counts())  # fmt: skip
    messages = [m for doc in rebuilt for m in doc.get("messages") or [] if m["seq"] <= cut]
    runs = [r for doc in rebuilt[:-1] for r in doc.get("runs") or []] + later_runs
    copied = [(page.copy(new_id, ObjectId()), len(page.raw)) for page in raw_pages[:c]]
    session = {
        "_id": new_id,
        "user_id": head["user_id"],
        "agent_id": head.get("agent_id"),
        "title": title if title is not None else head.get("title"),
        "metadata": dict(head.get("metadata") or {}),
        "created_at": t,
        "updated_at": t,
        "forked_from": {"session_id": session_id, "message_id": message_id},
    }
    if session["title"] is None:  # the fork's first user message, as a new session's
        docs = chain((bson.decode(p.raw, options) for p in raw_pages[:c]), rebuilt)
        kept = (m for doc in docs for m in doc["messages"])
        user = next((m for m in kept if m["seq"] <= cut and m["role"] == "user"
                     and m.get("content")), None)  # fmt: skip
        session["title"] = default_title([user]) if user is not None else None
    new_head, pages = _fork_head(session, prefix, messages, runs, cut, store)
    if await store.heads.find_one({"_id": new_id}, {"_id": 1}) is not None:
        raise BadInput(f"a session with id {new_id} exists already")
    await store.pages.delete_many({"session_id": new_id})  # a failed fork's leftovers
    await store.insert_pages([*copied, *((page, page["bytes"]) for page in pages)])
    try:
        await store.heads.insert_one(new_head)
    except DuplicateKeyError:
        await store.pages.delete_many({"session_id": new_id})
        raise BadInput(f"a session with id {new_id} exists already") from None
    await _index_fork(store, session_id, new_head, prefix.m_cut, messages)
    return await store.get_session(new_id, owner=None)


def _fork_head(
    session: Doc, prefix: _Prefix, messages: list[Doc], runs: list[Doc], cut: int,
    store: SessionStore,
) -> tuple[Doc, list[Doc]]:  # fmt: skip
    """The fork's head, and its pages after the copied ones: ``messages`` (stored, up to
    the fork point) and ``runs`` (stored) of the rebuilt part, with their own seqs."""
    kept_runs = {m["run_id"] for m in messages if m.get("run_id") is not None}
    records = []
    for r in readable_runs([r for r in runs if r["id"] in kept_runs], messages):
        if r["status"] not in TERMINAL:
            r = r | {"status": "CANCELLED", "error": FORKED_WHILE_RUNNING}
        records.append(r)
    seqs = [r["seq"] for r in runs if r["id"] in kept_runs]
    stored_runs = stored_run_documents(records, seqs, messages)
    own = L.counts_of(messages, stored_runs)
    total = L.add_counts(prefix.before, own)
    head: Doc = {
        **session,
        "v": L.LAYOUT_VERSION,
        "mkv": L.metadata_terms(session["metadata"]),
        "message_count": total["m"],
        "run_count": total["r"],
        "n_roles": total["roles"],
        "n_status": total["status"],
        "m_next": cut + 1,
        "r_next": max([prefix.r_cut, *(r["seq"] + 1 for r in stored_runs)]),
        "m_cut": prefix.m_cut,
        "r_cut": prefix.r_cut,
        "pages": prefix.pages,
        "before": prefix.before,
        "bytes": _size(messages) + _size(stored_runs),
        "entries": len(messages) + sum(entries(r, True) for r in stored_runs),
        "messages": messages,
        "runs": stored_runs,
    }
    pages = page_out(head, store.bounds) if store.moves else []
    return head, pages


async def _index_fork(
    store: SessionStore, source_id: str, head: Doc, below: int, messages: list[Doc]
) -> None:
    """The fork's messages into the search index: those it copied share the original's
    rows, the rebuilt ones are indexed as stored. A failure loses nothing stored
    (``agent-sessions reindex`` puts them back)."""
    if store.search is None:
        return
    try:
        if below:
            await store.search.share(source_id, head["_id"], below)
        await store.search.add(
            head["_id"], head["user_id"], head.get("agent_id"),
            [(m["seq"], m) for m in messages], fresh=True,
        )  # fmt: skip
    except (apsw.Error, PyMongoError) as exc:
        log.warning("the search index missed messages of session %s: %s", head["_id"], exc)
