"""HTTP ingestion benchmark: events/s through /v1/batch and latency at a steady 5,000 events/s.

The load runs in its own process (bench/http_load.py) against a real `troth serve`; results are
written to bench/results/http.md.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.e2e.harness import Server, free_port, troth

RESULTS = Path(__file__).parent / "results"
LOAD = Path(__file__).parent / "http_load.py"


def _load(server: Server, key: str, *args: str) -> dict:
    out = subprocess.run(
        [sys.executable, str(LOAD), "--port", str(server.port), "--key", key, *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    return json.loads(out.stdout)


@pytest.mark.bench
def test_http_ingestion_throughput_and_latency(tmp_path: Path) -> None:
    db = tmp_path / "bench.duckdb"
    key = json.loads(troth("keys", "create", "--source", "bench", "--json", db=db).stdout)["key"]
    server = Server(db, free_port()).start()
    try:
        _load(server, key, "--batches", "200")  # warm-up
        flat = _load(server, key, "--connections", "8", "--batches", "4000", "--batch", "100")
        steady = _load(server, key, "--connections", "8", "--batches", "1500", "--rate", "5000")
    finally:
        server.stop()
    assert set(flat["statuses"]) == {"200"} and set(steady["statuses"]) == {"200"}
    RESULTS.mkdir(exist_ok=True)
    rows = [
        ("flat out, 8 connections, batches of 100", flat, 50_000, None),
        ("steady 5,000 events/s, 8 connections", steady, None, 50.0),
    ]
    lines = [
        f"# HTTP ingestion ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.machine()}, "
        f"{os.cpu_count()} cores)",
        "",
        "| load | events | events/s | goal events/s | p50 ms | p99 ms | goal p99 ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, r, goal_rate, goal_p99 in rows:
        lines.append(
            f"| {label} | {r['events']:,} | {r['events_per_s']:,.0f} | "
            f"{goal_rate or ''} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {goal_p99 or ''} |"
        )
    (RESULTS / "http.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
