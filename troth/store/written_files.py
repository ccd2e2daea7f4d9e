"""The files Troth wrote that may hold personal data, so an erasure can find and scrub them.

Whatever writes such a file (an import's rejects, an export, a contact list) records it here
with a kind; an erasure reads the list, scrubs or deletes each file that still exists, and
forgets those that are gone.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from troth.errors import TrothError

if TYPE_CHECKING:
    from troth.store.database import Database

__all__ = [
    "NewFileError",
    "create_private_file",
    "forget_written_files",
    "record_written_file",
    "written_files",
]


class NewFileError(TrothError):
    """A file Troth was asked to write exists already or cannot be created."""


def create_private_file(path: Path) -> int:
    """Create `path` as a new file readable by its owner only; return its descriptor.

    Refuses an existing name (or a link planted there): O_EXCL never follows or overwrites.
    """
    target = path.expanduser()
    try:
        if target.exists() or target.is_symlink():
            raise NewFileError(f"{path} already exists; choose a new file name (nothing written)")
        if not target.parent.is_dir():
            raise NewFileError(f"cannot write {path}: folder {target.parent} does not exist")
        return os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:  # e.g. a name too long for the file system
        raise NewFileError(f"cannot write {path}: {exc.strerror}") from exc


def record_written_file(db: Database, path: str | Path, kind: str) -> str:
    """Record a file Troth wrote that may hold personal data; return its absolute path.

    `kind` says what it holds: `rejects`, `export` (one person), `contacts` and so on.
    """
    absolute = str(Path(path).expanduser().resolve())
    cur = db.cursor()
    try:
        cur.execute(
            "INSERT INTO written_files VALUES (?, ?, ?) "
            "ON CONFLICT (path) DO UPDATE SET kind = excluded.kind, "
            "written_at = excluded.written_at",
            [absolute, kind, datetime.now(UTC)],
        )
    finally:
        cur.close()
    return absolute


def written_files(db: Database) -> list[tuple[str, str]]:
    """Return (path, kind) of every recorded file, oldest first."""
    cur = db.cursor()
    try:
        return [
            (row[0], row[1])
            for row in cur.execute(
                "SELECT path, kind FROM written_files ORDER BY written_at, path"
            ).fetchall()
        ]
    finally:
        cur.close()


def forget_written_files(db: Database, paths: list[str]) -> int:
    """Remove files from the record (deleted, or no longer there); return how many."""
    if not paths:
        return 0
    cur = db.cursor()
    try:
        row = cur.execute(
            "DELETE FROM written_files WHERE path IN (SELECT unnest(?))", [paths]
        ).fetchone()
    finally:
        cur.close()
    return int(row[0]) if row else 0
