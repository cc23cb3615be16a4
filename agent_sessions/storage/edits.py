"""Changes to a stored session beyond appends: deleting one run, forking at a message.

Both work on the head-and-pages layout of ``layout``: a deleted run leaves gaps in the
seqs (they never change) and every counter the windows rely on (the head's totals and
``before``, each page's ``before`` and ``own``) is corrected in the same transaction; a
fork is built whole in memory by ``build`` and stored as an import is.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import bson

from agent_sessions.errors import BadInput, NotFound

from . import layout as L
from .build import readable_runs
from .layout import Doc
from .model import TERMINAL, SessionRecord

if TYPE_CHECKING:
    from .sessions import SessionStore

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
    not ``owner``'s; ``NotFound`` when it has no such message. Message and run ids are
    kept (they are unique within a session); seqs start again from 0."""
    head = await store.heads.find_one(_scope(owner, session_id))
    if head is None:
        return None
    messages: list[Doc] = []
    runs: list[Doc] = []
    in_head = any(m["id"] == message_id for m in head.get("messages") or [])
    found = in_head
    if head.get("pages"):
        cursor = store.pages.find(
            {"session_id": session_id, "n": {"$lt": head["pages"]}},
            {"messages": 1, "runs": 1},
            sort=[("n", 1)],
        )
        async for page in cursor:
            messages += page.get("messages") or []
            runs += page.get("runs") or []
            if not in_head and any(m["id"] == message_id for m in page.get("messages") or []):
                found = True
                break  # the pages beyond it are not needed
    if in_head or not found:
        messages += head.get("messages") or []
        runs += head.get("runs") or []
    cut = next((i for i, m in enumerate(messages) if m["id"] == message_id), None)
    if cut is None:
        raise NotFound(MESSAGE_NOT_FOUND)
    kept = messages[: cut + 1]
    kept_runs = {m["run_id"] for m in kept if m.get("run_id") is not None}
    fork_runs = []
    for r in readable_runs([r for r in runs if r["id"] in kept_runs], kept):
        if r["status"] not in TERMINAL:
            r = r | {"status": "CANCELLED", "error": FORKED_WHILE_RUNNING}
        fork_runs.append(r)
    session = {
        "id": new_id,
        "user_id": head["user_id"],
        "agent_id": head.get("agent_id"),
        "title": title if title is not None else head.get("title"),
        "metadata": dict(head.get("metadata") or {}),
        "created_at": t,
        "updated_at": t,
        "forked_from": {"session_id": session_id, "message_id": message_id},
    }
    fork_messages = [{k: v for k, v in m.items() if k != "seq"} for m in kept]
    if not await store.import_session(session, fork_messages, fork_runs):
        raise BadInput(f"a session with id {new_id} exists already")
    return await store.get_session(new_id, owner=None)
