"""The SQL bulk path: same verdicts as normalize_call, both write modes, one transaction."""

from __future__ import annotations

import json
import tempfile
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from troth.errors import EventValidationError, ImportFileError, StoreError
from troth.events.model import normalize_call
from troth.events.schema import EVENT_COLUMNS
from troth.ingest.mapping import segment_mapping
from troth.store import Database, bulk, open_database

RECEIVED = datetime(2024, 6, 1, tzinfo=UTC)


def _import(
    db: Database, path: Path, rejects_path: Path | None = None, **options: object
) -> bulk.BulkResult:
    """Import a Segment-shaped Parquet file through the bulk layer."""
    mapping = segment_mapping(list(bulk.file_columns(db, path, "parquet")))
    return bulk.import_table(
        db,
        path,
        "parquet",
        mapping.fields,
        event=None,
        call_type=None,
        source_id="test",
        origin=f"import:{path.name}",
        rejects_path=rejects_path or path.with_name(path.name + ".rejects.jsonl"),
        received_at=RECEIVED,
        **options,  # type: ignore[arg-type]
    )


def _calls(path: Path, ids: list[str | None]) -> Path:
    """Write one track call per messageId (None: no messageId) as Parquet."""
    table = pa.table(
        {
            "type": ["track"] * len(ids),
            "event": ["Order Completed"] * len(ids),
            "userId": [f"u{n}" for n in range(len(ids))],
            "messageId": pa.array(ids, pa.string()),
        }
    )
    pq.write_table(table, path)
    return path


def _stored_ids(db: Database) -> list[str]:
    rows = db.connection.execute("SELECT message_id FROM events ORDER BY message_id").fetchall()
    return [row[0] for row in rows]


@pytest.mark.parametrize("mode", ["anti_join", "on_conflict"])
def test_write_modes_agree(tmp_path: Path, mode: bulk.WriteMode) -> None:
    db = open_database(tmp_path / "t.duckdb")
    _import(db, _calls(tmp_path / "old.parquet", ["a", "b"]), mode=mode)
    # "c" twice in the file: the anti-join attempt hits the index and retries de-duplicated.
    result = _import(db, _calls(tmp_path / "new.parquet", ["b", "c", "c", None, "d"]), mode=mode)
    assert result == bulk.BulkResult(rows=5, inserted=3, duplicates=2, rejected=0)
    stored = _stored_ids(db)
    assert stored[:4] == ["a", "b", "c", "d"] and stored[4].startswith("troth-")


def test_the_index_still_refuses_duplicates_after_an_import(tmp_path: Path) -> None:
    db = open_database(tmp_path / "t.duckdb")
    _import(db, _calls(tmp_path / "c.parquet", ["a", "b"]), mode="anti_join")
    (index,) = db.connection.execute(
        "SELECT index_name, is_unique FROM duckdb_indexes() WHERE table_name = 'events'"
    ).fetchall()
    assert index == ("events_message_id", True)
    with pytest.raises(Exception, match=r"(?i)duplicate key"):
        db.connection.execute(
            "INSERT INTO events (message_id, type, timestamp, received_at) "
            "VALUES ('a', 'track', now(), now())"
        )


def test_a_failure_leaves_the_database_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = open_database(tmp_path / "t.duckdb")
    _import(db, _calls(tmp_path / "old.parquet", ["a"]))
    # Fail after the INSERT, inside the transaction: recording the rejects breaks.
    monkeypatch.setattr(bulk.ImportQuery, "record_rejects", lambda self, table: "SELECT nonsense")
    with pytest.raises(StoreError, match="nonsense"):
        _import(db, _calls(tmp_path / "new.parquet", ["a", "b", "c"]))
    assert _stored_ids(db) == ["a"]
    assert db.connection.execute("SELECT count(*) FROM rejects").fetchone() == (0,)


def test_an_unwritable_rejects_file_undoes_the_import(tmp_path: Path) -> None:
    db = open_database(tmp_path / "t.duckdb")
    calls = _calls(tmp_path / "c.parquet", ["a", "b" * 101])
    with pytest.raises(ImportFileError, match="cannot write the rejects file"):
        _import(db, calls, rejects_path=tmp_path / "missing" / "c.rejects.jsonl")
    assert _stored_ids(db) == []
    assert db.connection.execute("SELECT count(*) FROM rejects").fetchone() == (0,)


def test_progress_is_reported(tmp_path: Path) -> None:
    db = open_database(tmp_path / "t.duckdb")
    seen: list[tuple[int, int]] = []
    _import(db, _calls(tmp_path / "c.parquet", ["a", "b"]), progress=lambda *a: seen.append(a))
    assert seen[0] == (0, 2) and seen[-1] == (2, 2)


def test_unreadable_file(tmp_path: Path) -> None:
    db = open_database(tmp_path / "t.duckdb")
    (tmp_path / "x.parquet").write_bytes(b"PAR1 nonsense")
    with pytest.raises(ImportFileError, match="as Parquet"):
        bulk.file_columns(db, tmp_path / "x.parquet", "parquet")


# --- The SQL validator and normalize_call agree ---------------------------------------------

_BLANKS = ["", " ", "\t", "\u00a0", "\u2003", "\x1c"]
_GOOD_JSON = ["{}", '{"a": 1}', '{"a": {"b": [1, 2]}}', '{"channel": "web"}', '{"channel": 5}']
_BAD_JSON = ['{"channel": {"x": 1}}', '{"channel": [1]}', "[1]", '"text"', "3"]
_MOMENTS = st.datetimes(datetime(2000, 1, 1), datetime(2030, 1, 1))


