"""Compiled execution: answer a query straight from the stored documents.

graphql-core resolves every field of every object one call at a time; a 1,000-message
session with its citations is tens of thousands of calls. For the operations this module
knows how to serve (``session(id)``, ``run(sessionId, runId)``, ``viewer`` and what they
select: scalars, the message and run connections, chunks, tool calls, run lookups), the
document's selection is compiled once into Python functions that build the response
dicts directly, and the data comes from one storage read per root field.

The compiled path only answers the happy path. Anything it does not serve (mutations,
introspection, ``sessions``, ``Message.run``, ``Run.messages``, ``@skip``/``@include`` on
variables, …) is left to normal execution at compile time; anything that would be an
error at run time (a bad argument, a null in a non-null field, a value a scalar refuses)
abandons the compiled answer and normal execution runs instead, so errors are always
the ones normal execution reports. Two exceptions: a database outage is the answer at once
(normal execution would only wait for the same outage again), and a failure that is
neither (a bug) is logged with its traceback once and retires that plan for good.

It runs inside Strawberry's pipeline (``schema.extensions.CompiledExecution``, an
``on_execute`` extension) on the document Strawberry parsed and validated; plans are kept
beside that document in ``schema.extensions.Documents``, the one document cache.
"""

from __future__ import annotations

import itertools
import logging
from collections import OrderedDict
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    DocumentNode,
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLEnumType,
    GraphQLError,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    Undefined,
    VariableNode,
)
from graphql.execution.values import VariableValues, get_variable_values

from agent_sessions.errors import DatabaseUnavailable, ServiceError
from agent_sessions.storage.model import ChunkSpec, Page, RunSpec, SessionRead

from .cursors import position_cursor
from .lookahead import CHUNK_READS, MESSAGE_READS, RUN_READS, SESSION_READS, STORED
from .specs import argument_values, chunk_spec, message_spec, run_spec

log = logging.getLogger("agent_sessions.compiled")

Doc = dict[str, Any]


class Unsupported(Exception):
    """The document selects something the compiled path does not serve."""


class Abort(Exception):
    """At run time: this request is answered by normal execution instead."""


class _Outage(Exception):
    """The database went away while the root field at ``key`` was read."""

    def __init__(self, key: str, error: DatabaseUnavailable) -> None:
        super().__init__(key)
        self.key, self.error = key, error


# --- leaves --------------------------------------------------------------------------------------


# Conditions under which graphql-core's serializer returns a value unchanged; ``V`` is the
# value's expression (bound to ``v``), used once, first.
FAST_LEAVES = {
    "String": "type(V) is str",
    "ID": "type(V) is str",
    "Boolean": "type(V) is bool",
    "Int": "type(V) is int and -2147483648 <= v <= 2147483647",
    "Float": "type(V) is float and -INF < v < INF",
}


def _leaf(type_: GraphQLScalarType | GraphQLEnumType, non_null: bool) -> Callable[[Any], Any]:
    """A value → its serialized form, as graphql-core completes a leaf; ``Abort`` where it
    would raise an error."""
    serialize = type_.serialize
    fast: type | None = None
    if isinstance(type_, GraphQLScalarType) and type_.name in ("String", "ID"):
        fast = str
    elif isinstance(type_, GraphQLScalarType) and type_.name == "Boolean":
        fast = bool

    def complete(value: Any) -> Any:
        if value is None:
            if non_null:
                raise Abort
            return None
        if fast is not None and type(value) is fast:
            return value
        try:
            out = serialize(value)
        except Exception:  # a stored value the scalar refuses: normal execution reports it
            raise Abort from None
        if out is None or out is Undefined:
            raise Abort
        return out

    return complete


# --- field collection, as graphql-core does it ------------------------------------------------


def _literal_flag(node: Any, name: str) -> bool | None:
    for directive in node.directives or ():
        if directive.name.value == name:
            [arg] = directive.arguments
            if isinstance(arg.value, VariableNode):
                raise Unsupported(f"@{name} on a variable")
            return bool(arg.value.value)
    return None


