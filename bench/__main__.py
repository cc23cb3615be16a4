"""Run the benchmark: ``python -m bench [--quick] [--json PATH]``. See ``bench/__init__``."""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bson
import httpx
import orjson
from pymongo.monitoring import CommandListener, CommandStartedEvent, CommandSucceededEvent

from agent_sessions.app import build_app
from agent_sessions.auth import OPEN_MODE_CALLER
from agent_sessions.resolvers.context import Context
from agent_sessions.schema import build_schema
from agent_sessions.settings import Settings
from agent_sessions.storage import Storage
from agent_sessions.storage.embedded import start_embedded

from . import beyond, data, load, scale, streaming, transfer
from .surfaces import (
    CHAT_VIEW,
    FLOOR_ROUTES,
    NESTED_LIST,
    NOTEBOOK_DUMP,
    ONE_FIELD,
    RECORD_RUN,
    RUN_INSPECTOR,
    SESSION_LIST,
)

DATABASE = "bench"
RATIOS = {
    "chat_view_graphql_vs_floor": ("chat_view_graphql", "floor_chat"),
    "messages_rest_vs_floor": ("messages_rest", "floor_messages"),
    "run_inspector_rest_vs_floor": ("run_inspector_rest", "floor_run"),
    "list_graphql_vs_floor": ("session_list_graphql", "floor_list"),
    "notebook_dump_vs_floor": ("notebook_dump_graphql", "floor_dump"),
    "append_1000_vs_10": ("append_many", "append_few"),
    "append_10000_vs_10": ("append_huge", "append_few"),
    "long_chat_vs_small": ("chat_view_long_graphql", "chat_view_graphql"),
    # Not a target: the same write through the bare driver, for what the database adds.
    "append_floor_1000_vs_10": ("floor_append_many", "floor_append_few"),
    "append_floor_10000_vs_10": ("floor_append_huge", "floor_append_few"),
}


# The live-run rows (bench/streaming.py), top-level keys in --json.
STREAMING_KEYS = (
    "first_delta_overhead_ms",
    "start_event_vs_record",
    "stream_db_writes_2000_tokens",
)


@dataclass
class Request:
    name: str
    method: str
    path: str
    body: Callable[[], bytes | None] = lambda: None
    weight: int = 1  # samples per round, relative: heavy requests take fewer
    samples: list[float] = field(default_factory=list)


def _graphql(query: str, variables: dict[str, Any] | None = None) -> Callable[[], bytes]:
    return lambda: orjson.dumps({"query": query, "variables": variables})


def _append(session_id: str) -> Callable[[], bytes]:
    def body() -> bytes:
        run = {
            "sessionId": session_id, "runId": uuid.uuid4().hex, "agentId": "finance_agent",
            "messages": [{"role": "USER", "content": "One more question?"},
                         {"role": "ASSISTANT", "content": "One more answer."}],
        }  # fmt: skip
        return orjson.dumps({"query": RECORD_RUN, "variables": {"input": run}})

    return body


