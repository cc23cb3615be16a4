"""Live runs: what streaming costs, in one run of ``python -m bench``.

- ``first_delta_overhead_ms``: from the backend's first token to the client's first
  ``delta``, through the server, minus the same token read straight from the backend
  (medians; the backend stamps each token with ``CLOCK_MONOTONIC``, which every process
  on the machine shares).
- ``start_event_vs_record``: time to the ``start`` event of a streaming run, over the
  time of a ``recordRun`` that stores the same RUNNING run (medians, alternated).
- ``stream_db_writes_2000_tokens``: database writes while a 2,000-token answer streams
  (one token a millisecond), counted in the server; the stored answer is checked
  against the concatenated deltas.

The backend and the app run in child processes (``python -m bench.streaming backend|app``)
so the client, the server and the backend do not share an interpreter.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
from httpx_sse import connect_sse
from pymongo.monitoring import CommandListener, CommandStartedEvent

from agent_sessions.settings import AgentConfig, Settings

WRITES = frozenset({"insert", "update", "findAndModify", "delete"})
LONG_TOKENS = 2000


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- the child processes ----------------------------------------------------------------


def backend_app() -> Any:
    """An OpenAI-compatible streaming backend; the model name says how: ``tokens=N,pace=MS``.
    Each token's text is the monotonic clock (ns) at which it was made."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import StreamingResponse
    from starlette.routing import Route

    async def chat(request: Request) -> StreamingResponse:
        body = await request.json()
        spec = dict(part.split("=") for part in body["model"].split(","))
        tokens, pace = int(spec["tokens"]), float(spec["pace"]) / 1000

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(tokens):
                delta = {"content": f"{time.monotonic_ns()} "}
                yield b"data: %s\n\n" % orjson.dumps({"choices": [{"index": 0, "delta": delta}]})
                if pace:
                    await asyncio.sleep(pace)
            done = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
            yield b"data: " + orjson.dumps(done) + b"\n\n"
            usage = {"prompt_tokens": 5, "completion_tokens": tokens, "total_tokens": tokens + 5}
            yield b"data: %s\n\ndata: [DONE]\n\n" % orjson.dumps({"choices": [], "usage": usage})

        return StreamingResponse(chunks(), media_type="text/event-stream")

    return Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])])


