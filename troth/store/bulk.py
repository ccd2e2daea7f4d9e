"""Bulk imports: table rows checked and normalised into events in DuckDB SQL, in one transaction.

The checks mirror `troth.events.model.normalize_call` rule for rule (a property test holds them
to it) but run vectorised over the whole file instead of once per call in Python.

The messageId index is kept during the import. DuckDB builds an index created inside a
transaction over committed rows only, adds the transaction's own rows to it one by one at COMMIT,
and cannot re-create a dropped index's name in the same transaction; so "DROP INDEX, INSERT,
CREATE INDEX" in one transaction measured slower than inserting through the index
(bench/results/import.md). A large import anti-joins the stored messageIds instead (one hash
join, cheaper than ON CONFLICT's probe per row); a small one into a large table uses
ON CONFLICT DO NOTHING, whose probes cost less than scanning every stored messageId.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

import duckdb

from troth.errors import ImportFileError, StoreError
from troth.events.schema import EVENT_COLUMNS
from troth.store.bulk_sql import FieldSource, ImportQuery, literal
from troth.store.database import Database
from troth.store.tombstones import TOMBSTONE_KEY, forget_tombstones

__all__ = ["BulkResult", "FieldSource", "WriteMode", "file_columns", "import_table"]

Progress = Callable[[int, int], None]
# How new rows skip stored messageIds: a hash anti-join, or the unique index's ON CONFLICT.
WriteMode = Literal["auto", "anti_join", "on_conflict"]

# Anti-join when the import brings over 1/20 of the stored rows: below that, scanning every
# stored messageId costs more than probing the index once per new row (measured into 5M stored
# events: 100k rows 0.77 s with ON CONFLICT vs 0.84 s anti-joined, 300k 2.26 vs 2.15 s,
# 1M 3.65 vs 3.2 s).
_ANTI_JOIN_SHARE = 20
_COLUMNS = ", ".join(EVENT_COLUMNS)
_READERS = {
    "parquet": "read_parquet({path})",
    "csv": "read_csv({path}, header = true, all_varchar = true)",
    "jsonl": "read_json({path}, format = 'newline_delimited')",
}
_FORMAT_NAMES = {"parquet": "Parquet", "csv": "CSV", "jsonl": "JSON lines"}
_CHECKED, _REJECTS, _STAGED = "__troth_checked", "__troth_rejects", "__troth_staged"
_TOMBSTONED, _SUPPRESSED = "__troth_tombstoned", "__troth_suppressed"
_HITS = "__troth_tombstone_hits"


@dataclass(frozen=True)
class BulkResult:
    """Counts of one import: rows read, new events, already-known, rejected and suppressed rows.

    Suppressed rows carry an erased person's identifier: neither stored nor kept as rejects.
    """

    rows: int
    inserted: int
    duplicates: int
    rejected: int
    suppressed: int = 0


def _reader(path: Path, fmt: str) -> str:
    """Return the DuckDB table function reading `path` in format `fmt`."""
    return _READERS[fmt].format(path=literal(str(path)))


def _unreadable(path: Path, fmt: str, exc: duckdb.Error) -> ImportFileError:
    """Return the error for a file DuckDB cannot read, with the first line of its reason."""
    reason = str(exc).splitlines()[0]
    return ImportFileError(f"cannot read {path} as {_FORMAT_NAMES[fmt]}: {reason}")


def file_columns(db: Database, path: Path, fmt: str) -> dict[str, str]:
    """Return the file's columns and their DuckDB types, or raise ImportFileError."""
    cur = db.cursor()
    try:
        rows = cur.execute(f"DESCRIBE SELECT * FROM {_reader(path, fmt)}").fetchall()
    except duckdb.Error as exc:
        raise _unreadable(path, fmt, exc) from exc
    finally:
        cur.close()
    return {name: sql_type for name, sql_type, *_ in rows}


