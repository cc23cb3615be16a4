"""The example notebook runs, headless, on demo data seeded by ``agent-sessions demo``, against
a live server on loopback, so it cannot rot; and it is saved with its outputs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

from .helpers import LiveServer, live_settings

NOTEBOOK = Path(__file__).resolve().parent.parent / "examples" / "explore_sessions.ipynb"
COMMAND = str(Path(sys.executable).with_name("agent-sessions"))


def outputs(notebook: Any, kind: str) -> list[Any]:
    return [
        o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs
        if o.output_type == kind or kind in o.get("data", {})
    ]  # fmt: skip


def test_the_notebook_is_saved_with_its_outputs() -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert all(c.outputs for c in code[1:]), "every cell after the imports shows something"
    assert len(outputs(notebook, "image/png")) == 2
    assert outputs(notebook, "error") == []


def test_the_notebook_runs_on_demo_data(
    mongo_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = live_settings(mongo_uri, tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENT_SESSIONS_")}
    env |= {"MONGODB_URI": mongo_uri, "AGENT_SESSIONS_DATABASE": settings.database}
    seeded = subprocess.run(
        [COMMAND, "demo"], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert seeded.returncode == 0, seeded.stderr
    with LiveServer(settings) as server:
        monkeypatch.setenv("AGENT_SESSIONS_URL", server.url)  # the kernel inherits it
        notebook = nbformat.read(NOTEBOOK, as_version=4)
        for cell in notebook.cells:
            if cell.cell_type == "code":
                cell.outputs = []
        NotebookClient(
            notebook, timeout=120, kernel_name="python3",
            resources={"metadata": {"path": str(tmp_path)}},
        ).execute()  # fmt: skip
    assert outputs(notebook, "error") == []
    assert len(outputs(notebook, "image/png")) == 2
    text = "".join(o.get("text", "") for o in outputs(notebook, "stream"))
    assert "5 sessions, 24 messages, 11 runs, 80 chunks" in text
    assert "median gap between kept and dropped chunks" in text
    tables = "".join(o["data"]["text/plain"] for o in outputs(notebook, "text/plain"))
    assert "agent backend timed out after 60 s" in tables  # bob's failed run
    assert "demo-q1-revenue" in tables
