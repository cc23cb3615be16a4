"""Windows over a session's messages or runs, when the session spans several documents.

A session's items (messages, or runs) are numbered by ``seq``. Its documents split the
seq line into consecutive intervals: pages ``[lo, hi)`` in order, then the head ``[lo,
∞)``. Each document knows how many items matching a filter lie in all the documents
before it (``before``) and in itself (``own``), and the head knows the session's total;
so a window and its ``hasNextPage``/``hasPreviousPage`` can be answered from the one or
two documents that hold it, never from all of them.

``assemble`` is that answer, in plain Python over what each document read returned
(``Segment``); ``reference`` is the same answer over a plain sorted list, the definition
the tests hold ``assemble`` to. No database here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .model import Page, Window


@dataclass(slots=True)
class Segment:
    """One document's part of a window.

    ``items``: the matching items in the window's range ``(after, before)``, at most
    ``limit`` of them taken from the front (forward windows) or the back (``last``-only
    windows); ``in_range`` counts them all. ``le_after``: matching items with seq ≤
    ``after`` (0 without it); ``lt_before``: matching items with seq < ``before`` (``own``
    without it).
    """

    lo: int
    hi: int | None  # None: the head, open-ended
    before: int
    own: int
    items: list[tuple[int, Any]]
    in_range: int
    le_after: int = 0
    lt_before: int = 0

    def holds(self, seq: int) -> bool:
        return self.lo <= seq and (self.hi is None or seq < self.hi)


@dataclass(frozen=True, slots=True)
class Missing:
    """The documents read do not hold the window: read the ones covering ``[lo, hi)``."""

    lo: int
    hi: int


def forward(window: Window) -> bool:
    """Whether the window is collected from its start (``first``) or from its end."""
    return window.first is not None or window.last is None


def limit(window: Window) -> int:
    """How many in-range items one document must return at most."""
    if forward(window):
        return window.first if window.first is not None else 1 << 30
    assert window.last is not None
    return window.last


def assemble(window: Window, total: int, segments: Sequence[Segment]) -> Page | Missing:
    """The window, from the documents read; or the seq range still to read.

    ``segments`` may come in any order and need not be adjacent; where the window runs
    into a document that was not read, the answer is the seq range to read next.
    """
    segs = sorted(segments, key=lambda s: s.lo)
    a, b = window.after, window.before

    def containing(seq: int) -> Segment | Missing:
        for s in segs:
            if s.holds(seq):
                return s
        return Missing(seq, seq + 1)

    matching_le_a = 0
    if a is not None:
        seg = containing(a)
        if isinstance(seg, Missing):
            return seg
        matching_le_a = seg.before + seg.le_after
    matching_ge_b = 0
    if b is not None:
        seg = containing(b)
        if isinstance(seg, Missing):
            return seg
        matching_ge_b = total - (seg.before + seg.lt_before)
    in_range = max(total - matching_le_a - matching_ge_b, 0)

    if forward(window):
        want = in_range if window.first is None else min(window.first, in_range)
        collected = _collect(segs, a + 1 if a is not None else 0, want, True)
    else:
        assert window.last is not None
        want = min(window.last, in_range)
        end = b - 1 if b is not None else None
        collected = _collect(segs, end, want, False)
    if isinstance(collected, Missing):
        return collected
    items = collected
    if window.first is not None and window.last is not None:
        items = items[max(len(items) - window.last, 0) :] if window.last else []

    if items:
        before_first = (want - len(items)) if window.last is not None else 0
        after_last = (in_range - want) if window.first is not None else 0
        if window.first is None and window.last is not None:
            before_first, after_last = in_range - want, 0
        has_next = after_last + matching_ge_b > 0
        has_previous = before_first + matching_le_a > 0
    else:
        has_next = (window.first is not None and in_range > window.first) or (
            b is not None and matching_ge_b > 0
        )
        has_previous = (window.last is not None and in_range > window.last) or (
            a is not None and matching_le_a > 0
        )
    return Page(items, total, has_next, has_previous)


def _collect(
    segs: list[Segment], start: int | None, want: int, ahead: bool
) -> list[tuple[int, Any]] | Missing:
    """``want`` in-range items walking from ``start`` (``None``: the very end) forward or
    backward through adjacent segments; ``Missing`` where an unread document lies."""
    if want == 0:
        return []
    order = segs if ahead else segs[::-1]
    if start is None:
        index = 0  # backward from the end: the head
        if order[0].hi is not None:
            return Missing(order[0].hi, order[0].hi + max(want, 1))
    else:
        found = next((i for i, s in enumerate(order) if s.holds(start)), None)
        if found is None:
            return Missing(start, start + 1)
        index = found
    out: list[tuple[int, Any]] = []
    previous: Segment | None = None
    for seg in order[index:]:
        if previous is not None and not _adjacent(previous, seg, ahead):
            return _missing_after(previous, want - len(out), ahead)
        take = seg.items if ahead else seg.items[::-1]
        out.extend(take[: want - len(out)])
        if len(out) >= want:
            break
        if len(seg.items) < seg.in_range:
            raise AssertionError("a segment truncated its items below the window's size")
        previous = seg
    else:
        last = order[-1]
        if (ahead and last.hi is not None) or (not ahead and last.lo > 0):
            return _missing_after(last, want - len(out), ahead)
        # The ends of the seq line: nothing more exists than what was counted.
    return out if ahead else out[::-1]


def _adjacent(previous: Segment, seg: Segment, ahead: bool) -> bool:
    return previous.hi == seg.lo if ahead else seg.hi == previous.lo


def _missing_after(seg: Segment, need: int, ahead: bool) -> Missing:
    need = max(need, 1)
    if ahead:
        assert seg.hi is not None
        return Missing(seg.hi, seg.hi + need)
    return Missing(max(seg.lo - need, 0), seg.lo)


def reference(items: Sequence[tuple[int, Any]], window: Window) -> Page:
    """The window over ``items`` (the matching items, sorted by seq), as the API defines it."""
    lo = window.after + 1 if window.after is not None else None
    hi = window.before
    in_range = [x for x in items if (lo is None or x[0] >= lo) and (hi is None or x[0] < hi)]
    picked = in_range
    if window.first is not None:
        picked = picked[: window.first]
    if window.last is not None:
        picked = picked[max(len(picked) - window.last, 0) :] if window.last else []
    first_seq = items[0][0] if items else None
    last_seq = items[-1][0] if items else None
    if picked:
        has_next = last_seq is not None and picked[-1][0] < last_seq
        has_previous = first_seq is not None and picked[0][0] > first_seq
    else:
        has_next = (window.first is not None and len(in_range) > window.first) or (
            hi is not None and last_seq is not None and last_seq >= hi
        )
        has_previous = (window.last is not None and len(in_range) > window.last) or (
            window.after is not None and first_seq is not None and first_seq <= window.after
        )
    return Page(list(picked), len(items), has_next, has_previous)
