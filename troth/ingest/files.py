"""`troth import PATH`: CSV, JSON-lines and Parquet files into stored events, plus a rejects file.

CSV and Parquet rows (and mapped JSON lines) are checked and normalised in DuckDB SQL by
`troth.store.bulk`; JSON lines holding Segment calls go through `normalize_call`, the validator of
the HTTP API, so a call is accepted from a file exactly when it would be over HTTP.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import BinaryIO

import msgspec
import pyarrow as pa

from troth.errors import EventValidationError, ImportFileError
from troth.events.model import EventRow, generated_message_id, normalize_call
from troth.events.schema import EVENT_SCHEMA, REJECT_SCHEMA, reject_row, rows_to_table
from troth.ingest.mapping import TableMapping, check_mapping, segment_mapping
from troth.store.bulk import BulkResult, file_columns, import_table
from troth.store.database import Database
from troth.store.tombstones import (
    TombstoneFilter,
    forget_tombstones,
    lift_tombstones,
    tombstone_filter,
)
from troth.store.written_files import record_written_file

__all__ = ["FORMATS", "ImportSummary", "import_file", "rejects_path_for"]

# Extension -> format; `.json` files are read as newline-delimited JSON too.
FORMATS = {
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".parquet": "parquet",
}
_CHUNK_LINES = 50_000


@dataclass(frozen=True)
class ImportSummary:
    """What an import did: rows read = inserted + duplicates + rejected + suppressed, and where
    rejects went. Suppressed rows name an erased person: neither stored nor kept as rejects."""

    path: str
    format: str
    rows: int
    inserted: int
    duplicates: int
    rejected: int
    rejects_path: str | None
    seconds: float
    suppressed: int = 0


def rejects_path_for(path: Path) -> Path:
    """Return the rejects file written beside an imported file: `<name>.rejects.jsonl`."""
    return path.with_name(path.name + ".rejects.jsonl")


def import_file(
    db: Database,
    path: Path,
    mapping: TableMapping | None = None,
    source_id: str = "import",
    progress: Callable[[int, int], None] | None = None,
) -> ImportSummary:
    """Import one CSV, JSON-lines or Parquet file into `db`; return the counts and timings.

    Without `mapping` the rows must be Segment calls (columns named like Segment fields).
    `progress(done_rows, total_rows)` is called as the import advances.
    """
    started = time.perf_counter()
    path = Path(path)
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ImportFileError(
            f"{path}: unknown file type '{path.suffix}'; expected one of "
            f"{', '.join(FORMATS)} (JSON files hold one call per line)"
        )
    if not path.is_file():
        raise ImportFileError(f"{path}: no such file")
    rejects_path = rejects_path_for(path)
    # A rejects file from an earlier import of this file would describe rows that are gone.
    try:
        rejects_path.unlink(missing_ok=True)
    except OSError as exc:
        raise ImportFileError(f"cannot remove the old rejects file {rejects_path}: {exc}") from exc
    received_at = datetime.now(UTC)
    origin = f"import:{path.name}"
    if fmt != "parquet" and path.stat().st_size == 0:
        result = BulkResult(0, 0, 0, 0)
    elif fmt == "jsonl" and mapping is None:
        result = _import_calls(db, path, source_id, origin, rejects_path, received_at, progress)
    else:
        columns = file_columns(db, path, fmt)
        mapping = _table_mapping(path, columns, mapping)
        result = import_table(
            db,
            path,
            fmt,
            mapping.fields,
            event=mapping.event,
            call_type=mapping.type,
            source_id=source_id,
            origin=origin,
            rejects_path=rejects_path,
            received_at=received_at,
            progress=progress,
        )
    if result.rejected:  # it holds people's data: an erasure must find it
        record_written_file(db, rejects_path, "rejects")
    return ImportSummary(
        path=str(path),
        format=fmt,
        rows=result.rows,
        inserted=result.inserted,
        duplicates=result.duplicates,
        rejected=result.rejected,
        rejects_path=str(rejects_path) if result.rejected else None,
        seconds=time.perf_counter() - started,
        suppressed=result.suppressed,
    )


def _table_mapping(
    path: Path, columns: dict[str, str], mapping: TableMapping | None
) -> TableMapping:
    """Return the mapping to apply, checking that the file has every column it reads."""
    listed = ", ".join(columns)
    if mapping is None:
        try:
            return segment_mapping(list(columns))
        except ValueError as exc:
            raise ImportFileError(f"{path}: {exc}; its columns are: {listed}") from exc
    try:
        check_mapping(mapping)
    except ValueError as exc:
        raise ImportFileError(f"cannot import {path}: {exc}") from exc
    for column in mapping.columns():
        if column not in columns:
            raise ImportFileError(
                f"{path} has no column '{column}' (mapped with --map); its columns are: {listed}"
            )
    return mapping


def _count_lines(path: Path) -> int:
    """Return the number of lines in a file, read in large blocks."""
    count, last = 0, b"\n"
    with path.open("rb") as file:
        while block := file.read(1 << 22):
            count += block.count(b"\n")
            last = block[-1:]
    return count + (last != b"\n")


class _RejectsFile:
    """The `.rejects.jsonl` file, created at the first reject only."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: BinaryIO | None = None

    def write(self, row: int, reason: str, field: str | None, line: bytes) -> None:
        """Append one rejected line: its number, the reason, the field and the line itself."""
        try:
            msgspec.json.decode(line)
            data: object = msgspec.Raw(line)
        except msgspec.DecodeError:
            data = line.decode("utf-8", errors="replace")
        if self._file is None:
            self._file = self.path.open("wb")
        record = {"row": row, "reason": reason, "field": field, "data": data}
        self._file.write(msgspec.json.encode(record) + b"\n")

    def close(self) -> None:
        """Close the file if one was written."""
        if self._file is not None:
            self._file.close()


