"""What storage hands up and takes in: typed records, read specs and their results.

Records are ``TypedDict``s: at run time they are plain dicts (the compiled GraphQL path
builds responses from them directly), and their keys are the product's own names
(``run_id``, ``created_at``, ``retrieved_context``). How they are laid out in MongoDB
documents is ``layout``'s business alone.

Positions: every message and every run has a ``seq``, its number in the session (0, 1,
2, … in the order they were added). A seq never changes, wherever the item is stored and
whatever is deleted around it, so it is what cursors carry.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal, NotRequired, TypedDict

Role = Literal["user", "assistant", "tool", "system"]
RunStatus = Literal["QUEUED", "RUNNING", "COMPLETED", "FAILED", "CANCELLED"]
ROLES: tuple[Role, ...] = ("user", "assistant", "tool", "system")
STATUSES: tuple[RunStatus, ...] = ("QUEUED", "RUNNING", "COMPLETED", "FAILED", "CANCELLED")
TERMINAL: frozenset[str] = frozenset({"COMPLETED", "FAILED", "CANCELLED"})

JSONObject = dict[str, Any]


class ToolCallRecord(TypedDict):
    id: str
    name: str
    arguments: str | None


@dataclass(frozen=True, slots=True)
class About:
    """What a record field means, for the layers that show it: its description (``input``:
    the write's wording, where it differs), whether it is an identifier (GraphQL's ``ID``),
    and the value that stands for an absent or null one."""

    description: str
    input: str = ""
    identifier: bool = False
    default: Any = None


class ChunkRecord(TypedDict, total=False):
    """A retrieved chunk: the one declaration of its fields. Stored under these keys; the
    field map (``resolvers.fields``) derives from it the GraphQL type and input, the REST
    shape and so the OpenAPI document. A new field is a line here (and its tests)."""

    id: Annotated[str, About("The chunk's id.", identifier=True)]
    text: Annotated[str, About("The chunk's text.")]
    score: Annotated[
        float | None,
        About(
            "The chunk's final score (the reranker's, when there is one).",
            input="The final score (the reranker's, when there is one).",
        ),
    ]
    retrieval_score: Annotated[float | None, About("The retriever's score.")]
    reranker_score: Annotated[float | None, About("The reranker's score.")]
    source_id: Annotated[
        str | None, About("The id of the document the chunk comes from.", identifier=True)
    ]
    source_name: Annotated[str | None, About("The name of that document, such as Q3-2025.pdf.")]
    knowledge_base_id: Annotated[str | None, About("The knowledge base's id.", identifier=True)]
    kb_name: Annotated[
        str | None,
        About(
            "The knowledge base's name, such as Finance docs.", input="The knowledge base's name."
        ),
    ]
    indexing_strategy: Annotated[
        str | None, About("How the source was indexed, such as chunk_embed.")
    ]
    meta: Annotated[
        JSONObject | None,
        About(
            "Anything else recorded with the chunk (a JSON object).",
            input="Anything else to keep with the chunk (a JSON object).",
        ),
    ]
    included_in_context: Annotated[
        bool,
        About(
            "Whether the chunk went into the model's context (false: retrieved, then left out).",
            input="Whether the chunk went into the model's context.",
            default=True,
        ),
    ]


class ReasoningRecord(TypedDict):
    enabled: bool
    effort: str | None
    budget_tokens: int | None


class UsageRecord(TypedDict):
    input_tokens: int | None
    output_tokens: int | None
    reasoning_tokens: int | None
    total_tokens: int | None


class MessageRecord(TypedDict, total=False):
    seq: int
    id: str
    role: Role
    content: str | None
    run_id: str | None
    created_at: datetime
    name: NotRequired[str]
    tool_calls: NotRequired[list[ToolCallRecord]]
    tool_call_id: NotRequired[str]


class RunRecord(TypedDict, total=False):
    """A run as read. ``input`` and ``content`` are derived from the run's messages (the
    first user message, the last assistant message) unless the run was recorded with a
    final answer of its own."""

    seq: int
    id: str
    agent_id: str | None
    status: RunStatus
    input: str | None
    content: str | None
    error: str | None
    reasoning: ReasoningRecord | None
    usage: UsageRecord | None
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    retrieval_diagnostics: JSONObject | None
    retrieved_context: list[ChunkRecord]


class ForkRecord(TypedDict):
    """Where a forked session came from: the session and the message it was forked at."""

    session_id: str
    message_id: str


class SessionRecord(TypedDict, total=False):
    id: str
    user_id: str
    agent_id: str | None
    title: str | None
    metadata: JSONObject | None
    created_at: datetime
    updated_at: datetime
    message_count: int
    run_count: int
    expires_at: datetime | None
    forked_from: ForkRecord | None


class NewSession(TypedDict):
    """The fields a write gives a session it creates."""

    user_id: str
    agent_id: str | None
    title: NotRequired[str | None]
    metadata: NotRequired[JSONObject]


# The fields a read may ask for (``None`` everywhere means all of them).
SESSION_FIELDS = frozenset(SessionRecord.__annotations__) - {"id"}
MESSAGE_FIELDS = frozenset(MessageRecord.__annotations__) - {"seq"}
RUN_FIELDS = frozenset(RunRecord.__annotations__) - {"seq"}
CHUNK_FIELDS = frozenset(ChunkRecord.__annotations__)


# --- read specs -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Window:
    """A Relay-style window over seqs: ``after``/``before`` are exclusive seqs; ``first``
    is applied before ``last``."""

    first: int | None = None
    after: int | None = None
    last: int | None = None
    before: int | None = None


@dataclass(frozen=True, slots=True)
class ChunkSpec:
    """Which chunks of a run, and which of their fields (``None``: all)."""

    fields: frozenset[str] | None = None
    included_only: bool = False
    min_score: float | None = None


@dataclass(frozen=True, slots=True)
class MessageSpec:
    window: Window = Window()
    roles: tuple[str, ...] | None = None
    fields: frozenset[str] | None = None


@dataclass(frozen=True, slots=True)
class RunSpec:
    window: Window = Window()
    statuses: tuple[str, ...] | None = None
    fields: frozenset[str] | None = None  # "retrieved_context" among them brings ``chunks``
    chunks: ChunkSpec = ChunkSpec()


@dataclass(frozen=True, slots=True)
class SessionRead:
    """Everything one request reads from one session, in one or two commands.

    ``messages``: windows of messages, each with the chunk filters to apply to the runs
    of its assistant messages. ``runs``: windows of runs, each with (at most one) chunk
    filter for every run in it. ``run_lookups``: runs by id, with their fields and
    optional chunk filter.
    """

    fields: frozenset[str]
    messages: tuple[tuple[MessageSpec, tuple[ChunkSpec, ...]], ...] = ()
    runs: tuple[RunSpec, ...] = ()
    run_lookups: tuple[tuple[str, RunSpec], ...] = ()


@dataclass(slots=True)
class Page:
    """A window of a session's messages or runs: ``items`` are ``(seq, record)`` pairs in
    order; ``total`` counts every item the filter matches, in or out of the window."""

    items: list[tuple[int, Any]]
    total: int
    has_next: bool
    has_previous: bool


EMPTY_PAGE = Page([], 0, False, False)


@dataclass(slots=True)
class SessionView:
    """What a ``SessionRead`` found: the session's fields and each window or lookup, in
    the read's order; ``chunks`` by (run id, chunk filter) for every run the windows or
    lookups brought chunks for."""

    doc: SessionRecord
    message_pages: list[Page]
    run_pages: list[Page]
    runs: list[RunRecord | None]
    chunks: dict[tuple[str, ChunkSpec], list[ChunkRecord]]


@dataclass(frozen=True, slots=True)
class SessionFilter:
    user_id: str | None = None
    agent_id: str | None = None
    updated_after: datetime | None = None
    updated_before: datetime | None = None
    # Metadata key → the values that match it (any of them); every key must match.
    metadata: tuple[tuple[str, tuple[Any, ...]], ...] = ()


@dataclass(slots=True)
class SessionSlice:
    """One keyset page of sessions, newest ``updated_at`` first."""

    sessions: list[SessionRecord]
    has_more: bool  # more sessions beyond this page, in the direction of travel