def import_table(
    db: Database,
    path: Path,
    fmt: str,
    fields: Sequence[FieldSource],
    *,
    event: str | None,
    call_type: str | None,
    source_id: str,
    origin: str,
    rejects_path: Path,
    received_at: datetime,
    progress: Progress | None = None,
    mode: WriteMode = "auto",
) -> BulkResult:
    """Check, normalise and store every row of a table file; return the counts.

    Refused rows go to the `rejects` table and to `rejects_path` (JSON lines). Events and
    rejects are committed in one transaction, so a failure leaves the database as it was.
    """
    types = file_columns(db, path, fmt)
    cur = db.cursor()
    try:
        source = _stage(cur, path, fmt)
        rows = int(cur.execute(f"SELECT count(*) FROM {source}").fetchone()[0])
        query = ImportQuery(types, fields, event, call_type, received_at, source_id, origin)
        cur.execute(f"CREATE OR REPLACE TEMP VIEW {_CHECKED} AS {query.checked(source)}")
        # Rows without a messageId get one numbered among identical rows, which needs a window
        # over the file; a scan of the messageId column alone says whether any row lacks one.
        generate = not query.has_message_id or bool(
            cur.execute(f"SELECT count(*) FROM {_CHECKED} WHERE __t_mid IS NULL").fetchone()[0]
        )
        if mode == "auto":
            stored = int(cur.execute("SELECT count(*) FROM events").fetchone()[0])
            mode = "anti_join" if rows * _ANTI_JOIN_SHARE > stored else "on_conflict"
        # One INSERT does the work, and DuckDB reports no progress through a hash join: the
        # progress is that of the stages.
        if progress is not None:
            progress(0, rows)
        suppressed = _suppress_tombstoned(cur, query)
        inserted, rejected = _write_checked(
            cur, query, rows, generate, mode, rejects_path, suppressed
        )
        if suppressed is not None:
            forget_tombstones(db)  # a consent grant may have lifted some
        if progress is not None:
            progress(rows, rows)
        dropped = _suppressed_count(cur, suppressed)
        return BulkResult(rows, inserted, rows - inserted - rejected - dropped, rejected, dropped)
    except duckdb.Error as exc:
        raise StoreError(f"importing {path} failed: {str(exc).splitlines()[0]}") from exc
    finally:
        cur.execute(f"DROP VIEW IF EXISTS {_CHECKED}")
        cur.execute(f"DROP TABLE IF EXISTS {_REJECTS}")
        cur.execute(f"DROP TABLE IF EXISTS {_STAGED}")
        cur.execute(f"DROP TABLE IF EXISTS {_TOMBSTONED}")
        cur.execute(f"DROP TABLE IF EXISTS {_HITS}")
        cur.execute(f"DROP TABLE IF EXISTS {_SUPPRESSED}")
        cur.close()


def _suppress_tombstoned(cur: duckdb.DuckDBPyConnection, query: ImportQuery) -> str | None:
    """Find the rows naming an erased person; return the table of those to leave out, or None.

    The tombstones table is usually empty, and then nothing is hashed at all.
    """
    if not cur.execute("SELECT count(*) FROM tombstones").fetchone()[0]:
        return None
    cur.execute(
        f"CREATE OR REPLACE TEMP TABLE {_HITS} AS {query.tombstoned_nodes(_CHECKED, TOMBSTONE_KEY)}"
    )
    if not cur.execute(f"SELECT count(*) FROM {_HITS}").fetchone()[0]:
        return None  # the file names nobody erased
    cur.execute(
        f"CREATE OR REPLACE TEMP TABLE {_TOMBSTONED} AS {query.tombstoned_rows(_CHECKED, _HITS)}"
    )
    cur.execute(
        f"CREATE OR REPLACE TEMP TABLE {_SUPPRESSED} AS SELECT DISTINCT __troth_row "
        f"FROM {_TOMBSTONED} WHERE NOT grants"
    )
    return _SUPPRESSED


