"""Moving a head's older turns into pages, so the head stays bounded.

A move runs in a transaction: read the head, cut it, insert the pages, shorten the head.
Readers see the session before or after, never between; a concurrent append or update
of the head makes the transaction conflict and start again on the new head; a crash at
any point leaves either nothing or everything. (A deployment without transactions, such
as a standalone mongod, never moves: its sessions stay whole documents, and the server
says so at start-up.)
"""

from __future__ import annotations

import bisect
import logging
from dataclasses import dataclass, field
from typing import Any

import bson
from bson import ObjectId

from .layout import Bounds, Doc, add_counts, counts_of, zero_counts
from .model import TERMINAL

log = logging.getLogger("agent_sessions.storage")


def entries(item: Doc, is_run: bool) -> int:
    """What an item costs the head: itself, and for a run each of its chunks."""
    return 1 + len(item.get("retrieved_context") or ()) if is_run else 1


def over(head: Doc, bounds: Bounds) -> bool:
    return (head.get("entries") or 0) > bounds.head_entries or (
        head.get("bytes") or 0
    ) > bounds.head_bytes


@dataclass(frozen=True, slots=True)
class Cut:
    """Move ``messages[:k]`` and ``runs[:j]`` of the head."""

    k: int
    j: int


def plan_cut(messages: list[Doc], runs: list[Doc], bounds: Bounds) -> Cut:
    """Where to cut a head that outgrew ``bounds``: keep the newest turns that fit in half
    of each bound. A cut between turns (every moved message with its run, every moved run
    finished and with all its messages) is preferred when one keeps at most three quarters
    of each bound; failing one, the cut is made where the sizes say, and reads find the
    turn it splits in two documents."""
    keep_entries, keep_bytes = bounds.head_entries // 2, bounds.head_bytes // 2
    m_entries = [1] * len(messages)
    m_bytes = [len(bson.encode(m)) for m in messages]
    r_entries = [entries(r, True) for r in runs]
    r_bytes = [len(bson.encode(r)) for r in runs]

    def suffix(values: list[int]) -> list[int]:
        out = [0] * (len(values) + 1)
        for i in range(len(values) - 1, -1, -1):
            out[i] = out[i + 1] + values[i]
        return out

    me, mb, re, rb = suffix(m_entries), suffix(m_bytes), suffix(r_entries), suffix(r_bytes)
    terminal_prefix = 0
    while terminal_prefix < len(runs) and runs[terminal_prefix]["status"] in TERMINAL:
        terminal_prefix += 1

    # Both in one pass each (a whole imported session is cut many times over):
    # ``last_seq[j]``, the highest message seq among runs[:j] (never decreasing), gives
    # the longest prefix of runs whose messages all lie before a message; ``reach[k]``,
    # the furthest run position that messages[:k] belong to, whether a cut is clean.
    last_seq = [-1]
    for r in runs:
        last_seq.append(max([last_seq[-1], *(r.get("mseq") or ())]))
    position = {r["id"]: j for j, r in enumerate(runs)}
    reach = [-1]
    for m in messages:
        run_id = m.get("run_id")
        at = -1 if run_id is None else position.get(run_id, len(runs))
        reach.append(max(reach[-1], at))

    def runs_before(k: int) -> int:
        """The longest prefix of runs whose messages all lie before ``messages[k]``."""
        if k >= len(messages):
            return len(runs)
        return bisect.bisect_left(last_seq, messages[k]["seq"]) - 1

    cuts = []  # (k, j, kept entries, kept bytes, clean)
    for k in range(len(messages) + 1):
        j = runs_before(k)
        clean = j <= terminal_prefix and reach[k] < j
        cuts.append((k, j, me[k] + re[j], mb[k] + rb[j], clean))
    moving = [c for c in cuts if c[0] or c[1]]
    if not moving:
        return Cut(0, 0)
    fitting = [c for c in moving if c[2] <= keep_entries and c[3] <= keep_bytes]
    target = fitting[0] if fitting else moving[-1]  # the most that fits in half
    roomy = [
        c for c in moving if c[4] and c[2] <= keep_entries * 3 // 2 and c[3] <= keep_bytes * 3 // 2
    ]
    below = [c for c in roomy if c[0] <= target[0]]
    above = [c for c in roomy if c[0] > target[0]]
    chosen = below[-1] if below else above[0] if above else target
    return Cut(chosen[0], chosen[1])


@dataclass(slots=True)
class _Page:
    messages: list[Doc] = field(default_factory=list)
    runs: list[Doc] = field(default_factory=list)
    bytes: int = 0


