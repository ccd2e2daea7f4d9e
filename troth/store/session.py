"""A session: one cursor that runs the Ibis expressions domain code builds.

Domain packages build expressions and plans; they run them through a Session, which compiles
them to the database's SQL, holds the session's temporary tables and its transactions. It is
the only door from the domain to the database.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import ibis
import ibis.expr.operations as ops
import ibis.expr.types as ir
import pyarrow as pa

from troth.errors import StoreError

if TYPE_CHECKING:
    from troth.store.database import Database

__all__ = ["Session"]


class Session:
    """A cursor on the database plus the temp tables it created; close it when done."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._cur = db.cursor()
        self._temps: set[str] = set()

    def table(self, name: str) -> ir.Table:
        """Return an unbound Ibis table over stored table `name`."""
        return self._db.unbound_table(name)

    def sql(self, expr: ir.Expr) -> str:
        """Return the SQL the database runs for `expr`, compiled once per distinct expression.

        Compiling is pure Python holding the GIL for milliseconds per expression; a server
        that resolves identities every few seconds would stall its request thread each time.
        Expressions are structurally hashable, and those that repeat read their varying inputs
        from temp tables (see `materialize_row`), so the cache hits. Small in-memory tables
        (`ibis.memtable`, e.g. a list of period ends) are registered on this cursor first.
        """
        for table in expr.op().find(ops.InMemoryTable):
            self._cur.register(table.name, table.data.to_pyarrow(table.schema))
        return self._db.compiled_sql(expr)

    def materialize_row(self, name: str, values: Mapping[str, int]) -> ir.Table:
        """Store one row of integers as temp table `name`; return an unbound table over it."""
        columns = ", ".join(f"CAST(? AS BIGINT) AS {column}" for column in values)
        self._cur.execute(
            f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT {columns}", list(values.values())
        )
        self._temps.add(name)
        return ibis.table({column: "int64" for column in values}, name=name)

    def fetch(self, expr: ir.Table) -> list[tuple]:
        """Return the rows of a table expression."""
        return self._cur.execute(self.sql(expr)).fetchall()

    def fetch_arrow(self, expr: ir.Table) -> pa.Table:
        """Return the rows of a table expression as an Arrow table (columnar, no Python rows)."""
        return self._cur.execute(self.sql(expr)).to_arrow_table()

    def fetch_batches(self, expr: ir.Table, rows: int = 10_000) -> Iterator[list[dict[str, Any]]]:
        """Yield the rows of a table expression as lists of at most `rows` dicts.

        Results larger than memory (a customer's every event) are read a batch at a time.
        """
        reader = self._cur.execute(self.sql(expr)).to_arrow_reader(rows)
        for batch in reader:
            yield batch.to_pylist()

    def stored_tables(self) -> dict[str, list[str]]:
        """Return every stored table's name with its column names, in catalog order."""
        found: dict[str, list[str]] = {}
        rows = self._cur.execute(
            "SELECT c.table_name, c.column_name FROM information_schema.columns c "
            "JOIN information_schema.tables t ON t.table_name = c.table_name "
            "AND t.table_schema = c.table_schema "
            "WHERE c.table_schema = 'main' AND t.table_type = 'BASE TABLE' "
            "ORDER BY c.table_name, c.ordinal_position"
        ).fetchall()
        for table, column in rows:
            found.setdefault(table, []).append(column)
        return found

    def fetch_dicts(self, expr: ir.Table) -> list[dict[str, Any]]:
        """Return the rows of a table expression as dicts keyed by column name."""
        columns = list(expr.columns)
        return [dict(zip(columns, row, strict=True)) for row in self.fetch(expr)]

    def scalar(self, expr: ir.Expr) -> Any:
        """Return the single value of a scalar (or one-row, one-column) expression."""
        row = self._cur.execute(self.sql(expr)).fetchone()
        return None if row is None else row[0]

    def materialize(self, name: str, expr: ir.Table) -> ir.Table:
        """Run `expr` into this session's temp table `name`; return an unbound table over it."""
        self._cur.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {self.sql(expr)}")
        self._temps.add(name)
        return ibis.table(expr.schema(), name=name)

    def replace(self, name: str, expr: ir.Table) -> ir.Table:
        """Materialize `expr` as temp table `name`, computed from the old `name` if it reads it."""
        staging = f"{name}__next"
        self._cur.execute(f"CREATE OR REPLACE TEMP TABLE {staging} AS {self.sql(expr)}")
        self._cur.execute(f"DROP TABLE IF EXISTS {name}")
        self._cur.execute(f"ALTER TABLE {staging} RENAME TO {name}")
        self._temps.add(name)
        return ibis.table(expr.schema(), name=name)

    def replace_table(self, table: str, expr: ir.Table) -> int:
        """Store `expr` as table `table`, replacing it (derived tables); return its row count."""
        self._cur.execute(f"CREATE OR REPLACE TABLE {table} AS {self.sql(expr)}")
        self._db.forget_schema(table)
        return int(self._cur.execute(f"SELECT count(*) FROM {table}").fetchone()[0])

    def insert(self, table: str, expr: ir.Table) -> int:
        """Insert the rows of `expr` into stored `table`, matching columns by name; return count."""
        columns = ", ".join(expr.columns)
        row = self._cur.execute(
            f"INSERT INTO {table} ({columns}) SELECT {columns} FROM ({self.sql(expr)})"
        ).fetchone()
        return int(row[0]) if row else 0

    def insert_rows(self, table: str, rows: Sequence[Mapping[str, Any]]) -> int:
        """Insert literal rows (dicts with the same keys) into stored `table`; return count."""
        if not rows:
            return 0
        columns = list(rows[0])
        placeholders = ", ".join("?" for _ in columns)
        self._cur.executemany(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders})",
            [[row[c] for c in columns] for row in rows],
        )
        return len(rows)

    def delete_where_in(self, table: str, column: str, values: ir.Table) -> int:
        """Delete rows of `table` whose `column` is among the one-column `values`; return count."""
        row = self._cur.execute(
            f"DELETE FROM {table} WHERE {column} IN (SELECT * FROM ({self.sql(values)}))"
        ).fetchone()
        return int(row[0]) if row else 0

    def delete_all(self, table: str) -> int:
        """Delete every row of stored `table`; return count."""
        row = self._cur.execute(f"DELETE FROM {table}").fetchone()
        return int(row[0]) if row else 0

    def update_where(self, table: str, values: Mapping[str, Any], column: str, equals: Any) -> int:
        """Set `values` on rows of `table` where `column` = `equals`; return count."""
        assignments = ", ".join(f"{name} = ?" for name in values)
        row = self._cur.execute(
            f"UPDATE {table} SET {assignments} WHERE {column} = ?", [*values.values(), equals]
        ).fetchone()
        return int(row[0]) if row else 0

    def read_state(self, name: str, default: int = 0) -> int:
        """Return a named integer kept in the store (watermarks, flags), or `default`."""
        row = self._cur.execute(
            "SELECT value FROM identity_state WHERE name = ?", [name]
        ).fetchone()
        return int(row[0]) if row else default

    def write_state(self, name: str, value: int) -> None:
        """Keep a named integer in the store."""
        self._cur.execute(
            "INSERT INTO identity_state VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = ?",
            [name, value, value],
        )

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Run the block in one transaction: all of it is committed, or none of it."""
        with self._db.transaction(self._cur):
            yield

    def close(self) -> None:
        """Drop this session's temp tables and close its cursor."""
        try:
            for name in self._temps:
                self._cur.execute(f"DROP TABLE IF EXISTS {name}")
        except Exception as exc:  # the cursor may already be unusable
            raise StoreError(f"could not clean up session: {exc}") from exc
        finally:
            self._cur.close()
