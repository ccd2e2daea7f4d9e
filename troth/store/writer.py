"""The single writer: a bounded queue drained by one thread that commits events in groups.

DuckDB allows one writer, and a commit costs about the same for ten events as for ten thousand,
so concurrent requests are queued and written together; each request is answered only after the
transaction holding its events has committed.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from troth.errors import OverloadedError, StoreError
from troth.events.schema import EVENT_SCHEMA, REJECT_SCHEMA, rows_to_table
from troth.store.database import Database
from troth.store.tombstones import lift_tombstones, tombstone_filter

__all__ = ["CommitResult", "GroupCommitWriter"]

log = logging.getLogger(__name__)

Callback = Callable[["CommitResult"], None]


@dataclass(frozen=True)
class CommitResult:
    """What became of one request's events: how many were committed, or what stopped them."""

    accepted: int
    error: Exception | None = None


@dataclass
class _Request:
    rows: Sequence[tuple]
    rejects: Sequence[tuple]
    callback: Callback
    inserted: int = 0
    message_ids: list[str] = field(default_factory=list)


_STOP = object()


class GroupCommitWriter:
    """Owns the write cursor; `submit` queues rows, the thread commits them in groups."""

    def __init__(
        self,
        db: Database,
        *,
        max_queued_events: int = 200_000,
        max_group_events: int = 20_000,
        retry_after_s: int = 1,
        on_commit: Callable[[int], None] | None = None,
    ) -> None:
        self._db = db
        self._cursor = db.cursor()
        self._generation = db.generation
        # Held while a group commits; `paused` takes it so the database file can be swapped.
        self._commit_lock = threading.Lock()
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._max_queued = max_queued_events
        self._max_group = max_group_events
        self._retry_after = retry_after_s
        self._on_commit = on_commit
        self._queued = 0
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="troth-writer", daemon=True)
        self._stopped = False
        self.commits = 0
        self.events_written = 0
        self.events_suppressed = 0

    def start(self) -> GroupCommitWriter:
        """Start the writer thread; return self."""
        self._thread.start()
        return self

    @property
    def queued_events(self) -> int:
        """Return the number of events waiting for a commit."""
        return self._queued

    def submit(self, rows: Sequence[tuple], rejects: Sequence[tuple], callback: Callback) -> None:
        """Queue rows (EVENT_SCHEMA tuples) and rejects; `callback` runs after the commit.

        Raises OverloadedError when the queue holds too many events, so memory stays bounded.
        """
        size = len(rows) + len(rejects)
        with self._lock:
            died = self._thread.ident is not None and not self._thread.is_alive()
            if self._stopped or died:
                raise StoreError("the writer is not running; the server is shutting down")
            if self._queued + size > self._max_queued and self._queued > 0:
                raise OverloadedError(
                    f"{self._queued} events are waiting to be written; retry shortly",
                    retry_after=self._retry_after,
                )
            self._queued += size
            # Put while holding the lock, so no request can land behind the stop marker.
            self._queue.put(_Request(rows, rejects, callback))

    def stop(self, timeout: float = 30.0) -> None:
        """Write what is queued, then stop the thread."""
        with self._lock:
            self._stopped = True
            self._queue.put(_STOP)
        if self._thread.ident is not None:
            self._thread.join(timeout)

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Hold off commits for the block (requests keep queueing); the cursor is renewed after."""
        with self._commit_lock:
            yield

    def _take_group(self, first: _Request) -> tuple[list[_Request], bool]:
        """Return the requests to commit together, and whether a stop was asked for."""
        group = [first]
        size = len(first.rows)
        while size < self._max_group:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is _STOP:
                return group, True
            group.append(item)
            size += len(item.rows)
        return group, False

    def _run(self) -> None:
        stop = False
        while not stop:
            item = self._queue.get()
            if item is _STOP:
                break
            group, stop = self._take_group(item)
            with self._commit_lock:
                if self._generation != self._db.generation:  # the file was rewritten
                    self._cursor = self._db.cursor()
                    self._generation = self._db.generation
                self._commit(group)

    def _commit(self, group: list[_Request]) -> None:
        rows = [row for request in group for row in request.rows]
        rejects = [row for request in group for row in request.rejects]
        error: Exception | None = None
        inserted = suppressed = 0
        lifted: set[str] = set()
        try:
            tombstones = tombstone_filter(self._db, self._cursor)
            if tombstones is not None:  # erased people's late events are neither stored nor kept
                rows, suppressed, lifted = tombstones.split(rows)
                rejects = [r for r in rejects if not tombstones.suppresses_payload(r[-1])]
            if lifted:
                with self._db.transaction(self._cursor) as cur:
                    inserted = self._db.insert_events(rows_to_table(rows, EVENT_SCHEMA), cur)
                    self._db.insert_rejects(rows_to_table(rejects, REJECT_SCHEMA), cur)
                    lift_tombstones(self._db, cur, lifted)
            elif not rejects:
                # One statement commits on its own: BEGIN and COMMIT would cost two more trips.
                inserted = self._db.insert_events(
                    rows_to_table(_first_of_each(rows), EVENT_SCHEMA),
                    self._cursor,
                    expect_new=True,
                )
            else:
                with self._db.transaction(self._cursor) as cur:
                    if rows:
                        inserted = self._db.insert_events(rows_to_table(rows, EVENT_SCHEMA), cur)
                    self._db.insert_rejects(rows_to_table(rejects, REJECT_SCHEMA), cur)
        except Exception as exc:  # the requests must be answered whatever went wrong
            log.exception("group commit of %d events failed", len(rows))
            error = StoreError(f"events could not be stored: {exc}")
        size = sum(len(request.rows) + len(request.rejects) for request in group)
        with self._lock:
            self._queued -= size
        if error is None:
            self.commits += 1
            self.events_written += inserted
            self.events_suppressed += suppressed
            if self._on_commit is not None:
                try:
                    self._on_commit(inserted)
                except Exception:  # a listener must not stop the writer
                    log.exception("on_commit listener failed")
        for request in group:
            try:
                request.callback(CommitResult(len(request.rows), error))
            except Exception:
                log.exception("commit callback failed")


def _first_of_each(rows: list[tuple]) -> list[tuple]:
    """Return the rows with each messageId once (a retry may share a group with the original)."""
    seen: set[str] = set()
    unique = []
    for row in rows:
        if row[0] not in seen:
            seen.add(row[0])
            unique.append(row)
    return unique
