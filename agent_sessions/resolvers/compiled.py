"""Compiled execution: answer a query straight from the stored documents.

graphql-core resolves every field of every object one call at a time; a 1,000-message
session with its citations is tens of thousands of calls. For the operations this module
knows how to serve (``session(id)``, ``run(sessionId, runId)``, ``viewer`` and what they
select: scalars, the message and run connections, chunks, tool calls, run lookups), the
document's selection is compiled once into Python functions that build the response
dicts directly, and the data comes from one storage read per root field. What is selected
is graphql-core's field collection (``lookahead.Walk``); what is read is the planner's
(``planner``), the same that primes the loaders of normal execution. ``@skip``/``@include``
on variables decide what is selected, so a document has a plan per combination of the
values they read (``DocumentPlans``).

The compiled path only answers the happy path. Anything it does not serve (mutations,
introspection, ``sessions``, ``Message.run``, ``Run.messages``, …) is left to normal
execution at compile time; anything that would be an error at run time (a bad argument,
a null in a non-null field, a value a scalar refuses) abandons the compiled answer and
normal execution runs instead, so errors are always the ones normal execution reports.
Two exceptions: a database outage is the answer at once (normal execution would only wait
for the same outage again), and a failure that is neither (a bug) is logged with its
traceback once and retires that plan for good.

It runs inside Strawberry's pipeline (``schema.extensions.CompiledExecution``, an
``on_execute`` extension) on the document Strawberry parsed and validated; plans are kept
beside that document in ``schema.extensions.Documents``, the one document cache.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from graphql import (
    DirectiveNode,
    DocumentNode,
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    GraphQLEnumType,
    GraphQLError,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    Undefined,
    VariableNode,
    Visitor,
    visit,
)
from graphql.execution.values import get_variable_values

from agent_sessions.errors import DatabaseUnavailable, ServiceError
from agent_sessions.storage.model import ChunkSpec, Page

from .cursors import position_cursor
from .lookahead import STORED, Walk
from .planner import (
    Arguments,
    ChunkSite,
    LookupSite,
    SessionShape,
    TwoFilters,
    WindowSite,
    plan_run,
    plan_session,
    site_key,
)

log = logging.getLogger("agent_sessions.compiled")

Doc = dict[str, Any]
_S = TypeVar("_S", WindowSite, LookupSite, ChunkSite)


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


# --- the plan -----------------------------------------------------------------------------------


@dataclass
class Root:
    key: str
    kind: str  # "session", "run", "viewer", "typename"
    args: Arguments | None
    shape: SessionShape | None
    build: Callable[..., Any] | None


@dataclass
class Plan:
    roots: list[Root]


class Env:
    """One execution's data: pages, runs and chunks by site, as the read returned them."""

    __slots__ = ("caller", "chunks", "lookups", "pages", "session_id", "specs")

    def __init__(self, caller: Any, size: int) -> None:
        self.caller = caller
        self.session_id: str = ""
        self.pages: list[Page | None] = [None] * size
        self.lookups: list[Doc | None] = [None] * size
        self.specs: dict[int, ChunkSpec] = {}
        self.chunks: dict[tuple[str, ChunkSpec], list[Doc]] = {}