def _suppressed_count(cur: duckdb.DuckDBPyConnection, suppressed: str | None) -> int:
    """Return how many rows were left out as an erased person's."""
    if suppressed is None:
        return 0
    return int(cur.execute(f"SELECT count(*) FROM {suppressed}").fetchone()[0])


def _stage(cur: duckdb.DuckDBPyConnection, path: Path, fmt: str) -> str:
    """Return a relation of the file's rows with their 1-based `__troth_row`."""
    if fmt == "parquet":
        # Parquet knows each row's position, so the file is read in place and in parallel.
        return (
            f"(SELECT *, file_row_number + 1 AS __troth_row FROM "
            f"read_parquet({literal(str(path))}, file_row_number = true))"
        )
    try:
        cur.execute(
            f"CREATE OR REPLACE TEMP TABLE {_STAGED} AS "
            f"SELECT *, row_number() OVER () AS __troth_row FROM {_reader(path, fmt)}"
        )
    except duckdb.Error as exc:
        raise _unreadable(path, fmt, exc) from exc
    return _STAGED


def _write_checked(
    cur: duckdb.DuckDBPyConnection,
    query: ImportQuery,
    rows: int,
    generate: bool,
    mode: WriteMode,
    rejects_path: Path,
    suppressed: str | None = None,
) -> tuple[int, int]:
    """Insert the valid rows and record the refused ones in one transaction; return both counts.

    The rejects file is written before COMMIT, so an import whose rejects cannot be written
    does not happen.
    """
    anti_join = mode == "anti_join"
    # A messageId repeated within the file makes the anti-joined INSERT violate the index. That
    # is rare, so the de-duplicating window runs only in a second attempt.
    for dedupe in (False, True) if anti_join else (False,):
        cur.execute("BEGIN TRANSACTION")
        try:
            insert = query.insert(
                _CHECKED, generate, anti_join=anti_join, dedupe=dedupe, suppressed=suppressed
            )
            inserted = int(cur.execute(insert).fetchone()[0])
            rejected = 0
            if suppressed is not None:  # a consent grant brings its identifiers back
                cur.execute(
                    f"DELETE FROM tombstones WHERE node_hash IN "
                    f"(SELECT node_hash FROM {_TOMBSTONED} WHERE grants)"
                )
            if inserted < rows:  # some rows are duplicates, refused or suppressed: which
                cur.execute(
                    f"CREATE OR REPLACE TEMP TABLE {_REJECTS} AS "
                    f"{query.rejects(_CHECKED, suppressed)}"
                )
                rejected = int(cur.execute(f"SELECT count(*) FROM {_REJECTS}").fetchone()[0])
                cur.execute(query.record_rejects(_REJECTS))
                if rejected:
                    _write_rejects_file(cur, rejects_path)
            cur.execute("COMMIT")
            return inserted, rejected
        except duckdb.ConstraintException:
            cur.execute("ROLLBACK")
            if dedupe or not anti_join:
                raise
        except BaseException:
            cur.execute("ROLLBACK")
            with contextlib.suppress(OSError):  # the import's own error matters more
                rejects_path.unlink(missing_ok=True)
            raise
    raise AssertionError("unreachable: the de-duplicated attempt returns or raises")


def _write_rejects_file(cur: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Write the refused rows as JSON lines: row number, reason, field and original data."""
    try:
        cur.execute(
            f'COPY (SELECT "row", reason, field, data FROM {_REJECTS} ORDER BY "row") '
            f"TO {literal(str(path))} (FORMAT json)"
        )
    except duckdb.IOException as exc:
        reason = str(exc).splitlines()[0]
        raise ImportFileError(f"cannot write the rejects file {path}: {reason}") from exc


# --- The SQL of the checks -------------------------------------------------------------------

# Python's str.isspace() characters, so "blank" means here what `.strip()` means there.
