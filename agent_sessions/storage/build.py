"""Whole sessions built in memory and stored at once: imports, and sessions written by
the layout before this one (one document each, no ``v``), upgraded."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import bson

from . import layout as L
from .layout import Bounds, Doc
from .model import ROLES, STATUSES
from .paging import entries, page_out

TITLE_CHARS = 80


def default_title(messages: Sequence[Doc]) -> str | None:
    """A title from the first user message with text: its words, at most ``TITLE_CHARS``
    characters, cut at a word where one ends late enough. No model call."""
    text = next((m["content"] for m in messages if m["role"] == "user" and m.get("content")), None)
    if not text:
        return None
    words = " ".join(text.split())
    if len(words) <= TITLE_CHARS:
        return words or None
    cut = words[: TITLE_CHARS - 1]
    space = cut.rfind(" ")
    if space >= TITLE_CHARS // 2:
        cut = cut[:space]
    return cut.rstrip(" ,.;:") + "…"


def build_session(
    session: Doc,
    messages: Sequence[Doc],
    runs: Sequence[Doc],
    bounds: Bounds,
    *,
    paged: bool = True,
) -> tuple[Doc, list[Doc]]:
    """The head and pages of a session: ``session`` its fields (``id`` or ``_id``),
    ``messages`` and ``runs`` in order (records; a run's ``input`` is dropped, its
    ``content`` kept only where its last assistant message does not hold it). With
    ``paged`` false (no transactions), everything stays in the head."""
    stored_messages = []
    for seq, m in enumerate(messages):
        doc = {k: v for k, v in m.items() if k != "seq"}
        doc.setdefault("content", None)
        doc["seq"] = seq
        stored_messages.append(doc)
    stored_runs = stored_run_documents(runs, range(len(runs)), stored_messages)
    head: Doc = {
        "_id": session.get("_id", session.get("id")),
        "v": L.LAYOUT_VERSION,
        **{k: session.get(k) for k in L.SESSION_KEYS if k not in ("message_count", "run_count")},
        "message_count": len(stored_messages),
        "run_count": len(stored_runs),
        "n_roles": [sum(1 for m in stored_messages if m["role"] == r) for r in ROLES],
        "n_status": [sum(1 for r in stored_runs if r["status"] == s) for s in STATUSES],
        "m_next": len(stored_messages),
        "r_next": len(stored_runs),
        "m_cut": 0,
        "r_cut": 0,
        "pages": 0,
        "before": L.zero_counts(),
        "bytes": sum(len(bson.encode(x)) for x in (*stored_messages, *stored_runs)),
        "entries": len(stored_messages) + sum(entries(r, True) for r in stored_runs),
        "messages": stored_messages,
        "runs": stored_runs,
    }
    if head.get("metadata") is None:
        head["metadata"] = {}
    head["mkv"] = L.metadata_terms(head["metadata"])
    if head.get("title") is None:
        head["title"] = default_title(stored_messages)
    for key in ("expires_at", "forked_from"):
        if head.get(key) is None:
            head.pop(key, None)  # absent, not null: the expiry index is sparse
    pages = page_out(head, bounds) if paged else []
    return head, pages


def stored_run_documents(
    runs: Sequence[Doc], seqs: Sequence[int], messages: Sequence[Doc]
) -> list[Doc]:
    """``runs`` (records) as stored with ``seqs``: their references (``mseq``, ``in``,
    ``out``) to the stored ``messages`` that name them, ``content`` kept only where the
    run's last assistant message does not hold it."""
    by_run: dict[str, list[Doc]] = {}
    for m in messages:
        if m.get("run_id") is not None:
            by_run.setdefault(m["run_id"], []).append(m)
    stored = []
    for seq, r in zip(seqs, runs, strict=True):
        doc = {k: v for k, v in r.items() if k not in ("seq", "input", "mseq", "in", "out")}
        mine = by_run.get(r["id"], [])
        doc["seq"] = seq
        doc["mseq"] = [m["seq"] for m in mine]
        user = next((m for m in mine if m["role"] == "user"), None)
        answer = next((m for m in reversed(mine) if m["role"] == "assistant"), None)
        if user is not None:
            doc["in"] = user["seq"]
        if answer is not None:
            doc["out"] = answer["seq"]
        content = doc.get("content")
        if content is None or (answer is not None and answer.get("content") == content):
            doc.pop("content", None)
        doc.setdefault("retrieved_context", [])
        stored.append(doc)
    return stored


def upgrade(doc: Doc, bounds: Bounds, *, paged: bool = True) -> tuple[Doc, list[Doc]]:
    """A session document of the first layout (messages and runs in one document, each
    run with copies of its input and answer) in this layout. Seqs are the old positions,
    so cursors handed out before the upgrade still point where they did."""
    messages = doc.get("messages") or []
    runs = []
    for r in doc.get("runs") or []:
        run: dict[str, Any] = dict(r)
        run.pop("input", None)
        runs.append(run)
    return build_session(doc, messages, runs, bounds, paged=paged)


def readable_runs(runs: list[Doc], messages: list[Doc]) -> list[Doc]:
    """Stored runs as records: ``input``/``content`` resolved from ``messages`` (a run
    whose input or answer is not among them has none), references dropped."""
    text = {m["seq"]: m.get("content") for m in messages}
    out = []
    for r in runs:
        record = {k: v for k, v in r.items() if k not in ("seq", "mseq", "in", "out")}
        record["input"] = text.get(r["in"]) if r.get("in") is not None else None
        if r.get("content") is None:
            record["content"] = text.get(r["out"]) if r.get("out") is not None else None
        out.append(record)
    return out
