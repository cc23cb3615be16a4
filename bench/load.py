"""Load and durability: ``python -m bench.load [--seconds S] [--clients N] [--workers 1 2]``.

Starts ``agent-sessions serve --workers N`` as a user would (its own embedded database in
a temporary directory), then 200 concurrent clients for 60 s: appends (``recordRun``),
chat views, session lists, and deletes of sessions made for the purpose. Afterwards every
acknowledged append must be stored exactly once and every deleted session gone. Reports
throughput, p50/p99 and errors per worker count, and how long an idle server takes to
stop on SIGINT. ``durability`` measures what a journaled write costs on the embedded
database (``--sync-on-commit`` and ``j: true``) against one that is not.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
from pymongo import MongoClient

from agent_sessions.storage.embedded import start_embedded

COMMAND = str(Path(sys.executable).with_name("agent-sessions"))
SESSIONS = 50  # appended to by every client in turn, so writes to one session contend
RECORD = "mutation($i: RecordRunInput!) { recordRun(input: $i) { id sessionId } }"
CHAT = """query($id: ID!) { session(id: $id) { title messages(last: 20) {
  nodes { role content createdAt retrievedContext { id sourceName score } } } } }"""
# What a client does, by weight: appends, chat views, lists, deletes.
MIX = (("append", 4), ("chat", 3), ("list", 2), ("delete", 1))


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    acknowledged: dict[str, list[str]] = field(default_factory=dict)  # session → run ids
    deleted: list[str] = field(default_factory=list)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(session_id: str, run_id: str) -> bytes:
    run = {"sessionId": session_id, "runId": run_id, "agentId": "load_agent",
           "messages": [{"role": "USER", "content": f"question {run_id}"},
                        {"role": "ASSISTANT", "content": f"answer {run_id}"}],
           "retrievedContext": [{"id": "c1", "text": "a chunk", "score": 0.5,
                                 "sourceName": "doc.pdf"}]}  # fmt: skip
    return orjson.dumps({"query": RECORD, "variables": {"i": run}})


async def _timed(tally: Tally, name: str, request: Any, expect: int) -> httpx.Response | None:
    start = time.perf_counter()
    try:
        response = await request
    except httpx.HTTPError as exc:
        tally.errors[f"{name}: {type(exc).__name__}"] += 1
        return None
    tally.latencies.append(time.perf_counter() - start)
    if response.status_code != expect or b'"errors"' in response.content[:2000]:
        tally.errors[f"{name}: {response.status_code}"] += 1
        return None
    return response


async def _client(http: httpx.AsyncClient, n: int, deadline: float, tally: Tally) -> None:
    rng = random.Random(n)
    names, weights = zip(*MIX, strict=True)
    headers = {"Content-Type": "application/json"}
    while time.monotonic() < deadline:
        kind = rng.choices(names, weights)[0]
        session = f"load-{rng.randrange(SESSIONS)}"
        if kind == "append":
            run_id = uuid.uuid4().hex
            post = http.post("/graphql", content=_run(session, run_id), headers=headers)
            if await _timed(tally, kind, post, 200) is not None:
                tally.acknowledged.setdefault(session, []).append(run_id)
        elif kind == "chat":
            body = orjson.dumps({"query": CHAT, "variables": {"id": session}})
            await _timed(tally, kind, http.post("/graphql", content=body, headers=headers), 200)
        elif kind == "list":
            await _timed(tally, kind, http.get("/api/sessions", params={"size": 20}), 200)
        else:
            doomed = f"doomed-{uuid.uuid4().hex}"
            post = http.post("/graphql", content=_run(doomed, "r"), headers=headers)
            if await _timed(tally, "create", post, 200) is None:
                continue
            if await _timed(tally, kind, http.delete(f"/api/sessions/{doomed}"), 204):
                tally.deleted.append(doomed)


async def _load(url: str, clients: int, seconds: float) -> tuple[Tally, float]:
    tally = Tally()
    # Idle connections expire before the server's 5 s keep-alive closes them, so no request
    # is sent on a connection the server is closing (a ReadError that is nobody's fault).
    limits = httpx.Limits(
        max_connections=clients, max_keepalive_connections=clients, keepalive_expiry=2.0
    )
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=120) as http:
        # Every appended-to session exists before the clock starts.
        for i in range(SESSIONS):
            body = _run(f"load-{i}", "seed")
            response = await http.post("/graphql", content=body,
                                       headers={"Content-Type": "application/json"})  # fmt: skip
            response.raise_for_status()
            tally.acknowledged.setdefault(f"load-{i}", []).append("seed")
        start = time.monotonic()
        await asyncio.gather(*(_client(http, n, start + seconds, tally) for n in range(clients)))
        elapsed = time.monotonic() - start
    return tally, elapsed


async def _verify(url: str, tally: Tally) -> tuple[int, int]:
    """Acknowledged appends missing and stored more than once, plus deleted sessions still
    there (counted as missing: a delete that answered 204 must hold)."""
    missing = duplicated = 0
    async with httpx.AsyncClient(base_url=url, timeout=120) as http:
        for session, run_ids in tally.acknowledged.items():
            response = await http.get(f"/api/sessions/{session}/runs")
            stored = Counter(r["runId"] for r in response.json())
            missing += sum(1 for r in run_ids if stored[r] == 0)
            duplicated += sum(1 for r in run_ids if stored[r] > 1)
        for session in tally.deleted:
            if (await http.get(f"/api/sessions/{session}")).status_code != 404:
                missing += 1
    return missing, duplicated


def _p(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else 0.0


def load(workers: int, clients: int, seconds: float) -> dict[str, Any]:
    """One server with ``workers`` workers under ``clients`` clients for ``seconds``."""
    with tempfile.TemporaryDirectory(prefix="agent-sessions-load-") as tmp:
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("AGENT_SESSIONS_") and k != "MONGODB_URI"}  # fmt: skip
        env["AGENT_SESSIONS_LOG_LEVEL"] = "warning"
        argv = [COMMAND, "serve", "--port", str(port), "--data-dir", f"{tmp}/data",
                "--workers", str(workers)]  # fmt: skip
        with open(f"{tmp}/serve.log", "wb") as log:
            server = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603
        try:
            _wait_healthy(url, server)
            try:
                tally, elapsed = asyncio.run(_load(url, clients, seconds))
                missing, duplicated = asyncio.run(_verify(url, tally))
            except httpx.TransportError as exc:
                log_text = Path(tmp, "serve.log").read_text()[-4000:]
                raise RuntimeError(f"{exc!r}; the server's log ends:\n{log_text}") from exc
            time.sleep(0.5)  # idle, then stop it as Ctrl-C would
            start = time.monotonic()
            server.send_signal(signal.SIGINT)
            code = server.wait(60)
            stop_s = time.monotonic() - start
        finally:
            if server.poll() is None:
                server.kill()
                server.wait()
        if code != 0:
            log_text = Path(tmp, "serve.log").read_text()
            raise RuntimeError(f"the server exited with {code}: {log_text}")
    requests = len(tally.latencies)
    return {
        "workers": workers,
        "clients": clients,
        "seconds": round(elapsed, 1),
        "requests": requests,
        "rps": round(requests / elapsed, 1),
        "p50_ms": round(_p(tally.latencies, 0.5) * 1000, 1),
        "p99_ms": round(_p(tally.latencies, 0.99) * 1000, 1),
        "errors": sum(tally.errors.values()),
        "error_kinds": dict(tally.errors),
        "acknowledged_appends": sum(len(v) for v in tally.acknowledged.values()) - SESSIONS,
        "deleted": len(tally.deleted),
        "missing": missing,
        "duplicated": duplicated,
        "stop_s": round(stop_s, 3),
    }


def _wait_healthy(url: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError("the server exited before it was healthy")
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError("the server did not become healthy within 60 s")


def durability(writes: int) -> dict[str, float]:
    """Median time of one small journaled append (``$push``, ``j: true``) on an embedded
    database that syncs on commit, against the same append unjournaled on one that does
    not; alternated write by write."""
    with tempfile.TemporaryDirectory(prefix="agent-sessions-durable-") as tmp:
        durable = start_embedded(Path(tmp) / "durable")
        lazy = start_embedded(Path(tmp) / "lazy", sync_on_commit=False)
        try:
            with MongoClient(durable.uri, journal=True) as a, MongoClient(lazy.uri) as b:
                collections = (a.bench.appends, b.bench.appends)
                for col in collections:
                    col.insert_one({"_id": "s", "runs": []})
                times: tuple[list[float], list[float]] = ([], [])
                for i in range(writes):
                    for col, samples in zip(collections, times, strict=True):
                        start = time.perf_counter()
                        col.update_one({"_id": "s"}, {"$push": {"runs": {"i": i, "t": "x" * 200}}})
                        samples.append(time.perf_counter() - start)
        finally:
            durable.stop()
            lazy.stop()
    on, off = (statistics.median(t) * 1000 for t in times)
    return {
        "append_durable_ms": round(on, 3),
        "append_lazy_ms": round(off, 3),
        "append_durable_cost_ms": round(on - off, 3),
        "append_durable_ratio": round(on / off, 2),
    }


def figures(quick: bool) -> dict[str, Any]:
    """What ``python -m bench`` adds to its report; prints a table of it."""
    seconds, writes = (3.0, 30) if quick else (60.0, 300)
    runs = {n: load(n, 200, seconds) for n in (1, 2)}
    out: dict[str, Any] = {
        "load_rps_1_worker": runs[1]["rps"],
        "load_rps_2_workers": runs[2]["rps"],
        "load_p99_ms_1_worker": runs[1]["p99_ms"],
        "load_p99_ms_2_workers": runs[2]["p99_ms"],
        "load_errors": runs[1]["errors"] + runs[2]["errors"],
        "load_lost": sum(r["missing"] + r["duplicated"] for r in runs.values()),
        "stop_s_idle": max(r["stop_s"] for r in runs.values()),
        "load": runs,
        **durability(writes),
    }
    print()
    print("| load (200 clients) | requests/s | p50 ms | p99 ms | errors | lost or doubled | "
          "idle stop s |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|")
    for n, r in runs.items():
        print(f"| {n} worker{'s' if n > 1 else ''}, {r['seconds']:.0f} s | {r['rps']:.1f} | "
              f"{r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['errors']} | "
              f"{r['missing'] + r['duplicated']} | {r['stop_s']:.2f} |")  # fmt: skip
    print()
    print("| durable append (j: true, --sync-on-commit) | ms |\n|---|---:|")
    for key in ("append_durable_ms", "append_lazy_ms", "append_durable_cost_ms"):
        print(f"| {key} | {out[key]:.3f} |")
    print(f"| append_durable_ratio | {out['append_durable_ratio']:.2f}× |")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    for n in args.workers:
        print(orjson.dumps(load(n, args.clients, args.seconds)).decode())


if __name__ == "__main__":
    main()
