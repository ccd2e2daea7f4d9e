"""`import_file`: CSV, JSON-lines and Parquet files into events, rejects and a rejects file."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from troth.errors import ImportFileError
from troth.ingest.files import ImportSummary, import_file
from troth.ingest.mapping import TableMapping, parse_map_options
from troth.store import Database, open_database

DEMO_SCHEMA = pa.schema(
    [
        ("messageId", pa.string()),
        ("type", pa.string()),
        ("event", pa.string()),
        ("name", pa.string()),
        ("userId", pa.string()),
        ("anonymousId", pa.string()),
        ("previousId", pa.string()),
        ("groupId", pa.string()),
        ("timestamp", pa.timestamp("us", tz="UTC")),
        ("channel", pa.string()),
        ("properties", pa.string()),
        ("traits", pa.string()),
        ("context", pa.string()),
    ]
)
T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def db(tmp_path: Path) -> Database:
    return open_database(tmp_path / "t.duckdb")


def _demo_row(**values: object) -> dict:
    """Return a row of the demo generator's Parquet shape, JSON columns given as dicts."""
    row: dict = dict.fromkeys(DEMO_SCHEMA.names)
    row.update(timestamp=T0, **values)
    for name in ("properties", "traits", "context"):
        if isinstance(row[name], dict):
            row[name] = json.dumps(row[name])
    return row


def _write_demo(path: Path, rows: list[dict]) -> Path:
    pq.write_table(pa.Table.from_pylist(rows, schema=DEMO_SCHEMA), path)
    return path


def _segment_rows() -> list[dict]:
    return [
        _demo_row(
            messageId="m1",
            type="track",
            event="Order Completed",
            userId="u1",
            properties={"revenue": 12.5, "channel": "store"},
            context={"channel": "web"},
        ),
        _demo_row(
            messageId="m2",
            type="identify",
            userId="u1",
            traits={"email": "a@example.com"},
            context={"channel": "email"},
        ),
        _demo_row(messageId="m3", type="page", name="Pricing", anonymousId="a1"),
    ]


