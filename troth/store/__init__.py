"""Storage: the DuckDB database, its schema, and the only code that runs queries."""

from troth.store.database import Database, open_database
from troth.store.session import Session

__all__ = ["Database", "Session", "open_database"]
