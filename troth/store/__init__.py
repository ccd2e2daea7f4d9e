"""Storage: the DuckDB database, its schema, and the only code that runs queries."""

from troth.store.database import Database, open_database

__all__ = ["Database", "open_database"]
