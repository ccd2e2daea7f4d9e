"""The database file: migrations on open, messageId dedupe, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from troth.errors import StoreError
from troth.store import open_database
from troth.store.migrations import MIGRATIONS


def test_migrations_apply_once_and_are_recorded(tmp_path: Path) -> None:
    db = open_database(tmp_path / "m.duckdb")
    assert db.schema_version() == MIGRATIONS[-1].version
    db.close()
    again = open_database(tmp_path / "m.duckdb")
    assert again.migrate() == []
    tables = {r[0] for r in again.connection.execute("SHOW TABLES").fetchall()}
    assert {
        "events",
        "rejects",
        "sources",
        "api_tokens",
        "identifiers",
        "identity_links",
        "identity_merges",
        "schema_migrations",
    } <= tables
    again.close()


def test_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="does not exist"):
        open_database(tmp_path / "no" / "such.duckdb")


def test_second_writer_process_gets_a_clear_error(tmp_path: Path) -> None:
    import subprocess
    import sys

    db = open_database(tmp_path / "locked.duckdb")
    try:
        code = (
            "from troth.store import open_database\n"
            f"open_database({str(tmp_path / 'locked.duckdb')!r})"
        )
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    finally:
        db.close()
    assert result.returncode != 0
    assert "in use by another process" in result.stderr


def test_table_schemas_are_right_when_threads_ask_at_once(tmp_path: Path) -> None:
    import threading

    db = open_database(tmp_path / "s.duckdb")
    names = [
        "events",
        "rejects",
        "sources",
        "api_tokens",
        "identifiers",
        "identity_links",
        "identity_merges",
        "identity_state",
    ] * 3
    found: dict[str, list[str]] = {}

    def ask(name: str) -> None:
        found.setdefault(name, []).append(",".join(db.unbound_table(name).columns))

    threads = [threading.Thread(target=ask, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    expected = {
        n: ",".join(r[0] for r in db.connection.execute(f"DESCRIBE {n}").fetchall())
        for n in set(names)
    }
    db.close()
    assert {n: set(v) for n, v in found.items()} == {n: {c} for n, c in expected.items()}
