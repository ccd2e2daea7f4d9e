"""Bulk import benchmark: Parquet events/s against a plain index-free INSERT, same run.

Runs bench/bench_import.py in its own process at 5M events; it appends its table to
bench/results/import.md.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parent / "bench_import.py"


@pytest.mark.bench
def test_parquet_import_speed() -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--events", "5000000"],
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    print(result.stdout)
    assert result.returncode == 0, result.stderr