def _included(node: Any) -> bool:
    if _literal_flag(node, "skip") is True:
        return False
    return _literal_flag(node, "include") is not False


def collect(
    type_: GraphQLObjectType,
    selection_sets: list[SelectionSetNode],
    fragments: Mapping[str, FragmentDefinitionNode],
) -> OrderedDict[str, list[FieldNode]]:
    """Fields by response key, in first-seen order, over ``selection_sets`` (merged)."""
    out: OrderedDict[str, list[FieldNode]] = OrderedDict()
    visited: set[str] = set()

    def walk(selection_set: SelectionSetNode) -> None:
        for sel in selection_set.selections:
            if not _included(sel):
                continue
            if isinstance(sel, FieldNode):
                key = sel.alias.value if sel.alias else sel.name.value
                out.setdefault(key, []).append(sel)
            elif isinstance(sel, InlineFragmentNode):
                cond = sel.type_condition
                if cond is None or cond.name.value == type_.name:
                    walk(sel.selection_set)
            elif isinstance(sel, FragmentSpreadNode):
                if getattr(sel, "arguments", None):
                    raise Unsupported("fragment arguments")
                name = sel.name.value
                if name in visited:
                    continue
                visited.add(name)
                fragment = fragments.get(name)
                if fragment is not None and fragment.type_condition.name.value == type_.name:
                    walk(fragment.selection_set)

    for selection_set in selection_sets:
        walk(selection_set)
    return out


# --- the plan -----------------------------------------------------------------------------------


@dataclass
class Arguments:
    """A field instance's arguments, evaluated per request (they may use variables)."""

    node: FieldNode
    parent: GraphQLObjectType

    def values(self, variables: VariableValues) -> dict[str, Any]:
        return argument_values(self.node, self.parent, variables)


@dataclass
class ChunkSite:
    """A ``retrievedContext`` field instance: its chunk fields and its arguments."""

    index: int
    fields: frozenset[str]
    args: Arguments


@dataclass
class WindowSite:
    """A ``messages`` or ``runs`` field instance of a session."""

    index: int
    kind: str  # "m" or "r"
    args: Arguments
    fields: frozenset[str]  # stored item fields
    chunk_sites: list[ChunkSite]


@dataclass
class Lookup:
    """A ``Session.run(id)`` (or ``Query.run``) field instance."""

    index: int
    args: Arguments
    fields: frozenset[str]
    chunk_sites: list[ChunkSite]


@dataclass
class SessionRoot:
    """What one session object of the response needs from storage."""

    fields: frozenset[str] = frozenset()
    windows: list[WindowSite] = field(default_factory=list)
    lookups: list[Lookup] = field(default_factory=list)


@dataclass
class Root:
    key: str
    kind: str  # "session", "run", "viewer", "typename"
    args: Arguments | None
    session: SessionRoot | None
    build: Callable[..., Any] | None


@dataclass
class Plan:
    roots: list[Root]
    sites: int  # how many chunk sites, windows and lookups the plan numbers


class Env:
    """One execution's data: pages, runs and chunks by site, as the reads returned them."""

    __slots__ = ("caller", "chunks", "lookups", "pages", "session_id", "specs")

    def __init__(self, caller: Any, size: int) -> None:
        self.caller = caller
        self.session_id: str = ""
        self.pages: list[Page | None] = [None] * size
        self.lookups: list[Doc | None] = [None] * size
        self.specs: list[ChunkSpec | None] = [None] * size
        self.chunks: dict[tuple[str, ChunkSpec], list[Doc]] = {}


