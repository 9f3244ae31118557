"""Smoke test of the benchmark command: ``python -m bench --quick`` runs and writes its JSON.

Timing and memory targets live in the benchmark itself (docs/performance.md), never here:
this only checks that every section ran and that the call ratios were computed.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_quick_benchmark_writes_every_section(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "| items |" in done.stdout  # the Markdown table went to stdout

    results = json.loads((tmp_path / "latest.json").read_text())
    assert {
        "machine",
        "sandbox",
        "calls",
        "transport",
        "rate_limited",
        "cpu",
        "profile",
        "rss",
        "network",
        "targets",
    } <= results.keys()

    for row in results["calls"]:
        items = row["items"]
        assert row["calls_client"] == row["calls_sandbox"]
        assert row["api_floor"] == 3 + 2 * math.ceil(items / row["page_size"]) + math.ceil(
            items / 100
        )
        assert row["engine_floor"] == row["api_floor"] + 1
        assert row["ratio_api_floor"] == row["calls_client"] / row["api_floor"]
        assert row["ratio_engine_floor"] == row["calls_client"] / row["engine_floor"]
        assert row["naive_calls"] == 3 + 2 * math.ceil(items / 50) + items
        assert row["naive_over_actual"] == row["naive_calls"] / row["calls_client"]
        assert row["run"]["final_event"] == "completed"

    assert results["transport"]["identical"] is True
    assert [r["label"] for r in results["rate_limited"]] == ["engine", "naive baseline"]
    for row in results["rate_limited"]:
        assert row["floor_seconds"] > 0
        assert "ratio_to_floor" in row
        assert "responses_429" in row
    assert {"no-op connector", "beancount connector"} <= {r["label"] for r in results["cpu"]}
    assert all("engine_ms_per_item" in r for r in results["cpu"])
    assert len(results["rss"]) == len(results["calls"])
    assert all(r["engine_only_peak_mib"] > 0 for r in results["rss"])
    assert all({"target", "figure", "met"} <= t.keys() for t in results["targets"])

    [network] = results["network"]
    assert network["items"] == 30
    assert network["final_event"] == "completed"
    assert network["posted"] == 30
    assert network["receipts"] > 0
    assert network["pleo_calls"] > 0
    assert network["target_seconds"] == max(
        network["pleo_calls"] / 500 * 60, 30 * network["post_seconds"] / 8
    )
    assert network["ratio_to_target"] == network["wall_seconds"] / network["target_seconds"]
    # Latency was added: the run cannot be faster than its serial posts (lower bound only).
    assert network["wall_seconds"] >= 30 * network["post_seconds"] / 8
    # The same job with concurrency 1 everywhere ran too, and made the same Pleo calls.
    assert network["concurrency_1_wall_seconds"] > 0
    assert network["concurrency_1_pleo_calls"] == network["pleo_calls"]
    assert "## Over a real network" in done.stdout
