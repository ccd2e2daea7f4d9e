"""Bulk imports: table rows checked and normalised into events in DuckDB SQL, written in one go.

The checks mirror `troth.events.model.normalize_call` rule for rule (a property test holds them
to it) but run vectorised over the whole file instead of once per call in Python. Large imports
rebuild the messageId index rather than maintain it row by row: DuckDB builds an ART index over
a whole table about three times faster than it inserts the same keys into one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

import duckdb
import pyarrow as pa

from troth.errors import ImportFileError, StoreError
from troth.events.model import CALL_TYPES, MAX_EVENT_BYTES, MAX_MESSAGE_ID_CHARS
from troth.events.schema import EVENT_COLUMNS, EVENT_SCHEMA
from troth.store.database import Database

__all__ = ["BulkResult", "FieldSource", "file_columns", "import_table", "write_event_batches"]

Progress = Callable[[int, int], None]

# Rebuild the index when the import is large next to the table: a rebuild costs ~0.5 µs per
# row stored or added, an insert through the index ~1-3 µs per row added.
_REBUILD_SHARE = 4
_FLUSH_ROWS = 1_000_000
_INDEX = "events_message_id"
_COLUMNS = ", ".join(EVENT_COLUMNS)
_READERS = {
    "parquet": "read_parquet({path})",
    "csv": "read_csv({path}, header = true, all_varchar = true)",
    "jsonl": "read_json({path}, format = 'newline_delimited')",
}
_FORMAT_NAMES = {"parquet": "Parquet", "csv": "CSV", "jsonl": "JSON lines"}
_CHECKED = "__troth_checked"
_REJECTS = "__troth_rejects"
_STAGED = "__troth_staged"


@dataclass(frozen=True)
class BulkResult:
    """Counts of one import: rows read, new events, already-known events and rejected rows."""

    rows: int
    inserted: int
    duplicates: int
    rejected: int


class FieldSource(Protocol):
    """A column read into a Segment field (`troth.ingest.mapping.FieldMapping` is one)."""

    @property
    def column(self) -> str: ...
    @property
    def field(self) -> str: ...
    @property
    def kind(self) -> str | None: ...


def literal(text: str) -> str:
    """Return `text` as a SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def _ident(name: str) -> str:
    """Return `name` as a quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def _error_text(exc: duckdb.Error) -> str:
    """Return the first line of a DuckDB error, the part that says what went wrong."""
    return str(exc).splitlines()[0]


def _reader(path: Path, fmt: str) -> str:
    """Return the DuckDB table function reading `path` in format `fmt`."""
    return _READERS[fmt].format(path=literal(str(path)))


def file_columns(db: Database, path: Path, fmt: str) -> dict[str, str]:
    """Return the file's columns and their DuckDB types, or raise ImportFileError."""
    cur = db.cursor()
    try:
        rows = cur.execute(f"DESCRIBE SELECT * FROM {_reader(path, fmt)}").fetchall()
    except duckdb.Error as exc:
        raise ImportFileError(
            f"cannot read {path} as {_FORMAT_NAMES[fmt]}: {_error_text(exc)}"
        ) from exc
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
) -> BulkResult:
    """Check, normalise and store every row of a table file; return the counts.

    Rejected rows go to the `rejects` table and to `rejects_path` (JSON lines). Events and
    rejects are committed in one transaction, so a failure leaves the database as it was.
    """
    types = file_columns(db, path, fmt)
    cur = db.cursor()
    try:
        source = _stage(cur, path, fmt)
        rows = int(cur.execute(f"SELECT count(*) FROM {source}").fetchone()[0])
        query = _ImportQuery(types, fields, event, call_type, received_at, source_id, origin)
        cur.execute(f"CREATE OR REPLACE TEMP VIEW {_CHECKED} AS {query.checked(source)}")
        # Rows without a messageId get one numbered among identical rows, which needs a window
        # over the file; a scan of the messageId column alone says whether any row lacks one.
        generate = not query.has_message_id or bool(
            cur.execute(f"SELECT count(*) FROM {_CHECKED} WHERE __t_mid IS NULL").fetchone()[0]
        )
        if progress is not None:
            progress(0, rows)
        inserted, rejected = _write_checked(cur, query, rows, generate, progress)
        if rejected:
            cur.execute(
                f'COPY (SELECT "row", reason, field, data FROM {_REJECTS} ORDER BY "row") '
                f"TO {literal(str(rejects_path))} (FORMAT json)"
            )
        if progress is not None:
            progress(rows, rows)
        return BulkResult(rows, inserted, rows - inserted - rejected, rejected)
    finally:
        cur.execute(f"DROP VIEW IF EXISTS {_CHECKED}")
        cur.execute(f"DROP TABLE IF EXISTS {_REJECTS}")
        cur.execute(f"DROP TABLE IF EXISTS {_STAGED}")
        cur.close()


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
        raise ImportFileError(
            f"cannot read {path} as {_FORMAT_NAMES[fmt]}: {_error_text(exc)}"
        ) from exc
    return _STAGED