def _import_calls(
    db: Database,
    path: Path,
    source_id: str,
    origin: str,
    rejects_path: Path,
    received_at: datetime,
    progress: Callable[[int, int], None] | None,
) -> BulkResult:
    """Import a file of Segment calls, one per line, through normalize_call; return the counts.

    All chunks go in one transaction, through the unique index as the HTTP writer does:
    normalize_call, not the index, is what limits this path's speed.
    """
    total = _count_lines(path)
    rows = rejected = inserted = suppressed = 0
    rejects_file = _RejectsFile(rejects_path)
    cursor = db.cursor()
    tombstones = tombstone_filter(db, cursor)
    try:
        with path.open("rb") as lines, db.transaction(cursor) as cur:
            for number, events, rejects, dropped, lifted in _chunks(
                lines, received_at, source_id, origin, rejects_file, tombstones
            ):
                lift_tombstones(db, cur, lifted)
                inserted += db.insert_events(events, cur)
                db.insert_rejects(rejects, cur)
                rows += events.num_rows + rejects.num_rows + dropped
                rejected += rejects.num_rows
                suppressed += dropped
                if progress is not None:
                    progress(min(number, total), total)
    except BaseException:
        rejects_file.close()
        rejects_path.unlink(missing_ok=True)
        raise
    finally:
        cursor.close()
    rejects_file.close()
    if tombstones is not None:
        forget_tombstones(db)  # a consent grant may have lifted some
    return BulkResult(rows, inserted, rows - inserted - rejected - suppressed, rejected, suppressed)


def _chunks(
    lines: BinaryIO,
    received_at: datetime,
    source_id: str,
    origin: str,
    rejects_file: _RejectsFile,
    tombstones: TombstoneFilter | None = None,
) -> Iterator[tuple[int, pa.Table, pa.Table, int, set[str]]]:
    """Yield (lines read, events, rejects, rows suppressed, tombstones lifted) per chunk.

    Lines naming an erased person are suppressed (`tombstones`), unless they grant consent.
    """
    # Calls without a messageId get one hashed from their bytes; identical lines are numbered
    # so that each stays an event, and re-importing the file finds the same ids.
    occurrences: dict[str, int] = {}
    number = 0
    while chunk := list(islice(lines, _CHUNK_LINES)):
        rows: list[EventRow] = []
        rejects: list[tuple] = []
        dropped = 0
        for raw in chunk:
            number += 1
            line = raw.strip()
            if not line:  # a blank line holds no call
                continue
            try:
                row = normalize_call(line, received_at, source_id)
            except EventValidationError as exc:
                if tombstones is not None and tombstones.suppresses_payload(line):
                    dropped += 1
                    continue
                text = line.decode("utf-8", errors="replace")
                rejects.append(reject_row(origin, None, exc.field, exc.message, text))
                rejects_file.write(number, exc.message, exc.field, line)
                continue
            rows.append(_numbered(row, line, occurrences))
        lifted: set[str] = set()
        if tombstones is not None:
            rows, suppressed, lifted = tombstones.split(rows)
            dropped += suppressed
        yield (
            number,
            rows_to_table(rows, EVENT_SCHEMA),
            rows_to_table(rejects, REJECT_SCHEMA),
            dropped,
            lifted,
        )


def _numbered(row: EventRow, line: bytes, occurrences: dict[str, int]) -> EventRow:
    """Return the row, its generated messageId numbered if an identical line came before."""
    message_id = row[0]
    if message_id != generated_message_id(line):
        return row
    seen = occurrences.get(message_id, 0) + 1
    occurrences[message_id] = seen
    return row if seen == 1 else (f"{message_id}-{seen}", *row[1:])