def requests_for(ids: dict[str, Any]) -> list[Request]:
    run, user = ids["run_id"], ids["list_user"]
    return [
        Request("floor_chat", "GET", "/floor/chat/M"),
        Request("chat_view_graphql", "POST", "/graphql", _graphql(CHAT_VIEW, {"id": "M"})),
        Request("chat_view_long_graphql", "POST", "/graphql", _graphql(CHAT_VIEW, {"id": "XL"})),
        Request("floor_list", "GET", f"/floor/list/{user}"),
        Request("session_list_graphql", "POST", "/graphql", _graphql(SESSION_LIST, {"user": user})),
        Request("session_list_rest", "GET", f"/api/sessions?userId={user}&size=20"),
        Request("floor_run", "GET", f"/floor/run/M/{run}"),
        Request(
            "run_inspector_graphql", "POST", "/graphql",
            _graphql(RUN_INSPECTOR, {"session": "M", "run": run}),
        ),
        Request("run_inspector_rest", "GET", f"/api/sessions/M/runs/{run}/retrieved-context"),
        Request("floor_messages", "GET", "/floor/messages/M"),
        Request("messages_rest", "GET", "/api/sessions/M/messages"),
        Request("floor_dump", "GET", "/floor/dump/L", weight=0),
        Request("notebook_dump_graphql", "POST", "/graphql", _graphql(NOTEBOOK_DUMP, {"id": "L"}),
                weight=0),
        Request("floor_append_few", "POST", "/floor/append/append-few"),
        Request("append_few", "POST", "/graphql", _append("append-few")),
        Request("floor_append_many", "POST", "/floor/append/append-many"),
        Request("append_many", "POST", "/graphql", _append("append-many")),
        Request("floor_append_huge", "POST", "/floor/append/append-huge"),
        Request("append_huge", "POST", "/graphql", _append("append-huge")),
    ]  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Client:
    """One keep-alive HTTP/1.1 connection; the lightest client the standard library has."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def send(self, req: Request) -> float:
        body = req.body()
        headers = {"Content-Type": "application/json"} if body is not None else {}
        start = time.perf_counter()
        self.conn.request(req.method, req.path, body=body, headers=headers)
        response = self.conn.getresponse()
        payload = response.read()
        elapsed = time.perf_counter() - start
        if response.status != 200 or b'"errors"' in payload[:2000]:
            raise RuntimeError(f"{req.name}: {response.status} {payload[:300]!r}")
        return elapsed


def measure(
    port: int, requests: list[Request], rounds: int, per_round: int, heavy_per_round: int
) -> None:
    """Alternate the variants request by request (A B C … A B C …), ``rounds`` times."""
    client = Client(port)
    for req in requests:  # warm-up: caches, connections, JIT-free but allocation-warm
        client.send(req)
    for _ in range(rounds):
        for i in range(per_round):
            for req in requests:
                if req.weight == 0 and i >= heavy_per_round:
                    continue
                req.samples.append(client.send(req))


def p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


# --- in-process measurements ------------------------------------------------------------------


class Commands(CommandListener):
    """Commands, reply bytes, and the time with a command in flight (commands sent at once
    overlap: their union is what the driver took from the request)."""

    def __init__(self) -> None:
        self.count = 0
        self.bytes = 0
        self.spans: list[tuple[float, float]] = []

    def started(self, event: CommandStartedEvent) -> None:
        if event.command_name not in {"endSessions", "ping", "hello", "isMaster"}:
            self.count += 1

    def succeeded(self, event: CommandSucceededEvent) -> None:
        if event.command_name not in {"endSessions", "ping", "hello", "isMaster"}:
            end = time.perf_counter()
            self.spans.append((end - event.duration_micros / 1e6, end))
            self.bytes += len(bson.encode(event.reply))

    def failed(self, event: Any) -> None:
        pass

    @property
    def busy_s(self) -> float:
        total, reach = 0.0, float("-inf")
        for start, end in sorted(self.spans):
            if end > reach:
                total += end - max(start, reach)
                reach = end
        return total

    def reset(self) -> None:
        self.count = self.bytes = 0
        self.spans = []


async def _read_back_long(client: httpx.AsyncClient) -> dict[str, Any]:
    """Read the long session XL back complete through the API: every message (streamed),
    every run, and every run's chunks through the notebook's GraphQL paging."""
    start = time.perf_counter()
    messages = chunks = 0
    async with client.stream("GET", "/api/sessions/XL/messages") as response:
        assert response.status_code == 200
        body = b"".join([part async for part in response.aiter_bytes()])
    for m in orjson.loads(body):
        messages += 1
        chunks += len(m.get("retrieved_context") or ())
    runs = orjson.loads((await client.get("/api/sessions/XL/runs")).content)
    elapsed = time.perf_counter() - start
    return {
        "messages": messages,
        "runs": len(runs),
        "cited_chunks": chunks,
        "read_back_s": round(elapsed, 2),
    }


def count_fields(value: Any) -> int:
    """Resolved fields in a result: every key of every object."""
    if isinstance(value, dict):
        return len(value) + sum(count_fields(v) for v in value.values())
    if isinstance(value, list):
        return sum(count_fields(v) for v in value)
    return 0


async def in_process(
    uri: str, requests: list[Request], quick: bool, data_dir: Path
) -> dict[str, Any]:
    commands = Commands()
    storage = await Storage.connect(uri, DATABASE, listeners=[commands])
    app = build_app(
        Settings(mongodb_uri=uri, database=DATABASE, data_dir=data_dir),
        storage=storage,
    )
    app.router.routes.extend(FLOOR_ROUTES)
    services = app.state.services
    out: dict[str, Any] = {"db_commands": {}, "db_bytes": {}}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
        nested = [
            Request("nested_list_5", "POST", "/graphql", _graphql(NESTED_LIST, {"n": 5})),
            Request("nested_list_50", "POST", "/graphql", _graphql(NESTED_LIST, {"n": 50})),
        ]
        for req in [*requests, *nested]:
            commands.reset()
            body = req.body()
            headers = {"Content-Type": "application/json"} if body is not None else {}
            response = await client.request(req.method, req.path, content=body, headers=headers)
            assert response.status_code == 200, (req.name, response.text[:300])
            out["db_commands"][req.name] = commands.count
            out["db_bytes"][req.name] = commands.bytes
        out["long"] = await _read_back_long(client)

    # Per-field cost: the notebook dump executed in-process, minus the time in the driver.
    def context() -> Context:  # a fresh one per execution: loaders cache per request
        return Context(
            services.storage, services.settings, OPEN_MODE_CALLER, agents=services.agents
        )

    runs = 2 if quick else 5
    normal = build_schema(compiled=False)
    for key, schema in (("us_per_field", services.schema), ("us_per_field_normal", normal)):
        per_field = []
        for _ in range(runs):
            commands.reset()
            start = time.perf_counter()
            result = await schema.execute(
                NOTEBOOK_DUMP, variable_values={"id": "L"}, context_value=context()
            )
            elapsed = time.perf_counter() - start
            assert not result.errors, result.errors
            fields = count_fields(result.data)
            per_field.append((elapsed - commands.busy_s) / fields * 1e6)
        out[key] = round(statistics.median(per_field), 3)
    out["dump_fields"] = fields
    out["compiled_answers"] = services.schema.compiled.compiled if services.schema.compiled else 0

    # Fixed cost: a one-field query, in-process, after the document is cached.
    times = []
    for _ in range(300 if not quick else 100):
        start = time.perf_counter()
        result = await services.schema.execute(ONE_FIELD, context_value=context())
        times.append(time.perf_counter() - start)
        assert not result.errors
    out["fixed_ms"] = round(statistics.median(times) * 1000, 4)
    times = []
    for _ in range(300 if not quick else 100):
        start = time.perf_counter()
        result = await normal.execute(ONE_FIELD, context_value=context())
        times.append(time.perf_counter() - start)
    out["fixed_ms_normal"] = round(statistics.median(times) * 1000, 4)
    await services.agents.aclose()
    await storage.client.close()
    return out


# --- the run ------------------------------------------------------------------------------------


def table(requests: list[Request], ratios: dict[str, float]) -> str:
    floors = {a: b for a, b in RATIOS.values()}
    rows = [
        "| request | samples | median ms | p99 ms | vs floor |",
        "|---|---:|---:|---:|---:|",
    ]
    medians = {r.name: statistics.median(r.samples) for r in requests}
    for r in requests:
        floor = floors.get(r.name)
        if r.name == "session_list_rest":
            floor = "floor_list"
        if r.name == "run_inspector_graphql":
            floor = "floor_run"
        if r.name.startswith("append_"):
            floor = f"floor_{r.name}"
        vs = f"{medians[r.name] / medians[floor]:.2f}×" if floor in medians else ""
        median, tail = medians[r.name] * 1000, p99(r.samples) * 1000
        rows.append(f"| {r.name} | {len(r.samples)} | {median:.2f} | {tail:.2f} | {vs} |")
    return "\n".join(rows)


def run(args: argparse.Namespace) -> dict[str, Any]:
    sizes = data.QUICK if args.quick else data.FULL
    with tempfile.TemporaryDirectory(prefix="agent-sessions-bench-") as tmp:
        server = start_embedded(Path(tmp) / "data")
        try:
            t = time.perf_counter()
            ids = asyncio.run(_seed(server.uri, sizes))
            print(f"seeded in {time.perf_counter() - t:.1f}s", file=sys.stderr)
            requests = requests_for(ids)
            port = _free_port()
            argv = [sys.executable, "-m", "bench.server", "--uri", server.uri,
                    "--database", DATABASE, "--port", str(port), "--data-dir", f"{tmp}/app",
                    "--loop", args.loop, "--http", args.http]  # fmt: skip
            child = subprocess.Popen(argv)  # noqa: S603 - our own module, fixed argv
            try:
                _wait_healthy(port, child)
                t = time.perf_counter()
                per_round, heavy = (3, 1) if args.quick else (20, 4)
                measure(port, requests, args.rounds, per_round, heavy)
                print(f"measured in {time.perf_counter() - t:.1f}s", file=sys.stderr)
            finally:
                child.terminate()
                child.wait(30)
            results = asyncio.run(in_process(server.uri, requests, args.quick, Path(tmp) / "app"))
            results["long"] = ids["long"] | {f"read_{k}": v for k, v in results["long"].items()}
            t = time.perf_counter()
            results["transfer"] = asyncio.run(transfer.run(server.uri, args.quick))
            print(f"transfer measured in {time.perf_counter() - t:.1f}s", file=sys.stderr)
            t = time.perf_counter()
            results["streaming"] = streaming.measure(server.uri, args.quick)
            print(f"streaming measured in {time.perf_counter() - t:.1f}s", file=sys.stderr)
            # No drops: this database server and its directory go right after.
            results["beyond"] = asyncio.run(beyond.run(server.uri, args.quick, drop=False))
            results["scale"] = asyncio.run(scale.run(server.uri, args.quick, drop=False))
        finally:
            server.stop()
    figures = report(requests, results, args.quick)
    # After the run above has stopped: its own servers, started as a user would.
    figures |= load.figures(args.quick)
    return figures


async def _seed(uri: str, sizes: data.Sizes) -> dict[str, Any]:
    storage = await Storage.connect(uri, DATABASE)
    try:
        return await data.seed(storage, sizes)
    finally:
        await storage.client.close()


def report(requests: list[Request], results: dict[str, Any], quick: bool) -> dict[str, Any]:
    medians = {r.name: statistics.median(r.samples) for r in requests}
    ratios = {key: round(medians[a] / medians[b], 3) for key, (a, b) in RATIOS.items()}
    latency = {
        r.name: {
            "median": round(medians[r.name] * 1000, 3),
            "p99": round(p99(r.samples) * 1000, 3),
            "samples": len(r.samples),
        }
        for r in requests
    }
    out = {
        "ratios": ratios,
        "us_per_field": results["us_per_field"],
        "us_per_field_normal": results["us_per_field_normal"],
        "fixed_ms": results["fixed_ms"],
        "fixed_ms_normal": results["fixed_ms_normal"],
        "db_commands": results["db_commands"],
        "db_bytes": results["db_bytes"],
        "latency_ms": latency,
        "dump_fields": results["dump_fields"],
        "long_session": results["long"],
        **{k: results["streaming"][k] for k in STREAMING_KEYS},
        "streaming": results["streaming"],
        "quick": quick,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        **results["transfer"],  # export_vs_driver, import_vs_driver (speeds), transfer
        **{k: results["beyond"][k] for k in beyond.KEYS},  # issue 17's targets
        "beyond": results["beyond"],
        **results["scale"],  # append_10000_sessions_vs_10
    }
    print(table(requests, ratios))
    print()
    long = results["long"]
    print(
        f"long session XL: {long['messages']:,} messages, {long['runs']:,} runs with 10 chunks "
        f"each, {long['stored_mb']} MB in a head and {long['pages']} pages; stored in "
        f"{long['load_s']} s (one import); read back complete ({long['read_messages']:,} "
        f"messages, {long['read_runs']:,} runs, {long['read_cited_chunks']:,} cited chunks) "
        f"in {long['read_read_back_s']} s"
    )
    print()
    print("| ratio | value |\n|---|---:|")
    for key, value in ratios.items():
        print(f"| {key} | {value:.2f} |")
    print(f"| us_per_field (notebook dump, in-process, compiled) | {out['us_per_field']:.2f} |")
    print(
        f"| us_per_field_normal (the same, normal execution) | {out['us_per_field_normal']:.2f} |"
    )
    print(f"| fixed_ms (one-field query, in-process, compiled) | {out['fixed_ms']:.3f} |")
    print(f"| fixed_ms_normal (the same, normal execution) | {out['fixed_ms_normal']:.3f} |")
    print()
    print(streaming.table(results["streaming"]))
    print()
    print("| request | db commands | db bytes |\n|---|---:|---:|")
    for name, count in out["db_commands"].items():
        print(f"| {name} | {count} | {out['db_bytes'][name]} |")
    print()
    print(transfer.table(results["transfer"]))
    print()
    print(beyond.table(results["beyond"]))
    print()
    print(scale.table(results["scale"]))
    return out


def _wait_healthy(port: int, child: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise RuntimeError("the benchmark server exited")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError("the benchmark server did not become healthy")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a small version, under a minute")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of alternating requests")
    parser.add_argument("--loop", default="auto", help="server event loop (auto: uvloop; asyncio)")
    parser.add_argument("--http", default="auto", help="server HTTP parser (auto: httptools; h11)")
    args = parser.parse_args()
    figures = run(args)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