def _rebuilds_index(cur: duckdb.DuckDBPyConnection, incoming: int) -> bool:
    """Return True when dropping and rebuilding the messageId index is the cheaper write."""
    import os

    if os.environ.get("TROTH_REBUILD"):
        return os.environ["TROTH_REBUILD"] == "1"
    stored = int(cur.execute("SELECT count(*) FROM events").fetchone()[0])
    return incoming * _REBUILD_SHARE > stored


def _index_name(cur: duckdb.DuckDBPyConnection) -> str:
    """Return the name of the unique messageId index (a rebuild alternates between two)."""
    row = cur.execute(
        "SELECT index_name FROM duckdb_indexes() WHERE table_name = 'events' AND is_unique"
    ).fetchone()
    return row[0] if row else _INDEX


def _write_checked(
    cur: duckdb.DuckDBPyConnection,
    query: _ImportQuery,
    rows: int,
    generate: bool,
    progress: Progress | None,
) -> tuple[int, int]:
    """Insert the valid rows and record the refused ones in one transaction; return both counts."""
    rebuild = _rebuilds_index(cur, rows)
    # MessageIds repeated within a file are rare and the index rebuild detects them, so the
    # costly de-duplication runs only in a second attempt after the rebuild refused them.
    for dedupe in (False, True) if rebuild else (False,):
        cur.execute("BEGIN TRANSACTION")
        try:
            old_index = _index_name(cur)
            new_index = _INDEX + "_b" if old_index == _INDEX else _INDEX
            if rebuild:
                cur.execute(f"DROP INDEX {old_index}")
            insert = query.insert(_CHECKED, generate, rebuild=rebuild, dedupe=dedupe)
            inserted = int(_run(cur, insert, rows, progress)[0])
            if rebuild:
                import time

                t0 = time.perf_counter()
                cur.execute(f"CREATE UNIQUE INDEX {new_index} ON events (message_id)")
                print("index", time.perf_counter() - t0)
            rejected = 0
            if inserted < rows:  # some rows are duplicates or refused: find out which
                cur.execute(f"CREATE OR REPLACE TEMP TABLE {_REJECTS} AS {query.rejects(_CHECKED)}")
                rejected = int(cur.execute(f"SELECT count(*) FROM {_REJECTS}").fetchone()[0])
                cur.execute(query.record_rejects(_REJECTS))
            cur.execute("COMMIT")
            return inserted, rejected
        except duckdb.ConstraintException:
            cur.execute("ROLLBACK")
            if dedupe or not rebuild:
                raise
        except BaseException:
            cur.execute("ROLLBACK")
            raise
    raise StoreError("the import could not rebuild the events index")  # pragma: no cover


def _run(cur: duckdb.DuckDBPyConnection, sql: str, total: int, progress: Progress | None) -> tuple:
    """Execute one statement and return its first row, reporting DuckDB's progress meanwhile."""
    if progress is None:
        return cur.execute(sql).fetchone()
    result: dict[str, object] = {}

    def execute() -> None:
        try:
            result["row"] = cur.execute(sql).fetchone()
        except BaseException as exc:  # re-raised in the caller's thread below
            result["error"] = exc

    cur.execute("SET enable_progress_bar = true")
    cur.execute("SET enable_progress_bar_print = false")
    # The statement runs in a worker so that `progress` is called from the caller's thread.
    worker = threading.Thread(target=execute, name="troth-import", daemon=True)
    worker.start()
    try:
        while worker.is_alive():
            worker.join(0.25)
            percent = cur.query_progress()
            if percent >= 0 and worker.is_alive():
                progress(int(total * min(percent, 100.0) / 100), total)
    except BaseException:
        cur.interrupt()
        worker.join()
        raise
    if "error" in result:
        raise result["error"]  # type: ignore[misc]
    return result["row"]  # type: ignore[return-value]