@st.composite
def _rfc3339(draw: st.DrawFn) -> str:
    """An RFC 3339 date-time in one of the spellings msgspec accepts."""
    zone = draw(st.sampled_from([None, UTC, timezone(timedelta(hours=2))]))
    moment = draw(_MOMENTS).replace(tzinfo=zone)
    text = moment.isoformat(sep=draw(st.sampled_from(["T", " "])))
    return draw(st.sampled_from([text, text.replace("+00:00", "Z"), text.lower()]))


def _pick(*values: object) -> st.SearchStrategy:
    return st.sampled_from(values)


_TEXT_KINDS = {"int": (pa.int64(), st.integers(0, 3))}
_ID_KINDS = {
    "int": (pa.int64(), st.integers(-5, 10**12)),
    "bool": (pa.bool_(), st.booleans()),
    "float": (pa.float64(), _pick(1.5, 2.0)),
}
# field -> (Arrow type, good values, bad values) of its natural column, then other column types
# (Arrow type, values) that normalize_call refuses or, for integer ids, converts.
_FIELDS: dict[str, tuple[tuple, dict[str, tuple]]] = {
    "type": (
        (
            pa.string(),
            _pick("track", "identify", "page", "screen", "group", "alias"),
            _pick("Track", ""),
        ),
        _TEXT_KINDS,
    ),
    **{
        name: ((pa.string(), _pick("Order Completed", "web"), _pick(*_BLANKS)), _TEXT_KINDS)
        for name in ("event", "name", "channel")
    },
    **{
        name: ((pa.string(), _pick("u1", "u2", "user 3"), _pick("x" * 1001, *_BLANKS)), _ID_KINDS)
        for name in ("userId", "anonymousId", "previousId", "groupId")
    },
    **{
        name: (
            (pa.string(), _rfc3339(), _pick("yesterday", "2024-13-01T00:00:00Z", "", "17000")),
            {
                "time": (
                    pa.timestamp("us", tz="UTC"),
                    _MOMENTS.map(lambda m: m.replace(tzinfo=UTC)),
                ),
                "int": (pa.int64(), st.integers(0, 10**9)),
            },
        )
        for name in ("timestamp", "originalTimestamp", "sentAt")
    },
    **{
        name: ((pa.string(), _pick(*_GOOD_JSON), _pick(*_BAD_JSON, "null")), _TEXT_KINDS)
        for name in ("properties", "traits", "context", "integrations")
    },
}
_JSON_FIELDS = {"properties", "traits", "context", "integrations"}


@st.composite
def _tables(draw: st.DrawFn) -> tuple[pa.Table, list[bytes]]:
    """Draw a Segment-shaped table and, row by row, the same calls as JSON.

    Values are mostly good (a quarter of rows or so are accepted): each field is absent, bad
    or of a column type normalize_call refuses only now and then.
    """
    count = draw(st.integers(1, 12))
    values: dict[str, list] = {}
    columns: dict[str, pa.Array] = {}
    extra = draw(st.lists(st.sampled_from(sorted(_FIELDS)), unique=True, max_size=6))
    for field in dict.fromkeys(["type", "userId", *extra]):
        (arrow_type, good, bad), others = _FIELDS[field]
        other = draw(st.sampled_from([None] * 12 + sorted(others)))
        if other is not None:
            arrow_type, good = others[other]
            bad = good
        cell = _pick("good", "good", "good", "good", "bad", "none").flatmap(
            lambda pick, good=good, bad=bad: {"good": good, "bad": bad, "none": st.none()}[pick]
        )
        values[field] = draw(st.lists(cell, min_size=count, max_size=count))
        columns[field] = pa.array(values[field], arrow_type)
    ids = draw(
        st.lists(_pick(None, "", " ", "ok", "ok", "m" * 101), min_size=count, max_size=count)
    )
    values["messageId"] = [f"id-{n}" if v == "ok" else v for n, v in enumerate(ids)]
    columns["messageId"] = pa.array(values["messageId"], pa.string())
    calls = []
    for n in range(count):
        parts = []
        for field, column in values.items():
            value = column[n]
            if value is None:
                continue
            if isinstance(value, datetime):
                value = value.isoformat()
            text = value if field in _JSON_FIELDS and isinstance(value, str) else json.dumps(value)
            parts.append(f"{json.dumps(field)}: {text}")
        calls.append(("{" + ", ".join(parts) + "}").encode())
    return pa.table(columns), calls


def _verdicts(calls: list[bytes]) -> tuple[set[int], dict[str, tuple]]:
    """Return the 1-based rows normalize_call refuses, and its rows by explicit messageId."""
    refused, rows = set(), {}
    for number, call in enumerate(calls, 1):
        try:
            row = normalize_call(call, RECEIVED, "test")
        except EventValidationError:
            refused.add(number)
        else:
            rows[row[0]] = row
    return refused, rows


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_tables())
def test_sql_checks_agree_with_normalize_call(drawn: tuple[pa.Table, list[bytes]]) -> None:
    table, calls = drawn
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "calls.parquet"
        pq.write_table(table, path)
        db = open_database(Path(tmp) / "t.duckdb")
        try:
            result = _import(db, path)
            stored = {
                row[0]: row
                for row in db.connection.execute(
                    f"SELECT {', '.join(EVENT_COLUMNS)} FROM events WHERE message_id LIKE 'id-%'"
                ).fetchall()
            }
        finally:
            db.close()
        rejects = path.with_name("calls.parquet.rejects.jsonl")
        lines = rejects.read_text().splitlines() if rejects.exists() else []
    refused, rows = _verdicts(calls)
    assert {json.loads(line)["row"] for line in lines} == refused, calls
    assert result.rows == result.inserted + result.duplicates + result.rejected == len(calls)
    # Accepted calls are stored as normalize_call would store them.
    assert stored == {key: row for key, row in rows.items() if key.startswith("id-")}
