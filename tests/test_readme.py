"""The README's curl examples, pasted into a shell against a live server, in order."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from agent_sessions.settings import load_settings

from .agent_servers import AgentBackend
from .helpers import LiveServer, live_settings

README = Path(__file__).resolve().parent.parent / "README.md"
EXAMPLE_HOST = "http://127.0.0.1:8080"


def curl_commands() -> list[str]:
    """Every curl command of the README's shell blocks; a command runs until the next."""
    commands: list[str] = []
    for block in re.findall(r"```sh\n(.*?)```", README.read_text(), flags=re.S):
        if EXAMPLE_HOST not in block:
            continue
        for line in block.splitlines(keepends=True):
            if line.startswith("curl"):
                commands.append(line)
            elif commands:
                commands[-1] += line
    return commands


def test_readme_has_curl_examples() -> None:
    assert len(curl_commands()) == 8


def readme_config(backend: AgentBackend, tmp_path: Path) -> Path:
    """The README's config file, its agents pointed at a local backend."""
    [toml] = re.findall(r"```toml\n(.*?)```", README.read_text(), flags=re.S)
    toml = toml.replace("http://127.0.0.1:9000/v1", f"{backend.url}/v1")
    toml = toml.replace("http://127.0.0.1:9100/run", f"{backend.url}/run")
    path = tmp_path / "config.toml"
    path.write_text(toml)
    return path


def test_readme_curl_examples_work(mongo_uri: str, tmp_path: Path) -> None:
    outputs: list[str] = []
    backend = AgentBackend()
    config = load_settings(config=readme_config(backend, tmp_path))
    assert set(config.agents) == {"finance_agent", "rag_agent"}
    with backend, LiveServer(live_settings(mongo_uri, tmp_path, agents=config.agents)) as server:
        for command in curl_commands():
            script = command.replace(EXAMPLE_HOST, server.url)
            result = subprocess.run(
                ["bash", "-c", script], capture_output=True, text=True, timeout=60, check=False
            )
            assert result.returncode == 0, (command, result.stderr)
            outputs.append(result.stdout.strip())
    streamed = outputs.pop()  # the Live runs example: server-sent events
    bodies = [json.loads(line) for line in outputs if line != "204"]
    for body in bodies:
        assert "errors" not in body, body
        assert "error" not in body, body
    recorded, chat, listing, messages, context, agent_run = bodies
    assert recorded["data"]["recordRun"] == {
        "id": "demo-run-1",
        "sessionId": "demo-session",
        "status": "COMPLETED",
    }
    nodes = chat["data"]["session"]["messages"]["nodes"]
    assert [n["role"] for n in nodes] == ["USER", "ASSISTANT"]
    assert nodes[1]["retrievedContext"] == [
        {"id": "chunk-1", "sourceName": "Q1-2026.pdf", "score": 0.84}
    ]
    assert [s["sessionId"] for s in listing["content"]] == ["demo-session"]
    assert messages[1]["retrieved_context"][0]["text"] == "Q1 revenue: $4.2M"
    assert context["retrieved_context"][0] == {"_type": "retrieval_diagnostics", "latency_ms": 12}
    assert outputs[-2] == "204"
    assert agent_run["status"] == "COMPLETED"
    assert agent_run["content"] == "answer to: What is our Q1 revenue? (2 messages)"
    events = [dict(line.split(": ", 1) for line in block.splitlines())
              for block in streamed.split("\n\n")]  # fmt: skip
    assert [e["event"] for e in events] == ["start", "delta", "end"]
    assert [e["id"] for e in events] == ["1", "2", "3"]
    end = json.loads(events[-1]["data"])
    assert (end["status"], end["content"]) == ("COMPLETED", "answer to: And Q2? (2 messages)")
    assert backend.received[0]["messages"][0] == {
        "role": "system",
        "content": "You answer finance questions.",
    }
