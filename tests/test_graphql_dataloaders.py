"""Per-request dataloaders and look-ahead: database commands and bytes do not grow with
the number of sessions, and follow the fields asked for."""

from __future__ import annotations

import pytest

from .helpers import CommandLog, GraphQLClient, record

NESTED = """
query {
  sessions(first: 50) {
    nodes {
      messages(last: 5) { nodes { content retrievedContext { score } } }
      runs(last: 3) { nodes { status } }
    }
  }
}
"""


async def _sessions(gql: GraphQLClient, n: int) -> None:
    for i in range(n):
        await record(
            gql,
            sessionId=f"s{i}",
            retrievedContext=[{"id": f"c{j}", "text": "t", "score": j / 10} for j in range(3)],
        )


@pytest.mark.parametrize("n", [5, 50])
async def test_nested_list_costs_four_commands_whatever_n(
    gql: GraphQLClient, commands: CommandLog, n: int
) -> None:
    await _sessions(gql, n)
    commands.reset()
    data = await gql.data(NESTED)
    nodes = data["sessions"]["nodes"]
    assert len(nodes) == n
    assert all(len(s["messages"]["nodes"]) == 2 for s in nodes)
    assert all(
        s["messages"]["nodes"][1]["retrievedContext"]
        == [{"score": 0.0}, {"score": 0.1}, {"score": 0.2}]
        for s in nodes
    )
    # one find for the page, one aggregate each for messages, chunks and runs
    assert commands.names == ["find", "aggregate", "aggregate", "aggregate"]


async def test_aliases_of_sessions_are_one_command(
    gql: GraphQLClient, commands: CommandLog
) -> None:
    await _sessions(gql, 3)
    commands.reset()
    data = await gql.data(
        '{ a: session(id: "s0") { id } b: session(id: "s1") { id } c: session(id: "nope") { id } }'
    )
    assert data == {"a": {"id": "s0"}, "b": {"id": "s1"}, "c": None}
    assert commands.names == ["find"]


async def test_list_of_ids_never_loads_messages(gql: GraphQLClient, commands: CommandLog) -> None:
    big = "x" * 200_000
    await record(gql, sessionId="big", messages=[{"role": "USER", "content": big}])
    commands.reset()
    data = await gql.data("{ sessions { nodes { id updatedAt } } }")
    assert [n["id"] for n in data["sessions"]["nodes"]] == ["big"]
    assert commands.names == ["find"]
    assert commands.reply_bytes[0] < 2_000


async def test_last_messages_is_a_slice_not_the_whole_document(
    gql: GraphQLClient, commands: CommandLog
) -> None:
    big = "x" * 100_000
    for i in range(5):
        await record(
            gql,
            sessionId="s",
            messages=[{"role": "USER", "content": big}, {"role": "ASSISTANT", "content": f"a{i}"}],
        )
    commands.reset()
    data = await gql.data('{ session(id: "s") { messages(last: 1) { nodes { content } } } }')
    assert data["session"]["messages"]["nodes"] == [{"content": "a4"}]
    assert commands.names == ["aggregate"]  # the session and its window, in one read
    assert sum(commands.reply_bytes) < 2_000  # not the 500 kB of user messages


async def test_chunk_fields_follow_the_selection(gql: GraphQLClient, commands: CommandLog) -> None:
    chunks = [{"id": f"c{j}", "text": "t" * 5_000, "score": 0.5} for j in range(10)]
    run = await record(gql, sessionId="s", retrievedContext=chunks)
    commands.reset()
    query = 'query($r: ID!) { run(sessionId: "s", runId: $r) { retrievedContext { id score } } }'
    data = await gql.data(query, {"r": run["id"]})
    assert len(data["run"]["retrievedContext"]) == 10
    assert sum(commands.reply_bytes) < 2_000  # the 50 kB of chunk text stayed in the database
    assert commands.names == ["aggregate"]  # the run and its chunks in one read


async def test_a_chat_view_with_citations_is_one_command(
    gql: GraphQLClient, commands: CommandLog
) -> None:
    for i in range(3):
        await record(
            gql,
            sessionId="s",
            retrievedContext=[
                {"id": f"c{i}-{j}", "text": "t" * 1000, "score": j / 10} for j in range(3)
            ],
        )
    commands.reset()
    query = """{ session(id: "s") { title messages(last: 4) { totalCount nodes { role content
      retrievedContext(minScore: 0.1) { id score } } }
      runs(last: 1) { nodes { status retrievedContext { id } } } } }"""
    data = await gql.data(query)
    session = data["session"]
    assert [m["role"] for m in session["messages"]["nodes"]] == [
        "USER",
        "ASSISTANT",
        "USER",
        "ASSISTANT",
    ]
    assert session["messages"]["nodes"][1]["retrievedContext"] == [
        {"id": "c1-1", "score": 0.1},
        {"id": "c1-2", "score": 0.2},
    ]
    assert session["messages"]["nodes"][0]["retrievedContext"] == []
    assert session["runs"]["nodes"] == [
        {
            "status": "COMPLETED",
            "retrievedContext": [{"id": "c2-0"}, {"id": "c2-1"}, {"id": "c2-2"}],
        }
    ]
    assert commands.names == ["aggregate"]
    assert sum(commands.reply_bytes) < 2_000  # no chunk text was read


async def test_a_missing_or_foreign_session_in_one_read_is_null(
    gql: GraphQLClient, commands: CommandLog
) -> None:
    commands.reset()
    data = await gql.data(
        '{ session(id: "nope") { messages { nodes { content } } runs { totalCount } } }'
    )
    assert data == {"session": None}
    assert commands.names == ["aggregate"]


@pytest.mark.parametrize("n", [2, 8])
async def test_a_runs_session_under_a_list_of_runs_is_read_once(
    gql: GraphQLClient, commands: CommandLog, n: int
) -> None:
    for _ in range(n):
        await record(gql, sessionId="s")
    commands.reset()
    data = await gql.data(
        '{ session(id: "s") { runs { nodes { session { id messages { totalCount } } } } } }'
    )
    nodes = data["session"]["runs"]["nodes"]
    assert nodes == [{"session": {"id": "s", "messages": {"totalCount": 2 * n}}}] * n
    # the outer session with its runs, then the runs' (one) session with its messages
    assert commands.names == ["aggregate", "aggregate"]
