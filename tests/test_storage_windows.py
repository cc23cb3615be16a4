"""Windows over a session split into documents, against the plain-list definition, with no
database: random sessions (with deleted items and a role filter), random splits into pages
and a head, random windows. What a document read returns is modelled as the aggregate
computes it; the database-backed tests check that the aggregate does."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from agent_sessions.storage.model import Window
from agent_sessions.storage.windows import Missing, Segment, assemble, limit, reference


def _segment(window: Window, docs: list[tuple[int, int | None, list]], k: int, match) -> Segment:
    lo, hi, items = docs[k]
    before = sum(1 for _, _, its in docs[:k] for x in its if match(x))
    mine = [x for x in items if match(x)]
    a, b = window.after, window.before
    in_range = [x for x in mine if (a is None or x[0] > a) and (b is None or x[0] < b)]
    n = limit(window)
    picked = in_range[:n] if window.first is not None or window.last is None else in_range[-n:]
    return Segment(
        lo=lo,
        hi=hi,
        before=before,
        own=len(mine),
        items=picked,
        in_range=len(in_range),
        le_after=sum(1 for x in mine if a is not None and x[0] <= a),
        lt_before=sum(1 for x in mine if b is None or x[0] < b),
    )


windows = st.builds(
    Window,
    first=st.none() | st.integers(0, 12),
    after=st.none() | st.integers(-1, 45),
    last=st.none() | st.integers(0, 12),
    before=st.none() | st.integers(0, 45),
).map(
    lambda w: (
        w
        if w.first is not None or w.last is not None
        else Window(first=5, after=w.after, before=w.before)
    )
)


@settings(max_examples=600, deadline=None)
@given(
    n=st.integers(0, 40),
    deleted=st.sets(st.integers(0, 39)),
    cuts=st.sets(st.integers(0, 40), max_size=6),
    roles=st.lists(st.sampled_from("ua"), min_size=40, max_size=40),
    only=st.none() | st.sampled_from("ua"),
    window=windows,
)
def test_assembled_windows_match_the_definition(n, deleted, cuts, roles, only, window):
    window = Window(
        first=window.first,
        after=window.after if window.after is None or window.after >= 0 else None,
        last=window.last,
        before=window.before,
    )
    items = [(s, roles[s]) for s in range(n) if s not in deleted]
    bounds = sorted({0, *(c for c in cuts if c <= n)})
    docs = []
    for i, lo in enumerate(bounds):
        hi = bounds[i + 1] if i + 1 < len(bounds) else None
        docs.append((lo, hi, [x for x in items if x[0] >= lo and (hi is None or x[0] < hi)]))

    def match(x):
        return only is None or x[1] == only

    expected = reference([x for x in items if match(x)], window)
    total = sum(1 for x in items if match(x))
    read = {len(docs) - 1}  # the head is always read first
    for _ in range(len(docs) + 2):
        segments = [_segment(window, docs, k, match) for k in sorted(read)]
        got = assemble(window, total, segments)
        if not isinstance(got, Missing):
            break
        overlapping = {
            k for k, (lo, hi, _) in enumerate(docs) if lo < got.hi and (hi is None or hi > got.lo)
        }
        assert overlapping - read, (got, read)  # every Missing asks for something new
        read |= overlapping
    assert not isinstance(got, Missing)
    assert (got.items, got.total, got.has_next, got.has_previous) == (
        expected.items,
        expected.total,
        expected.has_next,
        expected.has_previous,
    )
