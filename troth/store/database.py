"""The embedded DuckDB database: opening, migrations, and the writes every other layer asks for."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from troth.errors import StoreError
from troth.events.schema import EVENT_COLUMNS, EVENT_SCHEMA, REJECT_SCHEMA
from troth.store.migrations import MIGRATIONS
from troth.store.session import Session

__all__ = ["Database", "open_database"]

_EVENT_COLUMN_LIST = ", ".join(EVENT_COLUMNS)
_REJECT_COLUMN_LIST = ", ".join(REJECT_SCHEMA.names)


_COMPILED_CACHE_SIZE = 1024

# DuckDB type names that Ibis spells differently.
_IBIS_TYPES = {
    "TIMESTAMP WITH TIME ZONE": "timestamp('UTC')",
    "VARCHAR": "string",
    "BIGINT": "int64",
    "INTEGER": "int32",
    "DOUBLE": "float64",
    "BOOLEAN": "boolean",
    "JSON": "json",
}


class Database:
    """One open DuckDB database file; the only object in Troth that holds a connection."""

    def __init__(
        self,
        connection: duckdb.DuckDBPyConnection,
        path: str,
        config: dict[str, Any] | None = None,
    ) -> None:
        self._con = connection
        self.path = path
        self._config = dict(config or {})
        # Bumped when `rewrite` reopens the file: holders of a cursor take a new one.
        self.generation = 0
        # Small per-database values other store modules cache (e.g. the tombstones).
        self.cache: dict[str, Any] = {}
        self._ibis: Any = None
        self._schemas: dict[str, Any] = {}
        self._schema_lock = threading.Lock()
        self._compiled: dict[Any, str] = {}

    @property
    def connection(self) -> duckdb.DuckDBPyConnection:
        """Return the DuckDB connection (the store layer's own handle)."""
        return self._con

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """Return a new cursor on the same database, for use from another thread."""
        cur = self._con.cursor()
        cur.execute("SET TimeZone = 'UTC'")
        return cur

    def ibis(self) -> Any:
        """Return an Ibis backend over this database for analytics expressions."""
        if self._ibis is None:
            import ibis

            self._ibis = ibis.duckdb.from_connection(self.cursor())
        return self._ibis

    def unbound_table(self, name: str, source: str | None = None) -> Any:
        """Return an unbound Ibis table `name` with the columns of stored table `source`.

        Domain code builds expressions over these; the store compiles them to SQL and runs them
        on its own cursor, inside its own transactions.
        """
        import ibis

        key = source or name
        with self._schema_lock:  # requests on several threads may ask at once
            if key not in self._schemas:
                cur = self.cursor()
                try:
                    columns = cur.execute(
                        "SELECT column_name, data_type FROM information_schema.columns "
                        "WHERE table_name = ? AND table_schema = 'main' "
                        "ORDER BY ordinal_position",
                        [key],
                    ).fetchall()
                finally:
                    cur.close()
                if not columns:
                    raise StoreError(f"table {key} does not exist")
                self._schemas[key] = ibis.schema(
                    {col: _IBIS_TYPES.get(dtype, dtype.lower()) for col, dtype in columns}
                )
        return ibis.table(self._schemas[key], name=name)

    def forget_schema(self, name: str) -> None:
        """Drop the cached columns of a table that was just re-created."""
        with self._schema_lock:
            self._schemas.pop(name, None)

    def compiled_sql(self, expr: Any) -> str:
        """Return the DuckDB SQL of an Ibis expression, from a cache keyed by its structure."""
        import ibis

        key = expr.op()
        sql = self._compiled.get(key)
        if sql is None:
            sql = ibis.to_sql(expr, dialect="duckdb")
            if len(self._compiled) > _COMPILED_CACHE_SIZE:
                self._compiled.clear()
            self._compiled[key] = sql
        return sql

    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        """Yield a Session (own cursor, temp tables) that is closed afterwards."""
        session = Session(self)
        try:
            yield session
        finally:
            session.close()

    def schema_version(self) -> int:
        """Return the newest applied migration's version number."""
        cur = self.cursor()  # a connection must not be shared between threads
        try:
            row = cur.execute("SELECT max(version) FROM schema_migrations").fetchone()
        finally:
            cur.close()
        return int(row[0] or 0)

    def migrate(self) -> list[int]:
        """Apply pending migrations in order; return the versions applied now."""
        self._con.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            "version INTEGER PRIMARY KEY, description VARCHAR, applied_at TIMESTAMPTZ)"
        )
        current = self.schema_version()
        applied = []
        for migration in MIGRATIONS:
            if migration.version <= current:
                continue
            with self.transaction() as cur:
                for statement in migration.statements:
                    cur.execute(statement)
                cur.execute(
                    "INSERT INTO schema_migrations VALUES (?, ?, ?)",
                    [migration.version, migration.description, datetime.now(UTC)],
                )
            applied.append(migration.version)
        return applied

    @contextlib.contextmanager
    def transaction(
        self, cursor: duckdb.DuckDBPyConnection | None = None
    ) -> Iterator[duckdb.DuckDBPyConnection]:
        """Yield a cursor inside BEGIN … COMMIT, rolled back if the block raises."""
        cur = cursor if cursor is not None else self._con
        cur.execute("BEGIN TRANSACTION")
        try:
            yield cur
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        cur.execute("COMMIT")

    def insert_events(
        self,
        events: pa.Table,
        cursor: duckdb.DuckDBPyConnection | None = None,
        *,
        expect_new: bool = False,
    ) -> int:
        """Insert events (EVENT_SCHEMA), skipping known messageIds; return how many were new.

        With `expect_new` (outside a transaction, and no messageId twice in `events`) a plain
        INSERT is tried first: a third cheaper than ON CONFLICT's per-row probe, and a clash
        with a stored messageId, which is rare, only sends the rows through ON CONFLICT after.
        """
        cur = cursor if cursor is not None else self._con
        new_events = (  # noqa: F841
            events
            if events.schema.equals(EVENT_SCHEMA)
            else events.select(list(EVENT_COLUMNS)).cast(EVENT_SCHEMA)
        )
        # DuckDB finds `new_events` among this frame's locals (a replacement scan): cheaper on
        # the hot path than register/unregister, which are two more statements per commit.
        insert = (
            f"INSERT INTO events ({_EVENT_COLUMN_LIST}) SELECT {_EVENT_COLUMN_LIST} FROM new_events"
        )
        if expect_new:
            try:
                row = cur.execute(insert).fetchone()
                return int(row[0]) if row else 0
            except duckdb.ConstraintException:
                pass  # a known messageId: the statement changed nothing, take the careful path
        row = cur.execute(insert + " ON CONFLICT DO NOTHING").fetchone()
        return int(row[0]) if row else 0

    def insert_rejects(
        self, rejects: pa.Table, cursor: duckdb.DuckDBPyConnection | None = None
    ) -> None:
        """Record rejected inputs (REJECT_SCHEMA) with their reasons."""
        if rejects.num_rows == 0:
            return
        cur = cursor if cursor is not None else self._con
        cur.register("_troth_new_rejects", rejects.cast(REJECT_SCHEMA))
        try:
            cur.execute(
                f"INSERT INTO rejects ({_REJECT_COLUMN_LIST}) "
                f"SELECT {_REJECT_COLUMN_LIST} FROM _troth_new_rejects"
            )
        finally:
            cur.unregister("_troth_new_rejects")

    def checkpoint(self) -> None:
        """Fold the write-ahead log into the database file."""
        self._con.execute("CHECKPOINT")

    def rewrite(self) -> float:
        """Copy every live row into a fresh file that replaces this one; return the seconds.

        DuckDB leaves deleted rows in freed blocks of the file until they are reused, so an
        erasure copies the database (COPY FROM DATABASE writes live rows only), checks that
        each table holds as many rows in the copy, swaps the files atomically and reopens.
        No other thread may use the database meanwhile: cursors taken before are closed.
        """
        started = time.perf_counter()
        if self.path == ":memory:":
            return 0.0
        path = Path(self.path)
        fresh = path.with_name(path.name + ".rewrite")
        for leftover in (fresh, Path(f"{fresh}.wal")):
            leftover.unlink(missing_ok=True)
        con = self._con
        name = con.execute("SELECT current_database()").fetchone()[0]
        try:
            con.execute("CHECKPOINT")
            con.execute(f"ATTACH {_literal(str(fresh))} AS __troth_rewrite")
            try:
                con.execute(f"COPY FROM DATABASE {_ident(name)} TO __troth_rewrite")
                _check_copy(con, name, "__troth_rewrite")
            finally:
                con.execute("DETACH __troth_rewrite")
        except (duckdb.Error, StoreError) as exc:
            fresh.unlink(missing_ok=True)
            raise StoreError(f"could not rewrite database {path}: {exc}") from exc
        self._ibis = None
        con.close()
        os.replace(fresh, path)
        # Closing checkpointed the old log into the old file, which is gone now.
        Path(f"{path}.wal").unlink(missing_ok=True)
        if Path(f"{fresh}.wal").exists():
            os.replace(f"{fresh}.wal", f"{path}.wal")
        try:
            self._con = duckdb.connect(str(path), config=self._config)
        except duckdb.Error as exc:
            raise StoreError(f"could not reopen database {path} after rewriting it: {exc}") from exc
        self._con.execute("SET TimeZone = 'UTC'")
        self.generation += 1
        self.cache.clear()
        return time.perf_counter() - started

    def close(self) -> None:
        """Checkpoint and close the database."""
        with contextlib.suppress(duckdb.Error):
            self._con.execute("CHECKPOINT")
        self._con.close()


