"""The GraphQL-over-HTTP spec's reference audit (``graphql-http``'s ``auditServer``, 61
cases: MUSTs, SHOULDs and MAYs) against a live server. Node.js and the npm package are
installed into the test's own temporary directory; without them the test says so and is
skipped."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from .helpers import LiveServer, live_settings

AUDIT = """
import { auditServer } from 'graphql-http';
const results = await auditServer({ url: process.argv[2] });
console.log(JSON.stringify(results.map((r) => ({ name: r.name, status: r.status,
                                                reason: r.reason }))));
"""


@pytest.fixture(scope="module")
def audit_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("the graphql-http audit needs Node.js and npm, and this machine has neither")
    where = tmp_path_factory.mktemp("graphql-http-audit")
    (where / "package.json").write_text('{"private": true, "type": "module"}')
    install = subprocess.run(
        [npm, "install", "--no-audit", "--no-fund", "--silent", "graphql-http@^1.22",
         "graphql@^16"],
        cwd=where, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    if install.returncode != 0:
        pytest.skip(f"npm could not install graphql-http: {install.stderr.strip()[-300:]}")
    (where / "audit.mjs").write_text(AUDIT)
    return where


def test_the_graphql_over_http_audit_passes_every_case(
    audit_dir: Path, mongo_uri: str, tmp_path: Path
) -> None:
    with LiveServer(live_settings(mongo_uri, tmp_path)) as server:
        run = subprocess.run(
            ["node", "audit.mjs", f"{server.url}/graphql"],
            cwd=audit_dir, capture_output=True, text=True, timeout=120, check=True,
        )  # fmt: skip
    results: list[dict[str, Any]] = json.loads(run.stdout)
    assert len(results) == 61
    failing = [
        f"{r['status']}: {r['name']} ({r['reason']})" for r in results if r["status"] != "ok"
    ]
    assert failing == []