def write_event_batches(
    db: Database,
    batches: Iterable[tuple[pa.Table, pa.Table]],
    expected_rows: int,
) -> int:
    """Store (events, rejects) table pairs in one transaction; return how many events were new.

    Events are EVENT_SCHEMA tables (rows of `normalize_call`), rejects REJECT_SCHEMA tables. An
    event whose messageId is already stored, or came earlier in the batches, is skipped.
    """
    cur = db.cursor()
    rebuild = _rebuilds_index(cur, expected_rows)
    inserted = 0
    pending: list[pa.Table] = []

    def flush() -> int:
        if not pending:
            return 0
        events = pa.concat_tables(pending).select(list(EVENT_COLUMNS)).cast(EVENT_SCHEMA)
        pending.clear()
        events = events.append_column("__i", pa.array(range(events.num_rows), pa.int64()))
        cur.register("__troth_batch", events)
        try:
            return int(cur.execute(_batch_insert(rebuild)).fetchone()[0])
        finally:
            cur.unregister("__troth_batch")

    try:
        with db.transaction(cur):
            if rebuild:
                cur.execute(f"DROP INDEX {_INDEX}")
            for events, rejects in batches:
                db.insert_rejects(rejects, cur)
                pending.append(events)
                # Without the index each flush anti-joins the whole table, so flush rarely.
                if not rebuild or sum(t.num_rows for t in pending) >= _FLUSH_ROWS:
                    inserted += flush()
            inserted += flush()
            if rebuild:
                cur.execute(f"CREATE UNIQUE INDEX {_INDEX} ON events (message_id)")
    finally:
        cur.close()
    return inserted


def _batch_insert(rebuild: bool) -> str:
    """Return the INSERT of `__troth_batch`: the first event of each messageId not yet stored."""
    unseen = "WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.message_id = b.message_id) "
    return (
        f"INSERT INTO events ({_COLUMNS}) SELECT {_COLUMNS} FROM __troth_batch b "
        + (unseen if rebuild else "")
        + "QUALIFY row_number() OVER (PARTITION BY message_id ORDER BY __i) = 1"
        + ("" if rebuild else " ON CONFLICT DO NOTHING")
    )


# --- The SQL of the checks -------------------------------------------------------------------

# Python's str.isspace() characters, so "blank" means here what `.strip()` means there.
_SPACE = (
    r"[\s\x{0b}\x{1c}-\x{1f}\x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}"
    r"\x{205f}\x{3000}]*"
)
_TYPES_TEXT = ", ".join(sorted(CALL_TYPES))
_A = {"number": "a number", "integer": "an integer", "boolean": "a boolean (true/false)",
      "timestamp": "an ISO 8601 date-time", "json": "valid JSON"}  # fmt: skip
_OBJECT_FIELDS = ("properties", "traits", "context", "integrations")
_IDS = ("userId", "anonymousId", "previousId", "groupId")
_TIMES = ("timestamp", "originalTimestamp", "sentAt")


def _blank(sql: str) -> str:
    """Return SQL true when the text `sql` is empty or whitespace only."""
    # Testing the first character first keeps the regular expression off ordinary values.
    return f"((ascii({sql}) <= 32 OR ascii({sql}) >= 133) AND regexp_full_match({sql}, '{_SPACE}'))"


def _family(sql_type: str) -> str:
    """Return how a DuckDB column type is read: text, integer, boolean, time, object or other."""
    if sql_type in ("VARCHAR", "JSON"):
        return "text"
    if sql_type.endswith("INT") or sql_type in ("TINYINT", "SMALLINT", "INTEGER", "HUGEINT"):
        return "integer"
    if sql_type.startswith(("TIMESTAMP", "DATE")):
        return "time"
    if sql_type.startswith(("STRUCT", "MAP")):
        return "object"
    return "boolean" if sql_type == "BOOLEAN" else "other"


def _json_object(tree: dict) -> str:
    """Return SQL building a JSON object from a nested {key: SQL value or subtree} dict."""
    pairs = ", ".join(
        f"{literal(key)}, {_json_object(value) if isinstance(value, dict) else value}"
        for key, value in tree.items()
    )
    return f"json_object({pairs})"


