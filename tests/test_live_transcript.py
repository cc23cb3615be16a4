"""The transcript a streaming run stores as it goes: what each flush writes (fields of
messages already stored, and new messages), with no database."""

from __future__ import annotations

from agent_sessions.agents.events import Transcript


def test_flushes_set_the_open_message_and_push_new_ones() -> None:
    t = Transcript("r1")
    assert t.pending()[:2] == ({}, [])
    t.delta("Let me ")
    t.delta("look.")
    changes, new, mark = t.pending()
    assert changes == {}
    assert [(m["role"], m["content"]) for m in new] == [("assistant", "Let me look.")]
    t.stored(mark)
    first_id = new[0]["id"]
    # Nothing new: nothing to write.
    assert t.pending()[:2] == ({}, [])
    t.delta(" More")
    changes, new_again, mark = t.pending()
    assert (changes, new_again) == (
        {first_id: {"content": "Let me look. More", "tool_calls": None}},
        [],
    )
    t.stored(mark)
    # A tool call joins the open message; its result closes it; text after is a new one.
    t.tool_call({"id": "c1", "name": "search", "arguments": "{}"})
    t.tool_result("c1", "search", "2 hits")
    t.delta("Found it.")
    changes, new, mark = t.pending()
    assert changes == {first_id: {"content": "Let me look. More",
                                  "tool_calls": [{"id": "c1", "name": "search", "arguments": "{}"}]}}  # fmt: skip
    assert [(m["role"], m["content"]) for m in new] == [
        ("tool", "2 hits"),
        ("assistant", "Found it."),
    ]
    assert new[0]["tool_call_id"] == "c1"
    t.stored(mark)
    assert t.content == "Found it."
    t.end()
    assert t.pending()[:2] == ({}, [])  # nothing changed since: nothing to write


def test_a_completed_answer_ends_with_an_assistant_message() -> None:
    t = Transcript("r1")
    t.end()
    _, new, _ = t.pending()
    assert [(m["role"], m["content"], m["run_id"]) for m in new] == [("assistant", None, "r1")]
    t = Transcript("r2")
    t.tool_result("c1", None, "x")
    t.end()
    assert [m["role"] for m in t.pending()[1]] == ["tool", "assistant"]


def test_a_change_made_while_a_write_is_on_its_way_is_the_next_writes() -> None:
    t = Transcript("r1")
    t.delta("a")
    _, new, mark = t.pending()  # the write of "a" goes out...
    t.delta("b")  # ...and more text comes before it is stored
    t.stored(mark)
    changes, more, mark = t.pending()
    assert changes == {new[0]["id"]: {"content": "ab", "tool_calls": None}}
    assert more == []
    # A write that failed leaves everything for the next one.
    t.delta("c")
    t.pending()
    assert t.pending()[0] == {new[0]["id"]: {"content": "abc", "tool_calls": None}}
