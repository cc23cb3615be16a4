"""The read planner: from a ``session(id)`` or ``run(sessionId, runId)`` selection to the
single storage read that answers all of it (``storage.model.SessionRead``).

Two steps, because compiled plans keep the first across requests:

- ``plan_session``/``plan_run`` walk the selection (``lookahead.Walk``) into a
  ``SessionShape``: which session fields, which ``messages``/``runs`` windows, which run
  lookups, which ``retrievedContext`` sites under them, each with the field node its
  arguments come from;
- ``SessionShape.read`` evaluates the arguments of one request into the read, and says
  under which loader key each part of the answer belongs and which chunk filter each
  site asked for.

Compiled execution builds its answer from that read (``compiled``); normal execution reads
it in ``session(id)``'s resolver and primes the request's loaders with the parts
(``prime``), under exactly the keys the nested resolvers compute from their own arguments
and selections (the same walker, the same spec functions): a primed answer is used, and a
selection this planner does not foresee is simply loaded as usual.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from graphql import FieldNode, GraphQLError, GraphQLObjectType

from agent_sessions.errors import BadInput
from agent_sessions.storage.model import ChunkSpec, MessageSpec, RunSpec, SessionRead, SessionView

from .lookahead import (
    CHUNK_READS,
    MESSAGE_READS,
    RUN_READS,
    SESSION_READS,
    Walk,
)
from .specs import argument_values, chunk_spec, message_spec, run_spec

SiteKey = tuple[int, ...]  # the ids of a field group's nodes: which group a site is


def site_key(nodes: Iterable[FieldNode]) -> SiteKey:
    return tuple(map(id, nodes))


@dataclass(slots=True)
class Arguments:
    """A field instance's arguments, evaluated per request (they may use variables)."""

    node: FieldNode
    parent: GraphQLObjectType

    def values(self, walk: Walk) -> dict[str, Any]:
        return argument_values(self.node, self.parent, walk.variables)


@dataclass(slots=True)
class ChunkSite:
    """A ``retrievedContext`` field group: its chunk fields and its arguments."""

    index: int
    fields: frozenset[str]
    args: Arguments


@dataclass(slots=True)
class WindowSite:
    """A session's ``messages`` or ``runs`` field group."""

    index: int
    kind: str  # "m" or "r"
    args: Arguments
    fields: frozenset[str]  # stored item fields
    chunk_sites: list[ChunkSite]


@dataclass(slots=True)
class LookupSite:
    """A ``Session.run(id)`` (or ``Query.run``) field group: one run by id."""

    index: int
    args: Arguments
    fields: frozenset[str]  # stored run fields, as ``run``'s resolver keys its loader
    chunk_sites: list[ChunkSite]

    def run_id(self, walk: Walk) -> str:
        args = self.args.values(walk)
        return args["id"] if "id" in args else args["runId"]


@dataclass(slots=True)
class SessionShape:
    """What one session object of a response needs from storage, before arguments."""

    fields: frozenset[str] = frozenset()
    windows: list[WindowSite] = field(default_factory=list)
    lookups: list[LookupSite] = field(default_factory=list)
    # site key → site, for the compiled builders to find the site of a field group
    sites: dict[SiteKey, WindowSite | LookupSite | ChunkSite] = field(default_factory=dict)
    size: int = 0  # how many sites are numbered

    @property
    def nested(self) -> bool:
        return bool(self.windows or self.lookups)

    def read(self, walk: Walk, *, strict: bool) -> PlannedRead | None:
        """This request's read. ``strict`` (compiled): a part whose arguments are refused,
        or a run read that would need two chunk filters, raises (``GraphQLError``,
        ``BadInput`` or ``TwoFilters``). Otherwise (priming) such a part is left to its
        own resolver, which reports the error at its path or loads the chunks itself;
        ``None`` when nothing nested is left to read."""
        planned = PlannedRead()
        messages: list[tuple[MessageSpec, tuple[ChunkSpec, ...]]] = []
        runs: list[RunSpec] = []
        lookups: list[tuple[str, RunSpec]] = []
        for w in self.windows:
            try:
                args = w.args.values(walk)
                specs = self._chunk_specs(w.chunk_sites, walk, planned)
                if w.kind == "m":
                    message_key = message_spec(args, w.fields)
                    messages.append((message_key, tuple(specs)))
                    planned.message_keys.append((w.index, message_key))
                    continue
                key = run_spec(args, w.fields)
                if len(specs) > 1 and strict:
                    raise TwoFilters
                if len(specs) == 1:
                    runs.append(run_spec(args, w.fields | {"id", "retrieved_context"}, specs[0]))
                else:
                    runs.append(key)
                planned.run_keys.append((w.index, key))
            except (GraphQLError, BadInput):
                if strict:
                    raise
        for lk in self.lookups:
            try:
                run_id = lk.run_id(walk)
                specs = self._chunk_specs(lk.chunk_sites, walk, planned)
            except (GraphQLError, BadInput):
                if strict:
                    raise
                continue
            if len(specs) > 1 and strict:
                raise TwoFilters
            chunks = specs[0] if len(specs) == 1 else None
            fields = lk.fields | ({"id", "retrieved_context"} if chunks else {"id"})
            lookups.append((run_id, RunSpec(fields=fields, chunks=chunks or ChunkSpec())))
            planned.lookup_keys.append((lk.index, run_id, lk.fields))
            planned.chunked = planned.chunked or chunks is not None
        if not strict and not (messages or runs or lookups):
            return None
        planned.read = SessionRead(self.fields, tuple(messages), tuple(runs), tuple(lookups))
        return planned

    @staticmethod
    def _chunk_specs(sites: list[ChunkSite], walk: Walk, planned: PlannedRead) -> list[ChunkSpec]:
        """The distinct chunk filters of ``sites``, in first-seen order."""
        specs = []
        for site in sites:
            planned.chunk_specs[site.index] = spec = chunk_spec(site.args.values(walk), site.fields)
            specs.append(spec)
        return list(dict.fromkeys(specs))


