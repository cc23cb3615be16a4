"""The README's Python client examples, pasted into a script, against a live server with the
demo data."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path
from typing import Any

from .helpers import LiveServer, live_settings
from .test_client_sync import seed_demo

README = Path(__file__).resolve().parent.parent / "README.md"


def python_examples() -> list[str]:
    section = README.read_text().split("## Python client", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_the_readme_client_examples_run(mongo_uri: str, tmp_path: Any) -> None:
    examples = python_examples()
    assert len(examples) == 2
    settings = live_settings(mongo_uri, tmp_path)
    with LiveServer(settings) as server:
        seed_demo(settings)
        out = io.StringIO()
        namespace: dict[str, Any] = {}
        with contextlib.redirect_stdout(out):
            for example in examples:
                exec(example.replace("http://127.0.0.1:8080", server.url), namespace)
    printed = out.getvalue()
    assert "demo-q1-revenue Q1 revenue and margin" in printed
    assert "404 NOT_FOUND session not found" in printed
    assert "reranker_score" in printed and "usage_total_tokens" in printed
    context = namespace["context"]
    assert context.run_id == "demo-q1-revenue-run-1" and len(context.chunks) == 8
    assert len(namespace["runs"]) == 11  # the frame of alice's runs, last