def _events(db: Database) -> list[dict]:
    cur = db.connection.execute(
        "SELECT message_id, type, event, name, user_id, anonymous_id, timestamp, channel, "
        "source_id, properties, traits FROM events ORDER BY message_id"
    )
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def _rejects(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _balanced(summary: ImportSummary) -> bool:
    return summary.rows == summary.inserted + summary.duplicates + summary.rejected


def _expected_segment_events() -> list[tuple]:
    return [
        ("m1", "track", "Order Completed", None, "u1", None, T0, "store", "src"),
        ("m2", "identify", None, None, "u1", None, T0, "email", "src"),
        ("m3", "page", None, "Pricing", None, "a1", T0, None, "src"),
    ]


def test_segment_parquet_round_trip(db: Database, tmp_path: Path) -> None:
    path = _write_demo(tmp_path / "calls.parquet", _segment_rows())
    summary = import_file(db, path, source_id="src")
    assert (summary.format, summary.rows, summary.inserted, summary.rejected) == (
        "parquet",
        3,
        3,
        0,
    )
    assert summary.rejects_path is None
    events = _events(db)
    assert [tuple(e.values())[:9] for e in events] == _expected_segment_events()
    assert json.loads(events[0]["properties"]) == {"revenue": 12.5, "channel": "store"}
    assert json.loads(events[1]["traits"]) == {"email": "a@example.com"}


def test_segment_csv_round_trip(db: Database, tmp_path: Path) -> None:
    path = tmp_path / "calls.csv"
    pa_table = pa.Table.from_pylist(_segment_rows(), schema=DEMO_SCHEMA)
    pa_table = pa_table.set_column(8, "timestamp", pa.array(["2024-03-01T12:00:00Z"] * 3))
    pacsv.write_csv(pa_table, path)
    summary = import_file(db, path, source_id="src")
    assert (summary.format, summary.inserted, summary.rejected) == ("csv", 3, 0)
    assert [tuple(e.values())[:9] for e in _events(db)] == _expected_segment_events()


def test_segment_jsonl_round_trip(db: Database, tmp_path: Path) -> None:
    path = tmp_path / "calls.jsonl"
    calls = []
    for row in _segment_rows():
        call = {k: v for k, v in row.items() if v is not None}
        call["timestamp"] = "2024-03-01T12:00:00Z"
        for name in ("properties", "traits", "context"):
            if name in call:
                call[name] = json.loads(call[name])
        calls.append(json.dumps(call))
    path.write_text("\n".join(calls) + "\n\n")  # a trailing blank line is not a row
    summary = import_file(db, path, source_id="src")
    assert (summary.format, summary.rows, summary.inserted, summary.rejected) == ("jsonl", 3, 3, 0)
    assert [tuple(e.values())[:9] for e in _events(db)] == _expected_segment_events()


def test_flat_property_columns_fill_properties(db: Database, tmp_path: Path) -> None:
    path = tmp_path / "flat.csv"
    path.write_text(
        "type,event,userId,messageId,properties.revenue,properties.item.sku,context.channel\n"
        "track,Order Completed,u1,f1,9.5,A-1,shop\n"
    )
    import_file(db, path)
    (event,) = _events(db)
    assert json.loads(event["properties"]) == {"revenue": "9.5", "item": {"sku": "A-1"}}
    assert event["channel"] == "shop"


def test_parquet_struct_columns_are_json_objects(db: Database, tmp_path: Path) -> None:
    table = pa.table(
        {
            "type": ["track"],
            "event": ["Order Completed"],
            "userId": [42],  # integer ids become text, as over HTTP
            "properties": pa.array([{"revenue": 3.0, "channel": "app"}]),
        }
    )
    pq.write_table(table, tmp_path / "s.parquet")
    import_file(db, tmp_path / "s.parquet")
    (event,) = _events(db)
    assert event["user_id"] == "42"
    assert event["channel"] == "app"
    assert json.loads(event["properties"]) == {"revenue": 3.0, "channel": "app"}


TRANSACTIONS = "customer_id,date,amount\nc1,2024-01-05,10.5\nc2,2024-02-01,7\n"


def _transactions_mapping() -> TableMapping:
    fields = parse_map_options(
        ["customer_id=userId", "date=timestamp", "amount=properties.revenue:number"]
    )
    return TableMapping(fields, event="Order Completed")


def test_transactions_mapping(db: Database, tmp_path: Path) -> None:
    path = tmp_path / "transactions.csv"
    path.write_text(TRANSACTIONS)
    summary = import_file(db, path, _transactions_mapping())
    assert (summary.inserted, summary.rejected) == (2, 0)
    events = sorted(_events(db), key=lambda e: e["user_id"])
    assert [(e["type"], e["event"], e["user_id"]) for e in events] == [
        ("track", "Order Completed", "c1"),
        ("track", "Order Completed", "c2"),
    ]
    assert events[0]["timestamp"] == datetime(2024, 1, 5, tzinfo=UTC)
    assert [json.loads(e["properties"]) for e in events] == [{"revenue": 10.5}, {"revenue": 7.0}]
    assert all(e["message_id"].startswith("troth-") for e in events)


def test_reimport_adds_nothing_and_equal_rows_both_stay(db: Database, tmp_path: Path) -> None:
    path = tmp_path / "transactions.csv"
    path.write_text(TRANSACTIONS + "c1,2024-01-05,10.5\n")  # two equal purchases, one day
    first = import_file(db, path, _transactions_mapping())
    again = import_file(db, path, _transactions_mapping())
    assert (first.inserted, first.duplicates) == (3, 0)
    assert (again.inserted, again.duplicates) == (0, 3)
    assert _balanced(first) and _balanced(again)
    assert len(_events(db)) == 3


def test_repeated_message_id_in_a_file_is_a_duplicate(db: Database, tmp_path: Path) -> None:
    rows = [*_segment_rows(), _segment_rows()[0]]
    summary = import_file(db, _write_demo(tmp_path / "dup.parquet", rows))
    assert (summary.rows, summary.inserted, summary.duplicates) == (4, 3, 1)


def test_identical_jsonl_lines_without_message_id_both_stay(db: Database, tmp_path: Path) -> None:
    line = json.dumps({"type": "track", "event": "Order Completed", "userId": "u1"})
    path = tmp_path / "calls.jsonl"
    path.write_text(f"{line}\n{line}\n")
    assert import_file(db, path).inserted == 2
    again = import_file(db, path)
    assert (again.inserted, again.duplicates) == (0, 2)


# (columns, expected reason fragment, field) per refused row of one Segment-shaped CSV.
REFUSED = [
    ("track,Buy,,,,", "userId or anonymousId is required", "userId"),
    ("click,Buy,u1,,,", "type 'click' is unknown", "type"),
    ("track,,u1,,,", "a track call needs a non-empty event name", "event"),
    ("alias,,u1,,,", "an alias call needs previousId", "previousId"),
    ("group,,u1,,,", "a group call needs groupId", "groupId"),
    ("track,Buy,u1,,yesterday,", "timestamp 'yesterday' is not an ISO 8601 date-time", "timestamp"),
    ('track,Buy,u1,,,"[1, 2]"', "properties must be a JSON object", "properties"),
    ('track,Buy,u1,,,"{""a"": "', "properties is not valid JSON", "properties"),
    (f"track,Buy,u1,{'m' * 101},,", "messageId is 101 characters; the limit is 100", "messageId"),
    (f'track,Buy,u1,,,"{{""x"": ""{"y" * 40_000}""}}"', "the limit is 32768 bytes", None),
]


def test_every_reject_reason_in_table_files(db: Database, tmp_path: Path) -> None:
    path = tmp_path / "calls.csv"
    good = "identify,,u9,ok-1,2024-01-01T00:00:00Z,"
    path.write_text(
        "type,event,userId,messageId,timestamp,properties\n"
        + "\n".join([good] + [row for row, _, _ in REFUSED])
        + "\n"
    )
    summary = import_file(db, path)
    assert (summary.rows, summary.inserted, summary.rejected) == (11, 1, 10)
    assert summary.rejects_path == str(tmp_path / "calls.csv.rejects.jsonl")
    rejects = _rejects(Path(summary.rejects_path))
    assert [r["row"] for r in rejects] == list(range(2, 12))
    for reject, (_, reason, field) in zip(rejects, REFUSED, strict=True):
        assert reason in reject["reason"]
        assert reject["field"] == field
    assert rejects[1]["data"] == {
        "type": "click",
        "event": "Buy",
        "userId": "u1",
        "messageId": None,
        "timestamp": None,
        "properties": None,
    }
    stored = db.connection.execute("SELECT origin, reason FROM rejects ORDER BY reason").fetchall()
    assert len(stored) == 10 and {origin for origin, _ in stored} == {"import:calls.csv"}


def test_bad_number_is_a_reject_naming_column_and_value(db: Database, tmp_path: Path) -> None:
    path = tmp_path / "transactions.csv"
    path.write_text(TRANSACTIONS + "c3,2024-03-01,twelve\n")
    summary = import_file(db, path, _transactions_mapping())
    assert (summary.inserted, summary.rejected) == (2, 1)
    (reject,) = _rejects(Path(summary.rejects_path or ""))
    assert reject == {
        "row": 3,
        "reason": "column amount: 'twelve' is not a number",
        "field": "properties.revenue",
        "data": {"customer_id": "c3", "date": "2024-03-01", "amount": "twelve"},
    }


def test_kinds_cast_or_refuse(db: Database, tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("id,n,flag,at,doc\nu1,3,yes,2024-01-01T10:00:00+02:00,{}\nu2,1.5,maybe,x,{\n")
    fields = parse_map_options(
        [
            "id=userId",
            "n=properties.n:integer",
            "flag=properties.flag:boolean",
            "at=properties.at:timestamp",
            "doc=properties.doc:json",
        ]
    )
    summary = import_file(db, path, TableMapping(fields, event="Checked"))
    assert (summary.inserted, summary.rejected) == (1, 1)
    (event,) = _events(db)
    assert json.loads(event["properties"]) == {
        "n": 3,
        "flag": True,
        "at": "2024-01-01T08:00:00.000000Z",
        "doc": {},
    }
    (reject,) = _rejects(tmp_path / "t.csv.rejects.jsonl")
    assert reject["reason"] == "column n: '1.5' is not an integer"


def test_malformed_and_invalid_jsonl_lines_are_rejects(db: Database, tmp_path: Path) -> None:
    path = tmp_path / "calls.jsonl"
    path.write_text(
        json.dumps({"type": "identify", "userId": "u1", "messageId": "j1"})
        + "\n{not json\n"
        + json.dumps({"type": "track", "userId": "u1"})
        + "\n"
    )
    summary = import_file(db, path)
    assert (summary.rows, summary.inserted, summary.rejected) == (3, 1, 2)
    malformed, no_event = _rejects(path.with_name("calls.jsonl.rejects.jsonl"))
    assert malformed["row"] == 2 and malformed["data"] == "{not json"
    assert malformed["reason"].startswith("malformed JSON")
    assert no_event["row"] == 3 and no_event["field"] == "event"
    assert no_event["data"] == {"type": "track", "userId": "u1"}


def test_stale_rejects_file_is_removed(db: Database, tmp_path: Path) -> None:
    path = tmp_path / "calls.csv"
    path.write_text("type,userId,messageId\ntrack,u1,x1\n")
    import_file(db, path)
    assert (tmp_path / "calls.csv.rejects.jsonl").exists()
    path.write_text("type,userId,messageId\nidentify,u1,x1\n")
    summary = import_file(db, path)
    assert summary.rejects_path is None
    assert not (tmp_path / "calls.csv.rejects.jsonl").exists()


def test_mapped_jsonl_records(db: Database, tmp_path: Path) -> None:
    path = tmp_path / "tickets.ndjson"
    path.write_text('{"who": "u1", "opened": "2024-05-01T09:00:00Z", "prio": 2}\n')
    fields = parse_map_options(["who=userId", "opened=timestamp", "prio=properties.priority"])
    summary = import_file(db, path, TableMapping(fields, event="Ticket Opened"))
    assert summary.inserted == 1
    (event,) = _events(db)
    assert json.loads(event["properties"]) == {"priority": 2}


def test_unknown_extension(db: Database, tmp_path: Path) -> None:
    path = tmp_path / "calls.xlsx"
    path.write_bytes(b"")
    with pytest.raises(ImportFileError, match=r"unknown file type '\.xlsx'.*\.csv"):
        import_file(db, path)


def test_unreadable_parquet(db: Database, tmp_path: Path) -> None:
    path = tmp_path / "broken.parquet"
    path.write_text("not parquet")
    with pytest.raises(ImportFileError, match=r"cannot read .*broken\.parquet as Parquet"):
        import_file(db, path)


def test_missing_file(db: Database, tmp_path: Path) -> None:
    with pytest.raises(ImportFileError, match="no such file"):
        import_file(db, tmp_path / "gone.csv")


def test_missing_mapped_column_lists_the_file_columns(db: Database, tmp_path: Path) -> None:
    path = tmp_path / "transactions.csv"
    path.write_text("customer,date,amount\nc1,2024-01-05,1\n")
    with pytest.raises(ImportFileError, match=r"no column 'customer_id'.*customer, date, amount"):
        import_file(db, path, _transactions_mapping())


def test_unmapped_table_without_type_column(db: Database, tmp_path: Path) -> None:
    path = tmp_path / "transactions.csv"
    path.write_text(TRANSACTIONS)
    with pytest.raises(ImportFileError, match=r"no `type` column.*--map"):
        import_file(db, path)


def test_progress_reaches_the_total(db: Database, tmp_path: Path) -> None:
    calls: list[tuple[int, int]] = []
    import_file(
        db,
        _write_demo(tmp_path / "c.parquet", _segment_rows()),
        progress=lambda *a: calls.append(a),
    )
    assert calls[0] == (0, 3) and calls[-1] == (3, 3)


def test_mapping_without_call_type_is_a_clear_error(db: Database, tmp_path: Path) -> None:
    path = tmp_path / "transactions.csv"
    path.write_text(TRANSACTIONS)
    with pytest.raises(ImportFileError, match="gives no call type"):
        import_file(db, path, TableMapping(parse_map_options(["customer_id=userId"])))


def test_a_folder_in_the_way_of_the_rejects_file(db: Database, tmp_path: Path) -> None:
    path = tmp_path / "calls.csv"
    path.write_text("type,userId,messageId\nidentify,u1,x1\n")
    (tmp_path / "calls.csv.rejects.jsonl").mkdir()
    with pytest.raises(ImportFileError, match="cannot remove the old rejects file"):
        import_file(db, path)


def test_kinds_cast_typed_parquet_columns(db: Database, tmp_path: Path) -> None:
    table = pa.table(
        {
            "id": ["u1", "u2"],
            "amount": [2.0, 2.5],
            "when": pa.array([T0, T0], pa.timestamp("us", tz="UTC")),
            "flag": [True, False],
        }
    )
    pq.write_table(table, tmp_path / "typed.parquet")
    fields = parse_map_options(
        [
            "id=userId",
            "amount=properties.n:integer",
            "when=properties.at:timestamp",
            "flag=properties.flag:boolean",
        ]
    )
    summary = import_file(db, tmp_path / "typed.parquet", TableMapping(fields, event="E"))
    assert (summary.inserted, summary.rejected) == (1, 1)
    (event,) = _events(db)
    assert json.loads(event["properties"]) == {
        "n": 2,
        "at": "2024-03-01T12:00:00.000000Z",
        "flag": True,
    }
    (reject,) = _rejects(tmp_path / "typed.parquet.rejects.jsonl")
    assert reject["reason"] == "column amount: '2.5' is not an integer"