class Compiler:
    """Compiles a document's operation into builder functions (Python source, compiled)."""

    def __init__(
        self, schema: GraphQLSchema, fragments: Mapping[str, FragmentDefinitionNode]
    ) -> None:
        self.schema = schema
        self.fragments = fragments
        self.counter = itertools.count()
        self.namespace: dict[str, Any] = {
            "Abort": Abort, "cursor": position_cursor, "EMPTY": (), "chunk_list": _chunk_list,
            "_or": _or,
            "INF": float("inf"),
        }  # fmt: skip
        self.source: list[str] = []
        self.session: SessionRoot | None = None

    def _type(self, name: str) -> GraphQLObjectType:
        t = self.schema.type_map[name]
        assert isinstance(t, GraphQLObjectType)
        return t

    def const(self, value: Any) -> str:
        name = f"k{next(self.counter)}"
        self.namespace[name] = value
        return name

    def fn(self, params: str, body_expr: str) -> str:
        name = f"f{next(self.counter)}"
        self.source.append(f"def {name}({params}):\n    return {body_expr}\n")
        return name

    # An object's builder: ``f(src, env) -> dict``.
    def object_builder(self, type_name: str, field_nodes: list[FieldNode]) -> str:
        type_ = self._type(type_name)
        selection_sets = [n.selection_set for n in field_nodes if n.selection_set]
        entries = []
        for key, nodes in collect(type_, selection_sets, self.fragments).items():
            entries.append(f"{key!r}: {self.field_expr(type_, nodes)}")
        return self.fn("src, env", "{" + ", ".join(entries) + "}")

    def field_expr(self, parent: GraphQLObjectType, nodes: list[FieldNode]) -> str:
        name = nodes[0].name.value
        pname = parent.name
        if name == "__typename":
            return repr(pname)
        if name.startswith("__"):
            raise Unsupported("introspection")
        definition = parent.fields.get(name)
        if definition is None:
            raise Unsupported(name)
        plain = STORED.get(pname, {}).get(name)
        if plain is not None:
            key, default = plain
            type_ = definition.type
            non_null = isinstance(type_, GraphQLNonNull)
            named = type_.of_type if non_null else type_
            leaf = self.const(_leaf(named, non_null))
            # A default stands in for an absent or null value, as in the types' from_doc.
            get = f"src.get({key!r})" if default is None else f"_or({key!r}, src, {default!r})"
            fast = FAST_LEAVES.get(named.name)
            if fast is None:
                return f"{leaf}({get})"
            # The common case inline (a value graphql-core returns as it is), the rest by
            # the leaf function: one call fewer per field.
            return f"(v if {fast} else {leaf}(v))".replace("V", f"(v := {get})", 1)
        handler = getattr(self, f"_{pname}_{name}", None)
        if handler is None:
            raise Unsupported(f"{pname}.{name}")
        return handler(parent, nodes)

    # --- Session --------------------------------------------------------------------------

    def _Session_messages(self, parent: GraphQLObjectType, nodes: list[FieldNode]) -> str:
        return self._window(parent, nodes, "m", "Message", MESSAGE_READS)

    def _Session_runs(self, parent: GraphQLObjectType, nodes: list[FieldNode]) -> str:
        return self._window(parent, nodes, "r", "Run", RUN_READS)

    def _window(
        self, parent: GraphQLObjectType, nodes: list[FieldNode], kind: str, item_type: str,
        table: Mapping[str, tuple[str, ...]],
    ) -> str:  # fmt: skip
        assert self.session is not None
        index = next(self.counter)
        window = WindowSite(index, kind, Arguments(nodes[0], parent), frozenset(), [])
        self.session.windows.append(window)
        outer = self._current_window
        self._current_window = window
        try:
            connection = self._type(f"{item_type}Connection")
            parts = []
            item_fields: set[str] = set()
            for key, found in collect(
                connection, [n.selection_set for n in nodes if n.selection_set], self.fragments
            ).items():
                what = found[0].name.value
                if what == "nodes":
                    node_fn = self.object_builder(item_type, found)
                    item_fields |= self._reads(item_type, found, table)
                    parts.append(f"{key!r}: [{node_fn}(item, env) for _, item in page.items]")
                elif what == "edges":
                    edge_fn, fields = self._edge_builder(item_type, kind, found, table)
                    item_fields |= fields
                    parts.append(
                        f"{key!r}: [{edge_fn}(pos, item, env) for pos, item in page.items]"
                    )
                elif what == "pageInfo":
                    parts.append(f"{key!r}: {self._page_info(found)}(page)")
                elif what == "totalCount":
                    parts.append(f"{key!r}: page.total")
                elif what == "__typename":
                    parts.append(f"{key!r}: {connection.name!r}")
                else:
                    raise Unsupported(what)
            window.fields = frozenset(item_fields)
            conn_fn = self.fn("page, env", "{" + ", ".join(parts) + "}")
        finally:
            self._current_window = outer
        return f"{conn_fn}(env.pages[{index}], env)"

    _current_window: WindowSite | None = None

    def _reads(
        self, type_name: str, nodes: list[FieldNode], table: Mapping[str, tuple[str, ...]]
    ) -> frozenset[str]:
        type_ = self._type(type_name)
        names = {
            found[0].name.value
            for found in collect(
                type_, [n.selection_set for n in nodes if n.selection_set], self.fragments
            ).values()
        }
        return frozenset(f for n in names for f in table.get(n, ()))

    def _edge_builder(
        self,
        item_type: str,
        kind: str,
        nodes: list[FieldNode],
        table: Mapping[str, tuple[str, ...]],
    ) -> tuple[str, frozenset[str]]:
        edge = self._type(f"{item_type}Edge")
        parts = []
        fields: frozenset[str] = frozenset()
        for key, found in collect(
            edge, [n.selection_set for n in nodes if n.selection_set], self.fragments
        ).items():
            what = found[0].name.value
            if what == "cursor":
                parts.append(f"{key!r}: cursor({kind!r}, pos)")
            elif what == "node":
                node_fn = self.object_builder(item_type, found)
                fields |= self._reads(item_type, found, table)
                parts.append(f"{key!r}: {node_fn}(item, env)")
            elif what == "__typename":
                parts.append(f"{key!r}: {edge.name!r}")
            else:
                raise Unsupported(what)
        return self.fn("pos, item, env", "{" + ", ".join(parts) + "}"), fields

    def _page_info(self, nodes: list[FieldNode]) -> str:
        info = self._type("PageInfo")
        parts = []
        values = {
            "hasNextPage": "page.has_next",
            "hasPreviousPage": "page.has_previous",
            "startCursor": "(cursor(KIND, page.items[0][0]) if page.items else None)",
            "endCursor": "(cursor(KIND, page.items[-1][0]) if page.items else None)",
            "__typename": repr("PageInfo"),
        }
        assert self._current_window is not None
        kind = repr(self._current_window.kind)
        for key, found in collect(
            info, [n.selection_set for n in nodes if n.selection_set], self.fragments
        ).items():
            parts.append(f"{key!r}: {values[found[0].name.value].replace('KIND', kind)}")
        return self.fn("page", "{" + ", ".join(parts) + "}")

    def _Session_run(self, parent: GraphQLObjectType, nodes: list[FieldNode]) -> str:
        assert self.session is not None
        index = next(self.counter)
        lookup = Lookup(
            index, Arguments(nodes[0], parent), self._reads("Run", nodes, RUN_READS), []
        )
        self.session.lookups.append(lookup)
        outer = self._current_lookup
        self._current_lookup = lookup
        try:
            run_fn = self.object_builder("Run", nodes)
        finally:
            self._current_lookup = outer
        return f"(None if (r := env.lookups[{index}]) is None else {run_fn}(r, env))"

    _current_lookup: Lookup | None = None

    # --- Message, Run -----------------------------------------------------------------------

    def _Message_toolCalls(self, parent: GraphQLObjectType, nodes: list[FieldNode]) -> str:
        call_fn = self.object_builder("ToolCall", nodes)
        return f"[{call_fn}(c, env) for c in (src.get('tool_calls') or EMPTY)]"

    def _chunk_site(
        self, parent: GraphQLObjectType, nodes: list[FieldNode]
    ) -> tuple[ChunkSite, str]:
        site = ChunkSite(
            next(self.counter),
            self._reads("RetrievedChunk", nodes, CHUNK_READS),
            Arguments(nodes[0], parent),
        )
        owner = self._current_lookup or self._current_window
        if owner is None:
            raise Unsupported("retrievedContext outside a session")
        owner.chunk_sites.append(site)
        return site, self.object_builder("RetrievedChunk", nodes)

    def _Message_retrievedContext(self, parent: GraphQLObjectType, nodes: list[FieldNode]) -> str:
        site, chunk_fn = self._chunk_site(parent, nodes)
        return f"chunk_list(src, env, {site.index}, {chunk_fn}, True)"

    def _Run_retrievedContext(self, parent: GraphQLObjectType, nodes: list[FieldNode]) -> str:
        site, chunk_fn = self._chunk_site(parent, nodes)
        return f"chunk_list(src, env, {site.index}, {chunk_fn}, False)"

    def _Run_sessionId(self, parent: GraphQLObjectType, nodes: list[FieldNode]) -> str:
        return f"{self.const(_leaf(self.schema.type_map['ID'], True))}(env.session_id)"  # type: ignore[arg-type]

    def _Run_reasoning(self, parent: GraphQLObjectType, nodes: list[FieldNode]) -> str:
        fn = self.object_builder("ReasoningConfig", nodes)
        return f"({fn}(v, env) if (v := src.get('reasoning')) else None)"

    def _Run_usage(self, parent: GraphQLObjectType, nodes: list[FieldNode]) -> str:
        fn = self.object_builder("TokenUsage", nodes)
        return f"({fn}(v, env) if (v := src.get('usage')) else None)"

    def _Viewer_userId(self, parent: GraphQLObjectType, nodes: list[FieldNode]) -> str:
        return f"{self.const(_leaf(self.schema.type_map['String'], False))}(env.caller.user_id)"  # type: ignore[arg-type]

    def _Viewer_isAdmin(self, parent: GraphQLObjectType, nodes: list[FieldNode]) -> str:
        return f"{self.const(_leaf(self.schema.type_map['Boolean'], True))}(env.caller.is_admin)"  # type: ignore[arg-type]

    # --- roots ----------------------------------------------------------------------------------

    def root(self, query: GraphQLObjectType, key: str, nodes: list[FieldNode]) -> Root:
        name = nodes[0].name.value
        if name == "__typename":
            return Root(key, "typename", None, None, None)
        if name == "viewer":
            return Root(
                key, "viewer", None, None, self._compiled(self.object_builder("Viewer", nodes))
            )
        if name == "session":
            self.session = SessionRoot()
            fn = self.object_builder("Session", nodes)
            self.session.fields = self._reads("Session", nodes, SESSION_READS) | {"user_id"}
            root = Root(
                key, "session", Arguments(nodes[0], query), self.session, self._compiled(fn)
            )
            self.session = None
            return root
        if name == "run":
            self.session = SessionRoot()
            index = next(self.counter)
            lookup = Lookup(
                index, Arguments(nodes[0], query), self._reads("Run", nodes, RUN_READS), []
            )
            self.session.lookups.append(lookup)
            self._current_lookup = lookup
            try:
                fn = self.object_builder("Run", nodes)
            finally:
                self._current_lookup = None
            root = Root(key, "run", Arguments(nodes[0], query), self.session, self._compiled(fn))
            self.session = None
            return root
        raise Unsupported(f"Query.{name}")

    def _compiled(self, fn_name: str) -> Callable[..., Any]:
        exec("\n".join(self.source), self.namespace)  # noqa: S102 - source generated above from the schema
        self.source = []
        return self.namespace[fn_name]


