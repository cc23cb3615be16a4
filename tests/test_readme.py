"""The README's curl examples, pasted into a shell against a live server, in order."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

from .conftest import LiveServer, live_settings

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
    assert len(curl_commands()) == 6


def test_readme_curl_examples_work(mongo_uri: str, tmp_path: Any) -> None:
    outputs: list[str] = []
    with LiveServer(live_settings(mongo_uri, tmp_path)) as server:
        for command in curl_commands():
            script = command.replace(EXAMPLE_HOST, server.url)
            result = subprocess.run(
                ["bash", "-c", script], capture_output=True, text=True, timeout=60, check=False
            )
            assert result.returncode == 0, (command, result.stderr)
            outputs.append(result.stdout.strip())
    bodies = [json.loads(line) for line in outputs[:-1]]
    for body in bodies:
        assert "errors" not in body, body
        assert "error" not in body, body
    recorded, chat, listing, messages, context = bodies
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
    assert outputs[-1] == "204"