def agents(backend_url: str) -> dict[str, AgentConfig]:
    models = {"first": "tokens=3,pace=0", "long": f"tokens={LONG_TOKENS},pace=1"}
    url = f"{backend_url}/v1"
    return {
        name: AgentConfig(backend="openai", base_url=url, model=model, timeout_s=120)
        for name, model in models.items()
    }


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(prog="python -m bench.streaming")
    parser.add_argument("role", choices=["backend", "app"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--uri")
    parser.add_argument("--database")
    parser.add_argument("--backend-url")
    parser.add_argument("--data-dir", help="the app's own (its search index)")
    args = parser.parse_args()
    if args.role == "backend":
        app = backend_app()
    else:
        from agent_sessions.app import build_app

        settings = Settings(
            mongodb_uri=args.uri,
            database=args.database,
            data_dir=args.data_dir,
            agents=agents(args.backend_url),
        )
        app = build_app(settings)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


# --- the measurements ---------------------------------------------------------------------


def _first_token_ns(data: str, *, openai: bool) -> int:
    """The stamp in the first token: a chat-completion chunk, or our ``delta`` event."""
    payload = orjson.loads(data)
    text = payload["choices"][0]["delta"]["content"] if openai else payload["content"]
    return int(text.split()[0])


def _wait_up(url: str, child: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise RuntimeError(f"{url}: the child process exited")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def _first_delta(client: httpx.Client, backend: str, app: str) -> tuple[float, float]:
    """Milliseconds from the first token's stamp to the client, direct and through the app."""
    body = {
        "model": "tokens=3,pace=0",
        "messages": [{"role": "user", "content": "hi"}],
        "stream": True,
    }
    with connect_sse(client, "POST", f"{backend}/v1/chat/completions", json=body) as source:
        events = source.iter_sse()
        first = next(events)
        direct = (time.monotonic_ns() - _first_token_ns(first.data, openai=True)) / 1e6
        for _ in events:
            pass
    path = f"{app}/api/agents/first/runs"
    with connect_sse(client, "POST", path, json={"message": "hi"}) as source:
        events = source.iter_sse()
        for sse in events:
            if sse.event == "delta":
                served = (time.monotonic_ns() - _first_token_ns(sse.data, openai=False)) / 1e6
                break
        for _ in events:
            pass
    return direct, served


RECORD = "mutation($i: RecordRunInput!) { recordRun(input: $i) { id status } }"


def _start_vs_record(client: httpx.Client, app: str) -> tuple[float, float]:
    """Seconds to the start event of a new run, and to the answer of a recordRun that
    stores the same RUNNING run in a new session."""
    t = time.perf_counter()
    with connect_sse(
        client, "POST", f"{app}/api/agents/first/runs", json={"message": "What is our Q1 revenue?"}
    ) as source:
        events = source.iter_sse()
        first = next(events)
        start = time.perf_counter() - t
        assert first.event == "start", first
        for _ in events:  # to its end, untimed: runs do not pile up
            pass
    run = {
        "agentId": "first",
        "status": "RUNNING",
        "runId": uuid.uuid4().hex,
        "messages": [{"role": "USER", "content": "What is our Q1 revenue?"}],
    }
    t = time.perf_counter()
    response = client.post(f"{app}/graphql", json={"query": RECORD, "variables": {"i": run}})
    record = time.perf_counter() - t
    assert "errors" not in response.json(), response.text
    return start, record


class _Writes(CommandListener):
    def __init__(self) -> None:
        self.names: list[str] = []

    def started(self, event: CommandStartedEvent) -> None:
        if event.command_name in WRITES:
            self.names.append(event.command_name)

    def succeeded(self, event: Any) -> None:
        pass

    def failed(self, event: Any) -> None:
        pass


async def _long_answer(uri: str, database: str, backend: str, data_dir: str) -> dict[str, Any]:
    """A 2,000-token answer through the app in this process, its writes counted."""
    from agent_sessions.app import build_app
    from agent_sessions.storage import Storage

    writes = _Writes()
    storage = await Storage.connect(uri, database, listeners=[writes])
    settings = Settings(
        mongodb_uri=uri, database=database, data_dir=data_dir, agents=agents(backend)
    )
    app = build_app(settings, storage=storage)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(
            transport=transport, base_url="http://localhost", timeout=120
        ) as client:
            writes.names.clear()
            t = time.perf_counter()
            response = await client.post(
                "/api/agents/long/runs", json={"message": "Long one", "stream": True}
            )
            elapsed = time.perf_counter() - t
            counted = len(writes.names)
            deltas, end = [], {}
            for block in response.text.split("\n\n"):
                lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
                if lines.get("event") == "delta":
                    deltas.append(orjson.loads(lines["data"])["content"])
                elif lines.get("event") == "end":
                    end = orjson.loads(lines["data"])
            runs = (await client.get(f"/api/sessions/{end['session_id']}/runs")).json()
            stored = next(r["content"] for r in runs if r["runId"] == end["run_id"])
    finally:
        await app.state.services.agents.aclose()
        await storage.client.close()
    answer = "".join(deltas)
    return {
        "writes": counted,
        "seconds": round(elapsed, 3),
        "tokens": len(deltas),
        "stored_equals_deltas": stored == answer and len(deltas) == LONG_TOKENS,
        "by_command": {name: writes.names[:counted].count(name) for name in sorted(WRITES)},
    }


def measure(uri: str, quick: bool) -> dict[str, Any]:
    """Every streaming row, against the database at ``uri`` (a database of its own)."""
    database = f"bench_streaming_{uuid.uuid4().hex[:8]}"
    backend_port, app_port = _free_port(), _free_port()
    backend, app = f"http://127.0.0.1:{backend_port}", f"http://127.0.0.1:{app_port}"
    me = [sys.executable, "-m", "bench.streaming"]
    data_dir = tempfile.mkdtemp(prefix="agent-sessions-streaming-")  # its own search index
    app_argv = ["--uri", uri, "--database", database, "--backend-url", backend,
                "--data-dir", f"{data_dir}/app"]  # fmt: skip
    # Our own module, fixed argv.
    children = [
        subprocess.Popen([*me, "backend", "--port", str(backend_port)]),  # noqa: S603
        subprocess.Popen([*me, "app", "--port", str(app_port), *app_argv]),  # noqa: S603
    ]
    try:
        _wait_up(f"{backend}/", children[0])
        _wait_up(f"{app}/healthz", children[1])
        samples = 20 if quick else 100
        direct, served, starts, records = [], [], [], []
        with httpx.Client(timeout=60) as client:
            for _ in range(3):  # warm-up
                _first_delta(client, backend, app)
                _start_vs_record(client, app)
            for _ in range(samples):
                d, s = _first_delta(client, backend, app)
                direct.append(d)
                served.append(s)
                start, record = _start_vs_record(client, app)
                starts.append(start)
                records.append(record)
        long = asyncio.run(_long_answer(uri, database, backend, f"{data_dir}/long"))
    finally:
        for child in children:
            child.terminate()
            child.wait(30)
        from pymongo import MongoClient

        with MongoClient(uri) as client:
            client.drop_database(database)
        shutil.rmtree(data_dir, ignore_errors=True)
    return {
        "first_delta_overhead_ms": round(statistics.median(served) - statistics.median(direct), 3),
        "first_delta_direct_ms": round(statistics.median(direct), 3),
        "first_delta_served_ms": round(statistics.median(served), 3),
        "start_event_vs_record": round(statistics.median(starts) / statistics.median(records), 3),
        "start_event_ms": round(statistics.median(starts) * 1000, 3),
        "record_run_ms": round(statistics.median(records) * 1000, 3),
        "stream_db_writes_2000_tokens": long["writes"],
        "stream_2000_tokens": long,
        "samples": samples,
    }


def table(figures: dict[str, Any]) -> str:
    long = figures["stream_2000_tokens"]
    return "\n".join(
        [
            "| live runs | value |",
            "|---|---:|",
            f"| first_delta_overhead_ms (median, through the server minus direct: "
            f"{figures['first_delta_served_ms']:.2f} − {figures['first_delta_direct_ms']:.2f}) | "
            f"{figures['first_delta_overhead_ms']:.3f} |",
            f"| start_event_vs_record ({figures['start_event_ms']:.2f} ms / "
            f"{figures['record_run_ms']:.2f} ms) | {figures['start_event_vs_record']:.2f} |",
            f"| stream_db_writes_2000_tokens (in {long['seconds']:.1f} s; stored answer = deltas: "
            f"{str(long['stored_equals_deltas']).lower()}) | {long['writes']} |",
        ]
    )


if __name__ == "__main__":
    main()