def _or(key: str, src: Doc, default: Any) -> Any:
    value = src.get(key)
    return default if value is None else value


def _chunk_list(
    src: Doc, env: Env, site: int, build: Callable[..., Any], message: bool
) -> list[Any]:
    """``Message.retrievedContext`` ([] unless an assistant message of a run) and
    ``Run.retrievedContext``: the run's chunks under this site's filter."""
    if message:
        run_id = src.get("run_id")
        if src.get("role") != "assistant" or run_id is None:
            return []
    else:
        run_id = src.get("id")
    spec = env.specs[site]
    found = env.chunks.get((run_id, spec))  # type: ignore[arg-type]
    return [build(c, env) for c in found] if found else []


def compile_operation(
    schema: GraphQLSchema, document: DocumentNode, operation: OperationDefinitionNode
) -> Plan:
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    compiler = Compiler(schema, fragments)
    query = schema.query_type
    assert query is not None
    roots = [
        compiler.root(query, key, nodes)
        for key, nodes in collect(query, [operation.selection_set], fragments).items()
    ]
    return Plan(roots, next(compiler.counter))


# --- running a plan ---------------------------------------------------------------------------


def _session_read(
    root: SessionRoot, env: Env, variables: VariableValues
) -> tuple[SessionRead, list[Any]]:
    """The storage read for one session object, and where each part's answer goes."""
    messages, runs, lookups, targets = [], [], [], []

    def chunk_specs(sites: list[ChunkSite]) -> list[ChunkSpec]:
        specs = []
        for site in sites:
            env.specs[site.index] = spec = chunk_spec(site.args.values(variables), site.fields)
            specs.append(spec)
        return list(dict.fromkeys(specs))

    for w in root.windows:
        args = w.args.values(variables)
        specs = chunk_specs(w.chunk_sites)
        if w.kind == "m":
            messages.append((message_spec(args, w.fields), tuple(specs)))
            targets.append(("m", w.index, len(messages) - 1))
            continue
        if len(specs) > 1:
            raise Abort  # one run read carries one chunk filter
        if specs:
            runs.append(run_spec(args, w.fields | {"id", "retrieved_context"}, specs[0]))
        else:
            runs.append(run_spec(args, w.fields))
        targets.append(("r", w.index, len(runs) - 1))
    for lk in root.lookups:
        args = lk.args.values(variables)
        specs = chunk_specs(lk.chunk_sites)
        if len(specs) > 1:
            raise Abort
        fields = lk.fields | {"id"} | ({"retrieved_context"} if specs else set())
        run_id = args["id"] if "id" in args else args["runId"]
        lookups.append((run_id, RunSpec(fields=fields, chunks=specs[0] if specs else ChunkSpec())))
        targets.append(("x", lk.index, len(lookups) - 1))
    return SessionRead(root.fields, tuple(messages), tuple(runs), tuple(lookups)), targets