def split_pages(head: Doc, cut: Cut, bounds: Bounds) -> tuple[list[Doc], Doc]:
    """The page documents for ``cut`` of ``head``, and the head's new cut fields."""
    messages, runs = head["messages"][: cut.k], head["runs"][: cut.j]
    m_cut = head["messages"][cut.k]["seq"] if cut.k < len(head["messages"]) else head["m_next"]
    r_cut = head["runs"][cut.j]["seq"] if cut.j < len(head["runs"]) else head["r_next"]
    # Each run goes with its first message (runs stay in seq order across pages).
    index_of = {m["seq"]: i for i, m in enumerate(messages)}
    anchors, last = [], 0
    for r in runs:
        first = (r.get("mseq") or [None])[0]
        at = index_of.get(first, len(messages)) if first is not None else len(messages)
        last = max(last, at)
        anchors.append(last)
    pages: list[_Page] = [_Page()]
    page_m_lo, page_r_lo = head.get("m_cut") or 0, head.get("r_cut") or 0
    bounds_m: list[int] = [page_m_lo]  # where each page's intervals start
    bounds_r: list[int] = [page_r_lo]
    events: list[tuple[str, Doc]] = []
    ri = 0
    for i, m in enumerate(messages):
        while ri < len(runs) and anchors[ri] <= i:
            events.append(("r", runs[ri]))
            ri += 1
        events.append(("m", m))
    events += [("r", r) for r in runs[ri:]]
    for kind, item in events:
        size = len(bson.encode(item))
        page = pages[-1]
        span_m = item["seq"] + 1 - page_m_lo if kind == "m" else 0
        span_r = item["seq"] + 1 - page_r_lo if kind == "r" else 0
        full = page.messages or page.runs
        if full and (
            page.bytes + size > bounds.page_bytes
            or span_m > bounds.page_seqs
            or span_r > bounds.page_seqs
        ):
            # Close this page just before the item: its intervals end where the item is.
            page_m_lo = item["seq"] if kind == "m" else _next_seq(events, item, "m", m_cut)
            page_r_lo = item["seq"] if kind == "r" else _next_seq(events, item, "r", r_cut)
            bounds_m.append(page_m_lo)
            bounds_r.append(page_r_lo)
            pages.append(_Page())
            page = pages[-1]
        (page.messages if kind == "m" else page.runs).append(item)
        page.bytes += size
    bounds_m.append(m_cut)
    bounds_r.append(r_cut)
    before = head.get("before") or zero_counts()
    docs = []
    for p, page in enumerate(pages):
        own = counts_of(page.messages, page.runs)
        docs.append(
            {
                "_id": ObjectId(),
                "session_id": head["_id"],
                "user_id": head["user_id"],
                "n": (head.get("pages") or 0) + p,
                "m_lo": bounds_m[p],
                "m_hi": bounds_m[p + 1],
                "r_lo": bounds_r[p],
                "r_hi": bounds_r[p + 1],
                "before": before,
                "own": own,
                "bytes": page.bytes,
                "messages": page.messages,
                "runs": page.runs,
            }
        )
        before = add_counts(before, own)
    moved_bytes = sum(p.bytes for p in pages)
    moved_entries = len(messages) + sum(entries(r, True) for r in runs)
    new = {
        "m_cut": m_cut,
        "r_cut": r_cut,
        "pages": (head.get("pages") or 0) + len(pages),
        "before": before,
        "bytes": max((head.get("bytes") or 0) - moved_bytes, 0),
        "entries": max((head.get("entries") or 0) - moved_entries, 0),
    }
    return docs, new


def _next_seq(events: list[tuple[str, Doc]], item: Doc, kind: str, end: int) -> int:
    """The seq of the first ``kind`` item at or after ``item`` in ``events`` (``end`` if
    none): where a page boundary falls on that sequence."""
    seen = False
    for k, it in events:
        if it is item:
            seen = True
        if seen and k == kind:
            return int(it["seq"])
    return end


async def move_older_turns(
    heads: Any, pages: Any, session_id: str, bounds: Bounds, session: Any
) -> bool:
    """One move, inside ``session``'s transaction; whether anything moved."""
    head = await heads.find_one({"_id": session_id}, session=session)
    if head is None or not over(head, bounds):
        return False  # deleted, or moved by someone else meanwhile
    cut = plan_cut(head["messages"], head["runs"], bounds)
    if cut.k == 0 and cut.j == 0:
        return False
    docs, new = split_pages(head, cut, bounds)
    await pages.insert_many(docs, session=session)
    update = [
        {
            "$set": {
                "messages": {"$slice": ["$messages", cut.k, {"$max": [{"$size": "$messages"}, 1]}]},
                "runs": {"$slice": ["$runs", cut.j, {"$max": [{"$size": "$runs"}, 1]}]},
                **{key: {"$literal": value} for key, value in new.items()},
            }
        }
    ]
    result = await heads.update_one(
        {"_id": session_id, "pages": head.get("pages") or 0}, update, session=session
    )
    if result.matched_count != 1:
        raise _Retry
    log.debug(
        "session %s: moved %d messages and %d runs into %d page(s)",
        session_id,
        cut.k,
        cut.j,
        len(docs),
    )
    return True


class _Retry(Exception):
    """The head changed under the move; the transaction is aborted and tried again."""


def page_out(head: Doc, bounds: Bounds) -> list[Doc]:
    """Cut ``head`` (a whole session built in memory: an import, an upgrade) until it fits
    its bounds; the pages, in order. ``head`` is left as the new head."""
    out: list[Doc] = []
    while over(head, bounds):
        cut = plan_cut(head["messages"], head["runs"], bounds)
        if cut.k == 0 and cut.j == 0:
            break
        docs, new = split_pages(head, cut, bounds)
        head["messages"] = head["messages"][cut.k :]
        head["runs"] = head["runs"][cut.j :]
        head.update(new)
        out += docs
    return out