class Compiler:
    """Compiles a document's operation into builder functions (Python source, compiled).
    What is selected comes from the walker; what to read from the planner's shape, whose
    sites the builders address by the field groups they stand for."""

    def __init__(self, walk: Walk) -> None:
        self.walk = walk
        self.schema = walk.schema
        self.counter = itertools.count()
        self.namespace: dict[str, Any] = {
            "Abort": Abort, "cursor": position_cursor, "EMPTY": (), "chunk_list": _chunk_list,
            "_or": _or,
            "INF": float("inf"),
        }  # fmt: skip
        self.source: list[str] = []
        self.shape: SessionShape | None = None
        self.kind = ""  # the cursor kind of the connection being built

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

    def _site(self, nodes: list[FieldNode], kind: type[_S]) -> _S:
        site = self.shape.sites.get(site_key(nodes)) if self.shape is not None else None
        if not isinstance(site, kind):
            raise Unsupported(f"{nodes[0].name.value} outside the planned read")
        return site

    # An object's builder: ``f(src, env) -> dict``.
    def object_builder(self, type_name: str, field_nodes: list[FieldNode]) -> str:
        type_ = self._type(type_name)
        entries = []
        for key, nodes in self.walk.fields(type_, field_nodes).items():
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
        return self._window(nodes, "Message")

    def _Session_runs(self, parent: GraphQLObjectType, nodes: list[FieldNode]) -> str:
        return self._window(nodes, "Run")

    def _window(self, nodes: list[FieldNode], item_type: str) -> str:
        site = self._site(nodes, WindowSite)
        outer, self.kind = self.kind, site.kind
        try:
            connection = self._type(f"{item_type}Connection")
            parts = []
            for key, found in self.walk.fields(connection, nodes).items():
                what = found[0].name.value
                if what == "nodes":
                    node_fn = self.object_builder(item_type, found)
                    parts.append(f"{key!r}: [{node_fn}(item, env) for _, item in page.items]")
                elif what == "edges":
                    edge_fn = self._edge_builder(item_type, found)
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
            conn_fn = self.fn("page, env", "{" + ", ".join(parts) + "}")
        finally:
            self.kind = outer
        return f"{conn_fn}(env.pages[{site.index}], env)"

    def _edge_builder(self, item_type: str, nodes: list[FieldNode]) -> str:
        edge = self._type(f"{item_type}Edge")
        parts = []
        for key, found in self.walk.fields(edge, nodes).items():
            what = found[0].name.value
            if what == "cursor":
                parts.append(f"{key!r}: cursor({self.kind!r}, pos)")
            elif what == "node":
                parts.append(f"{key!r}: {self.object_builder(item_type, found)}(item, env)")
            elif what == "__typename":
                parts.append(f"{key!r}: {edge.name!r}")
            else:
                raise Unsupported(what)
        return self.fn("pos, item, env", "{" + ", ".join(parts) + "}")

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
        kind = repr(self.kind)
        for key, found in self.walk.fields(info, nodes).items():
            parts.append(f"{key!r}: {values[found[0].name.value].replace('KIND', kind)}")
        return self.fn("page", "{" + ", ".join(parts) + "}")

    def _Session_run(self, parent: GraphQLObjectType, nodes: list[FieldNode]) -> str:
        site = self._site(nodes, LookupSite)
        run_fn = self.object_builder("Run", nodes)
        return f"(None if (r := env.lookups[{site.index}]) is None else {run_fn}(r, env))"

    # --- Message, Run -----------------------------------------------------------------------

    def _Message_toolCalls(self, parent: GraphQLObjectType, nodes: list[FieldNode]) -> str:
        call_fn = self.object_builder("ToolCall", nodes)
        return f"[{call_fn}(c, env) for c in (src.get('tool_calls') or EMPTY)]"

    def _Message_retrievedContext(self, parent: GraphQLObjectType, nodes: list[FieldNode]) -> str:
        return self._chunks(nodes, message=True)

    def _Run_retrievedContext(self, parent: GraphQLObjectType, nodes: list[FieldNode]) -> str:
        return self._chunks(nodes, message=False)

    def _chunks(self, nodes: list[FieldNode], message: bool) -> str:
        site = self._site(nodes, ChunkSite)
        chunk_fn = self.object_builder("RetrievedChunk", nodes)
        return f"chunk_list(src, env, {site.index}, {chunk_fn}, {message})"

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
        if name not in ("session", "run"):
            raise Unsupported(f"Query.{name}")
        if name == "session":
            self.shape = plan_session(self.walk, nodes)
            fn = self.object_builder("Session", nodes)
        else:
            self.shape = plan_run(self.walk, nodes)
            fn = self.object_builder("Run", nodes)
        root = Root(key, name, Arguments(nodes[0], query), self.shape, self._compiled(fn))
        self.shape = None
        return root

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
    found = env.chunks.get((run_id, env.specs[site]))  # type: ignore[arg-type]
    return [build(c, env) for c in found] if found else []


def compile_operation(walk: Walk) -> Plan:
    """The plan of ``walk``'s operation for the values its ``@skip``/``@include`` read."""
    compiler = Compiler(walk)
    query = walk.schema.query_type
    assert query is not None
    return Plan([compiler.root(query, key, nodes) for key, nodes in walk.roots(query).items()])


# --- which plan -------------------------------------------------------------------------------

# A document whose @skip/@include read more variables than this is not compiled: each
# combination of their values is a plan of its own.
MAX_SWITCHES = 4


class _Switches(Visitor):
    """The variables that ``@skip(if:)``/``@include(if:)`` read in a document."""

    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()

    def enter_directive(self, node: DirectiveNode, *_: Any) -> None:
        if node.name.value in ("skip", "include"):
            for arg in node.arguments or ():
                if isinstance(arg.value, VariableNode):
                    self.names.add(arg.value.name.value)


PlanKey = tuple[str | None, tuple[bool, ...]]


class DocumentPlans:
    """The plans of one document, per operation name and per values of the variables its
    directives read (they decide what is selected, so what is compiled); ``None``:
    normal execution serves it."""

    __slots__ = ("by_key", "switches")

    def __init__(self) -> None:
        self.switches: tuple[str, ...] | None = None
        self.by_key: dict[PlanKey, tuple[OperationDefinitionNode, Plan] | None] = {}

    def key(
        self, document: DocumentNode, operation_name: str | None, coerced: Mapping[str, Any]
    ) -> PlanKey:
        if self.switches is None:
            found = _Switches()
            visit(document, found)
            self.switches = tuple(sorted(found.names))
        return operation_name, tuple(bool(coerced.get(name)) for name in self.switches)