def _literal(text: str) -> str:
    """Return `text` as a SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def _ident(name: str) -> str:
    """Return `name` as a quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def _check_copy(con: duckdb.DuckDBPyConnection, source: str, copy: str) -> None:
    """Raise StoreError unless every table of `source` has as many rows in `copy`."""
    tables = [
        row[0]
        for row in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = ? AND NOT temporary",
            [source],
        ).fetchall()
    ]
    for table in tables:
        counts = [
            con.execute(f"SELECT count(*) FROM {_ident(db)}.main.{_ident(table)}").fetchone()[0]
            for db in (source, copy)
        ]
        if counts[0] != counts[1]:
            raise StoreError(f"the copy of table {table} has {counts[1]} rows, not {counts[0]}")


def open_database(
    path: str | Path,
    *,
    read_only: bool = False,
    threads: int | None = None,
    memory_limit: str | None = None,
    checkpoint_threshold: str | None = None,
) -> Database:
    """Return the database at `path`, created and migrated to the newest schema if needed."""
    path = str(path)
    if path != ":memory:":
        parent = Path(path).expanduser().resolve().parent
        if not parent.is_dir():
            raise StoreError(f"cannot create database {path}: folder {parent} does not exist")
    config: dict[str, Any] = {}
    if threads:
        config["threads"] = threads
    if memory_limit:
        config["memory_limit"] = memory_limit
    if checkpoint_threshold:
        config["checkpoint_threshold"] = checkpoint_threshold
    try:
        con = duckdb.connect(path, read_only=read_only, config=config)
    except duckdb.IOException as exc:
        text = str(exc)
        if "lock" in text.lower():
            raise StoreError(
                f"database {path} is in use by another process (is `troth serve` running?): "
                "stop that process, or use its HTTP API instead"
            ) from exc
        raise StoreError(f"cannot open database {path}: {text}") from exc
    except duckdb.Error as exc:
        raise StoreError(f"cannot open database {path}: {exc}") from exc
    con.execute("SET TimeZone = 'UTC'")
    db = Database(con, path, config)
    if not read_only:
        db.migrate()
    return db
