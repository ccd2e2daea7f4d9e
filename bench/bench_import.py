"""Bulk import benchmark: events/s of `import_file` on a Segment-shaped Parquet file.

Run as `python bench/bench_import.py --events 5000000`. Files are generated with NumPy and
PyArrow (not the demo generator, so the figures do not move when the demo changes). Measured:
(a) a fresh database, (b) re-importing the same file (all duplicates), (c) a second file into
the non-empty database, both write modes for (a) and (c), a baseline of plain
`INSERT INTO t SELECT * FROM read_parquet(...)` into an index-free table, and the index strategies
the importer chose between. Appends a markdown table to bench/results/import.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from troth.ingest.files import import_file, rejects_path_for
from troth.ingest.mapping import segment_mapping
from troth.store import bulk, open_database

RESULTS = Path(__file__).parent / "results" / "import.md"
_EVENTS = np.array(["Order Completed", "Product Viewed", "Email Opened", "Signed Up"])


def _text(*parts: pa.Array | str) -> pa.Array:
    """Return the element-wise concatenation of string arrays and constants."""
    return pc.binary_join_element_wise(*parts, "")


def write_events(path: Path, count: int, seed: int) -> None:
    """Write `count` Segment calls (80% track, 10% identify, 10% page) as Parquet."""
    rng = np.random.default_rng(seed)
    kind = rng.choice(3, count, p=[0.8, 0.1, 0.1])
    types = np.array(["track", "identify", "page"])[kind]
    users = pa.array(np.char.add("user-", rng.integers(0, max(count // 10, 1), count).astype(str)))
    anonymous = rng.random(count) < 0.2
    micros = 1_700_000_000_000_000 + rng.integers(0, 30_000_000_000_000, count)
    revenue = (rng.integers(100, 20_000, count) / 100).astype(str)
    properties = _text('{"revenue": ', pa.array(revenue), ', "currency": "EUR"}')
    context = '{"channel": "web", "library": {"name": "bench", "version": "1"}}'
    table = pa.table(
        {
            "messageId": _text(f"s{seed}-", pa.array(np.arange(count).astype(str))),
            "type": pa.array(types),
            "event": pa.array(np.where(kind == 0, _EVENTS[rng.integers(0, 4, count)], None)),
            "name": pa.array(np.where(kind == 2, "Pricing", None)),
            "userId": pc.if_else(pa.array(anonymous), pa.nulls(count, pa.string()), users),
            "anonymousId": pc.if_else(pa.array(anonymous), users, pa.nulls(count, pa.string())),
            "previousId": pa.nulls(count, pa.string()),
            "groupId": pa.nulls(count, pa.string()),
            "timestamp": pa.array(micros.astype("datetime64[us]")).cast(
                pa.timestamp("us", tz="UTC")
            ),
            "channel": pa.nulls(count, pa.string()),
            "properties": pc.if_else(pa.array(kind == 1), pa.nulls(count, pa.string()), properties),
            "traits": pc.if_else(
                pa.array(kind == 1),
                _text('{"email": "', users, '@example.com"}'),
                pa.nulls(count, pa.string()),
            ),
            "context": pa.array(np.full(count, context)),
        }
    )
    pq.write_table(table, path, row_group_size=250_000)


def _fresh(path: Path) -> Path:
    """Return `path` with any database file and write-ahead log there removed."""
    for stale in (path, path.with_name(path.name + ".wal")):
        stale.unlink(missing_ok=True)
    return path


def _timed(action: Callable[[], object]) -> float:
    """Return the seconds `action` took."""
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def _import(db_path: Path, file: Path, mode: bulk.WriteMode, fresh: bool) -> tuple[float, str]:
    """Return seconds to import `file` and CHECKPOINT, and the counts, in a write mode."""
    db = open_database(_fresh(db_path) if fresh else db_path)
    try:
        started = time.perf_counter()
        if mode == "auto":  # what `troth import` does
            summary = import_file(db, file)
            counts = (summary.inserted, summary.duplicates)
        else:
            mapping = segment_mapping(list(bulk.file_columns(db, file, "parquet")))
            result = bulk.import_table(
                db,
                file,
                "parquet",
                mapping.fields,
                event=None,
                call_type=None,
                source_id="bench",
                origin="import:bench",
                rejects_path=rejects_path_for(file),
                received_at=datetime.now(UTC),
                mode=mode,
            )
            counts = (result.inserted, result.duplicates)
        db.checkpoint()
        seconds = time.perf_counter() - started
    finally:
        db.close()
    return seconds, f"{counts[0]:,} new, {counts[1]:,} duplicates"


def _baseline(db_path: Path, file: Path) -> float:
    """Return seconds of a plain INSERT … SELECT from the file into an index-free table."""
    con = duckdb.connect(str(_fresh(db_path)))
    con.execute(f"CREATE TABLE t AS SELECT * FROM read_parquet('{file}') LIMIT 0")
    seconds = _timed(lambda: con.execute(f"INSERT INTO t SELECT * FROM read_parquet('{file}')"))
    con.close()
    return seconds


_COLUMNS = "message_id, type, event, user_id, timestamp, received_at, properties, context"
_SELECT = (
    'SELECT "messageId", type, event, "userId", timestamp, now(), properties, context '
    "FROM read_parquet('{file}')"
)


def _index_strategy(db_path: Path, file: Path, strategy: str) -> float:
    """Return seconds of a plain insert of the file into events under one index strategy."""
    db = open_database(_fresh(db_path))
    con = db.connection
    insert = f"INSERT INTO events ({_COLUMNS}) {_SELECT.format(file=file)}"
    steps = {
        "insert through the index, one transaction": ["BEGIN", insert, "COMMIT"],
        "DROP INDEX, INSERT, CREATE INDEX, one transaction": [
            "BEGIN",
            "DROP INDEX events_message_id",
            insert,
            "CREATE UNIQUE INDEX events_message_id_2 ON events (message_id)",
            "COMMIT",
        ],
        "DROP INDEX, INSERT, CREATE INDEX, three commits (not crash-safe)": [
            "DROP INDEX events_message_id",
            insert,
            "CREATE UNIQUE INDEX events_message_id ON events (message_id)",
        ],
    }[strategy]
    seconds = _timed(lambda: [con.execute(step) for step in steps])
    db.close()
    return seconds


def main() -> None:
    """Run the benchmark and append its table to bench/results/import.md."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="events per file")
    parser.add_argument("--results", type=Path, default=RESULTS, help="markdown file to append")
    args = parser.parse_args()
    count = args.events
    with tempfile.TemporaryDirectory(prefix="troth-bench-") as tmp:
        work = Path(tmp)
        first, second, db_path = work / "a.parquet", work / "b.parquet", work / "bench.duckdb"
        write_events(first, count, seed=1)
        write_events(second, count, seed=2)
        rows: list[tuple[str, float, str]] = []

        def record(label: str, seconds: float, note: str = "") -> None:
            rows.append((label, seconds, note))
            print(f"{label:70s} {seconds:7.2f} s {count / seconds:>12,.0f} events/s  {note}")

        baseline = _baseline(work / "base.duckdb", first)
        record("baseline: INSERT INTO t SELECT * FROM read_parquet (no index)", baseline)
        fresh, note = _import(db_path, first, "auto", fresh=True)
        record("(a) fresh database", fresh, note)
        again, note = _import(db_path, first, "auto", fresh=False)
        record("(b) re-import the same file (all duplicates)", again, note)
        more, note = _import(db_path, second, "auto", fresh=False)
        record("(c) a second file into the non-empty database", more, note)
        seconds, note = _import(db_path, first, "on_conflict", fresh=True)
        record("(a) fresh database, ON CONFLICT DO NOTHING", seconds, note)
        _import(db_path, first, "auto", fresh=True)
        seconds, note = _import(db_path, second, "on_conflict", fresh=False)
        record("(c) second file, ON CONFLICT DO NOTHING", seconds, note)
        _import(db_path, first, "auto", fresh=True)
        seconds, note = _import(db_path, second, "anti_join", fresh=False)
        record("(c) second file, anti-join", seconds, note)
        for strategy in (
            "insert through the index, one transaction",
            "DROP INDEX, INSERT, CREATE INDEX, one transaction",
            "DROP INDEX, INSERT, CREATE INDEX, three commits (not crash-safe)",
        ):
            record(f"plain insert, {strategy}", _index_strategy(work / "s.duckdb", first, strategy))
    _append(args.results, count, rows, baseline, fresh)


def _append(
    results: Path, count: int, rows: list[tuple[str, float, str]], baseline: float, fresh: float
) -> None:
    """Append the run's figures to the results file as a markdown table."""
    lines = [
        f"\n## {datetime.now(UTC):%Y-%m-%d %H:%M} UTC — {count:,} events per file",
        f"\n{platform.platform()}, {os.cpu_count()} cores, DuckDB {duckdb.__version__}; "
        "import times include the final CHECKPOINT.\n",
        "| run | seconds | events/s | result |",
        "|---|---:|---:|---|",
        *(f"| {label} | {s:.2f} | {count / s:,.0f} | {note} |" for label, s, note in rows),
        f"\nFresh import at {baseline / fresh:.0%} of the baseline's speed.\n",
    ]
    results.parent.mkdir(parents=True, exist_ok=True)
    with results.open("a", encoding="utf-8") as out:
        out.write("\n".join(lines))


if __name__ == "__main__":
    main()
