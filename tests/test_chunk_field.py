"""Adding a field to ``RetrievedChunk`` is one line: a copy of the package with one line
added to ``storage.model.ChunkRecord``, and nothing else, takes the field through a write
(``recordRun``), stores it, serves it back in GraphQL in both execution modes, in REST,
exports and imports it, and describes it in the SDL and the OpenAPI document."""

from __future__ import annotations

import difflib
import json
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

import agent_sessions

NEW_FIELD = '    page: Annotated[int | None, About("The page of its source it was found on.")]\n'

SCRIPT = r"""
import asyncio, json, sys

import httpx

import agent_sessions
from agent_sessions.app import build_app
from agent_sessions.settings import Settings
from agent_sessions.storage import Storage

root, uri, data_dir = sys.argv[1:4]
assert agent_sessions.__file__.startswith(root), agent_sessions.__file__

RECORD = '''mutation($input: RecordRunInput!) { recordRun(input: $input) { id } }'''
CHUNKS = [{"id": "c1", "text": "t", "page": 7}, {"id": "c2", "text": "u"}]
RUN = '''{ run(sessionId: "s1", runId: "RUN") { retrievedContext { id page } } }'''
MESSAGES = '''{ session(id: "s1") { messages { nodes { role retrievedContext { page } } } } }'''


async def main():
    out = {}
    for compiled in (True, False):
        name = f"{sys.argv[4]}_{int(compiled)}"
        storage = await Storage.connect(uri, name)
        settings = Settings(data_dir=data_dir, compiled_execution=compiled)
        app = build_app(settings, storage=storage)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as c:
            async def gql(query, variables=None):
                body = (await c.post("/graphql", json={"query": query, "variables": variables})).json()
                assert "errors" not in body, body
                return body["data"]
            run_input = {"sessionId": "s1", "agentId": "a", "retrievedContext": CHUNKS,
                         "messages": [{"role": "USER", "content": "q"},
                                      {"role": "ASSISTANT", "content": "a"}]}
            run_id = (await gql(RECORD, {"input": run_input}))["recordRun"]["id"]
            schema = app.state.services.schema
            before = schema.compiled.compiled if schema.compiled else 0
            mode = "compiled" if compiled else "normal"
            out[mode] = {
                "run": await gql(RUN.replace("RUN", run_id)),
                "messages": await gql(MESSAGES),
                "answered_compiled": (schema.compiled.compiled if schema.compiled else 0) - before,
            }
            if compiled:
                rest = await c.get(f"/api/sessions/s1/runs/{run_id}/retrieved-context")
                out["rest_context"] = rest.json()
                out["rest_messages"] = (await c.get("/api/sessions/s1/messages")).json()
                out["openapi"] = (await c.get("/api/openapi.json")).json()
                out["sdl"] = schema.as_str()
                # Export, then import into another database: the field goes along.
                from agent_sessions.storage.transfer import export_sessions, import_session

                [record] = [r async for r in export_sessions(storage)]
                out["exported"] = [c.get("page") for r in record["runs"] for c in r["retrieved_context"]]
                copy = await Storage.connect(uri, name + "_copy")
                out["imported"] = (await import_session(copy, record)).status
                [again] = [r async for r in export_sessions(copy)]
                out["reimported"] = [c.get("page") for r in again["runs"] for c in r["retrieved_context"]]
                await copy.client.drop_database(name + "_copy")
                await copy.client.close()
        await app.state.services.agents.aclose()
        await storage.client.drop_database(name)
        await storage.client.close()
    print(json.dumps(out))


asyncio.run(main())
"""


def _package_with_the_field(tmp_path: Path) -> Path:
    """A copy of the package with ``NEW_FIELD`` added to ``ChunkRecord``, and the proof
    that it is the only change."""
    root = tmp_path / "src"
    source = Path(agent_sessions.__file__).parent
    shutil.copytree(source, root / "agent_sessions", ignore=shutil.ignore_patterns("__pycache__"))
    model = root / "agent_sessions" / "storage" / "model.py"
    before = model.read_text()
    end_of_chunk_record = "    ]\n\n\nclass ReasoningRecord"
    assert before.count(end_of_chunk_record) == 1
    after = before.replace(end_of_chunk_record, "    ]\n" + NEW_FIELD + "\n\nclass ReasoningRecord")
    model.write_text(after)
    diff = difflib.ndiff(before.splitlines(keepends=True), after.splitlines(keepends=True))
    assert [line[2:] for line in diff if line[:2] in ("+ ", "- ")] == [NEW_FIELD]
    return root


@pytest.mark.slow  # a second interpreter imports the whole package
def test_a_chunk_field_added_in_one_place_goes_everywhere(mongo_uri: str, tmp_path: Path) -> None:
    root = _package_with_the_field(tmp_path)
    database = f"t_{uuid.uuid4().hex[:12]}"
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(root), mongo_uri, str(tmp_path / "data"), database],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,  # not the checkout, whose agent_sessions would come first
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out: dict[str, Any] = json.loads(done.stdout)
    for mode in ("compiled", "normal"):
        assert out[mode]["run"] == {
            "run": {"retrievedContext": [{"id": "c1", "page": 7}, {"id": "c2", "page": None}]}
        }
        nodes = out[mode]["messages"]["session"]["messages"]["nodes"]
        assert nodes[1] == {"role": "ASSISTANT", "retrievedContext": [{"page": 7}, {"page": None}]}
    assert out["compiled"]["answered_compiled"] == 2  # both reads served by compiled plans
    assert out["normal"]["answered_compiled"] == 0
    assert [c["page"] for c in out["rest_context"]["retrieved_context"][-2:]] == [7, None]
    assert [c["page"] for c in out["rest_messages"][1]["retrieved_context"]] == [7, None]
    chunk_schema = out["openapi"]["components"]["schemas"]["Chunk"]
    assert "page" in chunk_schema["required"]
    assert chunk_schema["properties"]["page"]["anyOf"] == [{"type": "integer"}, {"type": "null"}]
    assert out["exported"] == [7, None] and out["imported"] == "imported"
    assert out["reimported"] == [7, None]  # export and import carry it too
    sdl = out["sdl"]
    assert '  """The page of its source it was found on."""\n  page: Int\n}' in sdl  # output
    assert sdl.count('"""The page of its source it was found on."""\n  page: Int\n') == 2  # input
