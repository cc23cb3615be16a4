"""The benchmark never rots: ``python -m bench --quick`` completes and reports every key.
Timings are not asserted; counts that do not depend on the machine are."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.__main__ import RATIOS

pytestmark = pytest.mark.slow  # a whole benchmark run: not in the fast inner loop

ROOT = Path(__file__).resolve().parent.parent


def test_quick_benchmark_reports_every_key(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(out.read_text())
    assert set(report["ratios"]) == set(RATIOS)
    assert all(value > 0 for value in report["ratios"].values())
    assert report["us_per_field"] > 0
    assert report["search_ms"] > 0 and report["fork_10000_ms"] > 0  # issue 17's rows
    assert report["metadata_list_vs_unfiltered"] > 0
    assert report["append_10000_sessions_vs_10"] > 0  # an append among many sessions
    assert report["fixed_ms"] > 0
    assert report["db_commands"]["nested_list_5"] == report["db_commands"]["nested_list_50"]
    assert set(report["db_commands"]) == set(report["db_bytes"])
    assert "| chat_view_graphql |" in result.stdout
    # The load: both worker counts ran, and nothing acknowledged was lost or doubled.
    assert report["load_rps_1_worker"] > 0 and report["load_rps_2_workers"] > 0
    assert report["load_errors"] == 0 and report["load_lost"] == 0
    assert report["load"]["2"]["acknowledged_appends"] > 0
    assert report["append_durable_ms"] > 0 and report["append_lazy_ms"] > 0