# A plan per operation name of one document; ``None``: normal execution serves it.
Plans = MutableMapping[str | None, "tuple[OperationDefinitionNode, Plan] | None"]


class CompiledExecutor:
    """Runs queries through compiled plans; ``None`` means "use normal execution"."""

    def __init__(self, schema: GraphQLSchema) -> None:
        self.schema = schema
        self.compiled = 0  # answers given, for tests and the benchmark
        self.fallbacks = 0
        self.failures = 0  # plans retired by an unexpected error (logged, each once)

    def plan(
        self, document: DocumentNode, operation_name: str | None, plans: Plans
    ) -> tuple[OperationDefinitionNode, Plan] | None:
        """The plan for the operation, compiled on first sight and kept in ``plans``."""
        if operation_name in plans:
            return plans[operation_name]
        found: tuple[OperationDefinitionNode, Plan] | None = None
        operation = _operation(document, operation_name)
        if operation is not None and operation.operation == OperationType.QUERY:
            try:
                found = (operation, compile_operation(self.schema, document, operation))
            except Unsupported as exc:
                log.debug("not compiled: %s", exc)
        plans[operation_name] = found
        return found

    async def execute(
        self,
        document: DocumentNode,
        operation_name: str | None,
        variables: dict[str, Any] | None,
        context: Any,
        plans: Plans,
    ) -> ExecutionResult | None:
        """The response, or ``None`` when normal execution must answer. A database outage
        is answered at once, as an error at the root field that met it: normal execution
        would only meet the same outage after another server-selection timeout."""
        planned = self.plan(document, operation_name, plans)
        if planned is None:
            return None
        operation, plan = planned
        coerced = get_variable_values(
            self.schema, operation.variable_definitions or (), variables or {}
        )
        if isinstance(coerced, list):
            return None  # normal execution reports the variables' errors
        try:
            data = await self._run(plan, coerced, context)
        except _Outage as outage:
            error = GraphQLError(
                outage.error.message, path=[outage.key], original_error=outage.error
            )
            return ExecutionResult(data=None, errors=[error])
        except (Abort, ServiceError, GraphQLError):
            # The request's own data or arguments: normal execution reports the error.
            self.fallbacks += 1
            return None
        except Exception:
            log.exception(
                "compiled plan failed; normal execution serves operation %r from now on",
                operation_name,
            )
            plans[operation_name] = None
            self.failures += 1
            self.fallbacks += 1
            return None
        self.compiled += 1
        return ExecutionResult(data=data)

    async def _run(self, plan: Plan, variables: VariableValues, context: Any) -> dict[str, Any]:
        data: dict[str, Any] = {}
        storage, owner = context.storage, context.owner
        # Sessions asked only for their own fields (aliases side by side): one find for all.
        flat = [
            r
            for r in plan.roots
            if r.session is not None
            and r.kind == "session"
            and not (r.session.windows or r.session.lookups)
        ]
        found: dict[str, Doc] = {}
        if flat:
            ids = [r.args.values(variables)["id"] for r in flat]  # type: ignore[union-attr]
            fields = frozenset().union(*(r.session.fields for r in flat))  # type: ignore[union-attr]
            try:
                found = await storage.sessions.get_sessions(ids, fields, owner=owner)
            except DatabaseUnavailable as exc:
                raise _Outage(flat[0].key, exc) from exc
        flat_roots = {id(r) for r in flat}
        for root in plan.roots:
            if id(root) in flat_roots:
                assert root.args is not None and root.build is not None
                doc = found.get(root.args.values(variables)["id"])
                data[root.key] = (
                    None if doc is None else root.build(doc, Env(context.caller, plan.sites))
                )
                continue
            if root.kind == "typename":
                data[root.key] = "Query"
                continue
            env = Env(context.caller, plan.sites)
            if root.kind == "viewer":
                assert root.build is not None
                data[root.key] = root.build(None, env)
                continue
            assert root.session is not None and root.args is not None and root.build is not None
            args = root.args.values(variables)
            session_id = args["id"] if root.kind == "session" else args["sessionId"]
            env.session_id = session_id
            read, targets = _session_read(root.session, env, variables)
            try:
                view = await storage.sessions.read_session(session_id, read, owner=owner)
            except DatabaseUnavailable as exc:
                raise _Outage(root.key, exc) from exc
            if view is None:
                data[root.key] = None
                continue
            for kind, index, n in targets:
                if kind == "m":
                    env.pages[index] = view.message_pages[n]
                elif kind == "r":
                    env.pages[index] = view.run_pages[n]
                else:
                    env.lookups[index] = view.runs[n]
            env.chunks = view.chunks
            if root.kind == "session":
                data[root.key] = root.build(view.doc, env)
            else:
                run = view.runs[0]
                data[root.key] = None if run is None else root.build(run, env)
        return data


def _operation(document: DocumentNode, name: str | None) -> OperationDefinitionNode | None:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if name is None:
        return operations[0] if len(operations) == 1 else None
    return next((op for op in operations if op.name and op.name.value == name), None)