class TwoFilters(Exception):
    """One run read carries one chunk filter; the selection asks two of the same runs."""


@dataclass(slots=True)
class PlannedRead:
    """A request's read, and where each part of its answer goes: by site index, with the
    loader key the nested resolver asks (``prime``)."""

    read: SessionRead = field(default_factory=lambda: SessionRead(frozenset()))
    message_keys: list[tuple[int, MessageSpec]] = field(default_factory=list)
    run_keys: list[tuple[int, RunSpec]] = field(default_factory=list)
    lookup_keys: list[tuple[int, str, frozenset[str]]] = field(default_factory=list)
    chunk_specs: dict[int, ChunkSpec] = field(default_factory=dict)  # by chunk site
    chunked: bool = False  # whether a lookup reads its run's chunks


class _Planner:
    def __init__(self, walk: Walk) -> None:
        self.walk = walk
        schema = walk.schema
        self.types = {n: schema.type_map[n] for n in ("Session", "Message", "Run", "Query")}
        self.shape = SessionShape()

    def _index(self) -> int:
        self.shape.size += 1
        return self.shape.size - 1

    def session(self, nodes: Sequence[FieldNode]) -> SessionShape:
        walk, session = self.walk, self.types["Session"]
        assert isinstance(session, GraphQLObjectType)
        self.shape.fields = walk.reads(session, nodes, SESSION_READS) | {"user_id"}
        for group in walk.fields(session, nodes).values():
            name = group[0].name.value
            if name == "run":
                self.lookup(session, group)
            elif name in ("messages", "runs"):
                self.window(session, group, name)
        return self.shape

    def window(self, parent: GraphQLObjectType, group: list[FieldNode], name: str) -> None:
        walk = self.walk
        item = self.types["Message" if name == "messages" else "Run"]
        assert isinstance(item, GraphQLObjectType)
        connection = walk.child(parent, name)
        items = walk.items(connection, group)
        table = MESSAGE_READS if name == "messages" else RUN_READS
        fields = frozenset().union(*(walk.reads(item, g, table) for _, g in items))
        site = WindowSite(self._index(), name[0], Arguments(group[0], parent), fields, [])
        for _, g in items:
            site.chunk_sites += self.chunk_sites(item, g)
        self.shape.windows.append(site)
        self.shape.sites[site_key(group)] = site

    def lookup(self, parent: GraphQLObjectType, group: list[FieldNode]) -> None:
        run = self.types["Run"]
        assert isinstance(run, GraphQLObjectType)
        fields = self.walk.reads(run, group, RUN_READS)
        site = LookupSite(self._index(), Arguments(group[0], parent), fields, [])
        site.chunk_sites = self.chunk_sites(run, group)
        self.shape.lookups.append(site)
        self.shape.sites[site_key(group)] = site

    def chunk_sites(self, parent: GraphQLObjectType, nodes: list[FieldNode]) -> list[ChunkSite]:
        """The ``retrievedContext`` groups selected on the items ``nodes`` (one site each,
        shared by groups that are the same nodes: a fragment spread twice)."""
        sites = []
        for group in self.walk.fields(parent, nodes).values():
            if group[0].name.value != "retrievedContext":
                continue
            key = site_key(group)
            site = self.shape.sites.get(key)
            if not isinstance(site, ChunkSite):
                chunk = self.walk.child(parent, "retrievedContext")
                fields = self.walk.reads(chunk, group, CHUNK_READS)
                site = ChunkSite(self._index(), fields, Arguments(group[0], parent))
                self.shape.sites[key] = site
            sites.append(site)
        return sites


def plan_session(walk: Walk, nodes: Sequence[FieldNode]) -> SessionShape:
    """The shape of the read for ``session(id)``'s field group ``nodes``."""
    return _Planner(walk).session(nodes)


def plan_run(walk: Walk, nodes: list[FieldNode]) -> SessionShape:
    """The shape of the read for ``run(sessionId, runId)``'s field group ``nodes``: a
    session read that looks up only that run."""
    planner = _Planner(walk)
    query = planner.types["Query"]
    assert isinstance(query, GraphQLObjectType)
    planner.lookup(query, nodes)
    return planner.shape


def prime(loaders: Any, session_id: str, planned: PlannedRead, view: SessionView) -> None:
    """Hand the answers to the loaders under the keys the nested resolvers will use."""
    for (_, message_key), page in zip(planned.message_keys, view.message_pages, strict=True):
        loaders.messages.prime((session_id, message_key), page)
    for (_, run_key), page in zip(planned.run_keys, view.run_pages, strict=True):
        loaders.runs.prime((session_id, run_key), page)
    for (_, run_id, fields), run in zip(planned.lookup_keys, view.runs, strict=True):
        loaders.run.prime((session_id, run_id, fields), run)
    for (run_id, chunk_key), chunks in view.chunks.items():
        loaders.chunks.prime((session_id, run_id, chunk_key), chunks)