class CompiledExecutor:
    """Runs queries through compiled plans; ``None`` means "use normal execution"."""

    def __init__(self, schema: GraphQLSchema) -> None:
        self.schema = schema
        self.compiled = 0  # answers given, for tests and the benchmark
        self.fallbacks = 0
        self.failures = 0  # plans retired by an unexpected error (logged, each once)

    def plan(
        self, operation: OperationDefinitionNode, walk: Walk, plans: DocumentPlans, key: PlanKey
    ) -> tuple[OperationDefinitionNode, Plan] | None:
        """The plan for the operation, compiled on first sight and kept in ``plans``."""
        if key in plans.by_key:
            return plans.by_key[key]
        found: tuple[OperationDefinitionNode, Plan] | None = None
        if operation.operation == OperationType.QUERY and len(plans.switches or ()) <= MAX_SWITCHES:
            try:
                found = (operation, compile_operation(walk))
            except Unsupported as exc:
                log.debug("not compiled: %s", exc)
        plans.by_key[key] = found
        return found

    async def execute(
        self,
        document: DocumentNode,
        operation_name: str | None,
        variables: dict[str, Any] | None,
        context: Any,
        plans: DocumentPlans,
    ) -> ExecutionResult | None:
        """The response, or ``None`` when normal execution must answer. A database outage
        is answered at once, as an error at the root field that met it: normal execution
        would only meet the same outage after another server-selection timeout."""
        operation = _operation(document, operation_name)
        if operation is None:
            return None
        coerced = get_variable_values(
            self.schema, operation.variable_definitions or (), variables or {}
        )
        if isinstance(coerced, list):
            return None  # normal execution reports the variables' errors
        key = plans.key(document, operation_name, coerced.coerced)
        if key in plans.by_key and plans.by_key[key] is None:
            return None
        fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        walk = Walk(self.schema, fragments, coerced, operation)
        planned = self.plan(operation, walk, plans, key)
        if planned is None:
            return None
        _, plan = planned
        try:
            data = await self._run(plan, walk, context)
        except _Outage as outage:
            error = GraphQLError(
                outage.error.message, path=[outage.key], original_error=outage.error
            )
            return ExecutionResult(data=None, errors=[error])
        except (Abort, TwoFilters, ServiceError, GraphQLError):
            # The request's own data or arguments: normal execution reports the error.
            self.fallbacks += 1
            return None
        except Exception:
            log.exception(
                "compiled plan failed; normal execution serves operation %r from now on",
                operation_name,
            )
            plans.by_key[key] = None
            self.failures += 1
            self.fallbacks += 1
            return None
        self.compiled += 1
        return ExecutionResult(data=data)

    async def _run(self, plan: Plan, walk: Walk, context: Any) -> dict[str, Any]:
        data: dict[str, Any] = {}
        storage, owner = context.storage, context.owner
        # Sessions asked only for their own fields (aliases side by side): one find for all.
        flat = [
            r
            for r in plan.roots
            if r.shape is not None and r.kind == "session" and not r.shape.nested
        ]
        found: dict[str, Doc] = {}
        if flat:
            ids = [r.args.values(walk)["id"] for r in flat]  # type: ignore[union-attr]
            fields = frozenset().union(*(r.shape.fields for r in flat))  # type: ignore[union-attr]
            try:
                found = await storage.sessions.get_sessions(ids, fields, owner=owner)
            except DatabaseUnavailable as exc:
                raise _Outage(flat[0].key, exc) from exc
        flat_roots = {id(r) for r in flat}
        for root in plan.roots:
            if id(root) in flat_roots:
                assert root.args is not None and root.build is not None
                doc = found.get(root.args.values(walk)["id"])
                data[root.key] = None if doc is None else root.build(doc, Env(context.caller, 0))
                continue
            if root.kind == "typename":
                data[root.key] = "Query"
                continue
            if root.kind == "viewer":
                assert root.build is not None
                data[root.key] = root.build(None, Env(context.caller, 0))
                continue
            assert root.shape is not None and root.args is not None and root.build is not None
            env = Env(context.caller, root.shape.size)
            args = root.args.values(walk)
            session_id = args["id"] if root.kind == "session" else args["sessionId"]
            env.session_id = session_id
            planned = root.shape.read(walk, strict=True)
            assert planned is not None
            try:
                view = await storage.sessions.read_session(session_id, planned.read, owner=owner)
            except DatabaseUnavailable as exc:
                raise _Outage(root.key, exc) from exc
            if view is None:
                data[root.key] = None
                continue
            for (index, _), page in zip(planned.message_keys, view.message_pages, strict=True):
                env.pages[index] = page
            for (index, _), page in zip(planned.run_keys, view.run_pages, strict=True):
                env.pages[index] = page
            for (index, *_), run in zip(planned.lookup_keys, view.runs, strict=True):
                env.lookups[index] = run
            env.specs, env.chunks = planned.chunk_specs, view.chunks
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