def _quoted(sql: str) -> str:
    """Return SQL quoting (the start of) a value for a reject reason."""
    return f"'''' || left(CAST({sql} AS VARCHAR), 80) || ''''"


@dataclass(frozen=True)
class _Check:
    """A reason to refuse a row: SQL true when it applies, the reason as SQL, the field."""

    condition: str
    reason: str
    field: str | None = None


class _ImportQuery:
    """The SQL turning a table's rows into checked events, rule for rule as normalize_call.

    `checked(source)` adds to each source row its parsed fields (`__t_*`), the number of the
    first check it fails (`__t_err`, 0 when valid); `insert` and `rejects` read that relation.
    """

    def __init__(
        self,
        types: dict[str, str],
        fields: Sequence[FieldSource],
        event: str | None,
        call_type: str | None,
        received_at: datetime,
        source_id: str,
        origin: str,
    ) -> None:
        self._types = types
        self._received = f"TIMESTAMPTZ '{received_at.isoformat()}'"
        self._source_id = literal(source_id)
        self._origin = literal(origin)
        self._parsed: dict[str, str] = {}  # alias (without `__t_`) -> SQL over a source row
        self._decode: list[_Check] = []  # refusals of msgspec's decoding step, in field order
        self._patches: dict[str, dict] = {}  # root -> nested {key: SQL} set from flat columns
        top = {f.field: f.column for f in fields if "." not in f.field}
        self.has_message_id = "messageId" in top
        defaults = {"type": call_type or ("track" if event else None), "event": event}
        for name in ("type", "messageId", "event", "name", "channel"):
            self._text(name, top.get(name), defaults.get(name))
        for name in _IDS:
            self._identifier(name, top.get(name))
        for name in _TIMES:
            self._time(name, top.get(name))
        for index, mapping in enumerate(f for f in fields if "." in f.field):
            self._nested(index, mapping)
        for name in _OBJECT_FIELDS:
            self._object(name, top.get(name))

    # Parsing, one source column at a time.

    def _column(self, column: str) -> tuple[str, str]:
        """Return a source column as SQL, and its family."""
        return _ident(column), _family(self._types[column])

    def _refuse_type(self, column: str, field: str, expected: str) -> None:
        """Refuse rows whose column, of an unusable type, holds a value."""
        reason = f"{field} must be {expected}, not {self._types[column]}"
        self._decode.append(_Check(f"{_ident(column)} IS NOT NULL", literal(reason), field))

    def _text(self, name: str, column: str | None, default: str | None) -> None:
        value = "NULL::VARCHAR"
        if column is not None:
            sql, family = self._column(column)
            if family == "text":
                value = sql
            else:
                self._refuse_type(column, name, "a string")
        if default is not None:
            value = f"coalesce({value}, {literal(default)})"
        self._parsed[name] = value

    def _identifier(self, name: str, column: str | None) -> None:
        value = "NULL::VARCHAR"
        if column is not None:
            sql, family = self._column(column)
            if family == "text":
                value = f"CASE WHEN {_blank(sql)} THEN NULL ELSE {sql} END"
            elif family == "integer":  # numbers become strings, as in normalize_call
                value = f"CAST({sql} AS VARCHAR)"
            else:
                expected = "a string" if family == "boolean" else "a string or an integer"
                self._refuse_type(column, name, expected)
        self._parsed[name] = value

    @staticmethod
    def _parse_time(sql: str, family: str) -> str:
        """Return SQL reading a column as TIMESTAMPTZ, NULL when it does not parse."""
        if family == "time":  # a time without zone is taken as UTC, the session's zone
            return f"CAST({sql} AS TIMESTAMPTZ)"
        return (
            f"CASE WHEN {_blank(sql)} THEN NULL ELSE coalesce(TRY_CAST({sql} AS TIMESTAMPTZ), "
            f"TRY_CAST(upper({sql}) AS TIMESTAMPTZ)) END"
        )

    def _time(self, name: str, column: str | None) -> None:
        value = "NULL::TIMESTAMPTZ"
        if column is not None:
            sql, family = self._column(column)
            if family in ("time", "text"):
                value = self._parse_time(sql, family)
            if family == "text":
                self._decode.append(
                    _Check(
                        f"{sql} IS NOT NULL AND __t_{name} IS NULL AND NOT {_blank(sql)}",
                        f"'{name} ' || {_quoted(sql)} || ' is not an ISO 8601 date-time'",
                        name,
                    )
                )
            elif family != "time":
                self._refuse_type(column, name, "a timestamp")
        self._parsed[name] = value

    def _nested(self, index: int, mapping: FieldSource) -> None:
        """Parse a column feeding one key of properties/traits/context, cast to its kind."""
        sql, family = self._column(mapping.column)
        kind, text, alias = mapping.kind, family == "text", f"__t_n{index}"
        trimmed = f"trim({sql})" if text else sql
        values = {
            None: sql,
            "string": f"CAST({sql} AS VARCHAR)",
            "number": f"TRY_CAST({trimmed} AS DOUBLE)",
            "boolean": f"TRY_CAST({trimmed} AS BOOLEAN)",
            "timestamp": f"strftime({self._parse_time(sql, family)}, '%Y-%m-%dT%H:%M:%S.%fZ')",
            "json": f"CASE WHEN json_valid({sql}) THEN json({sql}) END"
            if text
            else f"to_json({sql})",
            # DuckDB rounds '1.5' to 2 when casting text to BIGINT, so check the digits first.
            "integer": f"CASE WHEN regexp_full_match({trimmed}, '[+-]?[0-9]+') THEN "
            f"TRY_CAST({trimmed} AS BIGINT) END"
            if text
            else f"CASE WHEN TRY_CAST({sql} AS DOUBLE) = trunc(TRY_CAST({sql} AS DOUBLE)) "
            f"THEN TRY_CAST({sql} AS BIGINT) END",
        }
        value = values[kind]
        if kind not in (None, "string"):
            if text:  # an empty cell is a missing value, not a bad one
                value = f"CASE WHEN {_blank(sql)} THEN NULL ELSE {value} END"
            failed = (
                f"({alias} IS NULL OR NOT isfinite({alias}))"
                if kind == "number"
                else (f"{alias} IS NULL")
            )
            self._decode.append(
                _Check(
                    f"{sql} IS NOT NULL AND {failed}" + (f" AND NOT {_blank(sql)}" if text else ""),
                    f"{literal(f'column {mapping.column}: ')} || {_quoted(sql)} || "
                    f"' is not {_A[kind]}'",
                    mapping.field,
                )
            )
        self._parsed[f"n{index}"] = value
        root, *path = mapping.field.split(".")
        node = self._patches.setdefault(root, {})
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = alias

    def _object(self, name: str, column: str | None) -> None:
        """Parse a JSON-object field: its text and the JSON types of it and of its `channel`."""
        text, kinds = "NULL::VARCHAR", "NULL::VARCHAR[]"
        paths = "['$', '$.channel']"
        if column is not None:
            sql, family = self._column(column)
            if family == "text":
                text = sql
                kinds = (
                    f"CASE WHEN {sql} IS NULL OR {_blank(sql)} THEN NULL ELSE "
                    f"coalesce(TRY(json_type({sql}, {paths})), ['INVALID']) END"
                )
            elif family == "object":  # Parquet structs and maps
                text = f"CAST(to_json({sql}) AS VARCHAR)"
                kinds = f"json_type(to_json({sql}), {paths})"
            else:
                kinds = f"CASE WHEN {sql} IS NOT NULL THEN ['{self._types[column]}'] END"
        self._parsed[f"{name}_text"] = text
        self._parsed[f"{name}_kinds"] = kinds

    # The checked relation.

    def _object_value(self, name: str) -> str:
        """Return SQL of the stored JSON text of an object field, flat columns merged in."""
        value = f"CASE WHEN __t_{name}_kinds[1] = 'OBJECT' THEN __t_{name}_text END"
        patch = self._patches.get(name)
        if not patch:
            return value
        # A merge patch drops keys whose value is null: empty cells add no key.
        merged = f"json_merge_patch(coalesce({value}, '{{}}'), {_json_object(patch)})"
        return f"CASE WHEN {value} IS NULL AND {merged} = '{{}}' THEN NULL ELSE {merged} END"

    def _channel(self, name: str) -> str:
        """Return SQL of the `channel` key of an object field, as normalize_call's str()."""
        kind = f"__t_{name}_kinds[2]"
        value = f"json_extract_string(__t_{name}_text, '$.channel')"
        flat = self._patches.get(name, {}).get("channel")
        direct = (
            f"CASE WHEN {kind} IN ('BIGINT', 'UBIGINT', 'DOUBLE', 'VARCHAR') THEN {value} "
            f"WHEN {kind} = 'BOOLEAN' THEN CASE WHEN {value} = 'true' THEN 'True' "
            "ELSE 'False' END END"
        )
        return f"coalesce(CAST({flat} AS VARCHAR), {direct})" if isinstance(flat, str) else direct

    def _checks(self) -> list[_Check]:
        """Return every check in the order normalize_call applies them."""
        type_ = "__t_type"
        checks = [
            _Check(
                f"__t_size > {MAX_EVENT_BYTES}",
                f"'event is about ' || __t_size || ' bytes; the limit is {MAX_EVENT_BYTES} "
                "bytes (32 KB)'",
            ),
            *self._decode,
            _Check(
                f"{type_} IS NULL", literal(f"type is required (one of: {_TYPES_TEXT})"), "type"
            ),
            _Check(
                f"{type_} NOT IN ({', '.join(map(literal, sorted(CALL_TYPES)))})",
                f"'type ' || {_quoted(type_)} || ' is unknown; expected one of: {_TYPES_TEXT}'",
                "type",
            ),
            *(
                _Check(f"length(__t_{i}) > 1000", literal(f"{i} is longer than 1000 characters"), i)
                for i in _IDS
            ),
            _Check(
                "__t_userId IS NULL AND __t_anonymousId IS NULL",
                literal("userId or anonymousId is required"),
                "userId",
            ),
            _Check(
                f"{type_} = 'track' AND (__t_event IS NULL OR {_blank('__t_event')})",
                literal("a track call needs a non-empty event name"),
                "event",
            ),
            _Check(
                f"{type_} = 'alias' AND __t_previousId IS NULL",
                literal("an alias call needs previousId"),
                "previousId",
            ),
            _Check(
                f"{type_} = 'alias' AND __t_userId IS NULL",
                literal("an alias call needs userId"),
                "userId",
            ),
            _Check(
                f"{type_} = 'group' AND __t_groupId IS NULL",
                literal("a group call needs groupId"),
                "groupId",
            ),
        ]
        for name in _OBJECT_FIELDS:
            kinds = f"__t_{name}_kinds"
            checks += [
                _Check(f"{kinds}[1] = 'INVALID'", literal(f"{name} is not valid JSON"), name),
                _Check(
                    f"{kinds}[1] NOT IN ('OBJECT', 'NULL')",
                    f"'{name} must be a JSON object, not ' || lower({kinds}[1])",
                    name,
                ),
                _Check(
                    f"{kinds}[2] IN ('OBJECT', 'ARRAY')",
                    literal(f"{name}.channel must be text, a number or a boolean"),
                    name,
                ),
            ]
        checks.append(
            _Check(
                f"length(__t_mid) > {MAX_MESSAGE_ID_CHARS}",
                f"'messageId is ' || length(__t_mid) || ' characters; the limit is "
                f"{MAX_MESSAGE_ID_CHARS}'",
                "messageId",
            )
        )
        return checks

    def checked(self, source: str) -> str:
        """Return the SELECT adding parsed fields, event values and `__t_err` to `source`."""
        parsed = ", ".join(f"{sql} AS __t_{alias}" for alias, sql in self._parsed.items())
        # normalize_call measures the call's JSON; this adds up its parts, keys included.
        texts = ["type", "messageId", "event", "name", "channel", *_IDS]
        parts = [f"coalesce(strlen(__t_{n}) + {len(n) + 6}, 0)" for n in texts]
        parts += [f"coalesce(strlen(__t_{n}_text) + {len(n) + 4}, 0)" for n in _OBJECT_FIELDS]
        parts += [f"CASE WHEN __t_{n} IS NULL THEN 0 ELSE {len(n) + 36} END" for n in _TIMES]
        recv = self._received
        derived = {
            "size": " + ".join(parts),
            "mid": f"CASE WHEN {_blank('__t_messageId')} THEN NULL ELSE __t_messageId END",
            "channel_value": f"coalesce(nullif({self._channel('properties')}, ''), "
            f"nullif({self._channel('context')}, ''), __t_channel)",
            # Segment corrects the client's clock skew with sentAt, and so does normalize_call.
            "time": f"coalesce(__t_timestamp, CASE WHEN __t_sentAt IS NULL THEN "
            f"__t_originalTimestamp ELSE {recv} - (__t_sentAt - __t_originalTimestamp) END, "
            f"{recv})",
            **{f"{name}_value": self._object_value(name) for name in _OBJECT_FIELDS},
        }
        values = ", ".join(f"{sql} AS __t_{alias}" for alias, sql in derived.items())
        checks = " ".join(f"WHEN {c.condition} THEN {n}" for n, c in enumerate(self._checks(), 1))
        return (
            f"SELECT *, CASE {checks} ELSE 0 END AS __t_err FROM "
            f"(SELECT *, {values} FROM (SELECT *, {parsed} FROM {source}))"
        )

    def _event_values(self, message_id: str) -> str:
        """Return the SELECT list of one event row, in EVENT_COLUMNS order."""
        values = [
            message_id,
            "__t_type",
            "CASE WHEN __t_type = 'track' THEN __t_event END",
            "CASE WHEN __t_type IN ('page', 'screen') THEN __t_name END",
            *(f"__t_{name}" for name in _IDS),
            "__t_time",
            "__t_originalTimestamp",
            "__t_sentAt",
            self._received,
            "__t_channel_value",
            self._source_id,
            *(f"__t_{name}_value" for name in _OBJECT_FIELDS),
        ]
        return ", ".join(
            f"{sql} AS {column}" for sql, column in zip(values, EVENT_COLUMNS, strict=True)
        )

    def insert(self, checked: str, generate: bool, *, rebuild: bool, dedupe: bool) -> str:
        """Return the INSERT of the valid rows of `checked` whose messageId is not stored yet."""
        rows, message_id = f"SELECT * FROM {checked} WHERE __t_err = 0", "__t_mid"
        if generate:
            # Hash what the row says (not the import time) so a re-import finds the same ids;
            # number identical rows so that two equal purchases on one day both stay.
            content = ", ".join(
                f"CAST(__t_{name} AS VARCHAR)"
                for name in ("type", *_IDS, "event", "name", *_TIMES, "channel")
            )
            content += "".join(f", CAST(__t_{n}_value AS VARCHAR)" for n in _OBJECT_FIELDS)
            rows = (
                "SELECT *, row_number() OVER (PARTITION BY __t_hash ORDER BY __troth_row) "
                f"AS __t_nth FROM (SELECT *, CASE WHEN __t_mid IS NULL THEN md5(to_json([{content}])) "
                f"END AS __t_hash FROM ({rows}))"
            )
            message_id = (
                "coalesce(__t_mid, 'troth-' || __t_hash || "
                "CASE WHEN __t_nth > 1 THEN '-' || __t_nth ELSE '' END)"
            )
        sql = (
            f"INSERT INTO events ({_COLUMNS}) SELECT {_COLUMNS} FROM "
            f"(SELECT {self._event_values(message_id)}, __troth_row FROM ({rows})) x"
        )
        if rebuild:
            sql += " WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.message_id = x.message_id)"
        if dedupe:
            sql += " QUALIFY row_number() OVER (PARTITION BY message_id ORDER BY __troth_row) = 1"
        return sql if rebuild else sql + " ON CONFLICT DO NOTHING"

    def rejects(self, checked: str) -> str:
        """Return the SELECT of refused rows: row number, reason, field, messageId, data."""
        checks = self._checks()
        reasons = " ".join(f"WHEN {n} THEN {c.reason}" for n, c in enumerate(checks, 1))
        fields = " ".join(
            f"WHEN {n} THEN {literal(c.field)}" for n, c in enumerate(checks, 1) if c.field
        )
        data = ", ".join(f"{literal(name)}: {_ident(name)}" for name in self._types)
        return (
            f'SELECT __troth_row AS "row", CASE __t_err {reasons} END AS reason, '
            f"CASE __t_err {fields} ELSE NULL END AS field, "
            f"CAST(__t_messageId AS VARCHAR) AS message_id, to_json({{{data}}}) AS data "
            f"FROM {checked} WHERE __t_err > 0"
        )

    def record_rejects(self, table: str) -> str:
        """Return the INSERT copying the refused rows of `table` into the rejects table."""
        return (
            "INSERT INTO rejects (rejected_at, origin, message_id, field, reason, payload) "
            f"SELECT {self._received}, {self._origin}, message_id, field, reason, "
            f"CAST(data AS VARCHAR) FROM {table}"
        )
