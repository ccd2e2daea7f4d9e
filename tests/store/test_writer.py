"""The group-commit writer: answers after commit, bounded queue, failures reported not lost."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest

from troth.errors import OverloadedError
from troth.events.schema import reject_row
from troth.store import Database
from troth.store.writer import CommitResult, GroupCommitWriter

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def row(message_id: str) -> tuple:
    return (
        message_id,
        "track",
        "Seen",
        None,
        "u1",
        None,
        None,
        None,
        NOW,
        None,
        None,
        NOW,
        None,
        "src",
        None,
        None,
        None,
        None,
    )


def count(db: Database, table: str = "events") -> int:
    return db.cursor().execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def test_callbacks_run_after_the_rows_are_committed(db: Database) -> None:
    writer = GroupCommitWriter(db).start()
    seen: list[int] = []
    done = threading.Event()

    def callback(result: CommitResult) -> None:
        seen.append(count(db))  # a fresh cursor sees the committed rows
        done.set()

    writer.submit([row("a"), row("b")], [reject_row("t", "x", "userId", "bad", "{}")], callback)
    assert done.wait(10)
    writer.stop()
    assert seen == [2]
    assert count(db, "rejects") == 1


def test_concurrent_submissions_are_grouped_and_all_answered(db: Database) -> None:
    writer = GroupCommitWriter(db).start()
    results: list[CommitResult] = []
    lock = threading.Lock()

    def callback(result: CommitResult) -> None:
        with lock:
            results.append(result)

    for n in range(200):
        writer.submit([row(f"m{n}-{i}") for i in range(10)], [], callback)
    writer.stop()
    assert len(results) == 200
    assert all(r.error is None and r.accepted == 10 for r in results)
    assert count(db) == 2000
    assert writer.commits < 200  # requests shared transactions


def test_a_full_queue_refuses_with_retry_after(db: Database) -> None:
    writer = GroupCommitWriter(db, max_queued_events=1000, retry_after_s=3)  # not started
    writer.submit([row(f"q{i}") for i in range(800)], [], lambda r: None)
    with pytest.raises(OverloadedError) as info:
        writer.submit([row(f"r{i}") for i in range(300)], [], lambda r: None)
    assert info.value.retry_after == 3
    writer.start()
    writer.stop()
    assert count(db) == 800


def test_a_failed_commit_is_reported_to_every_request(db: Database) -> None:
    writer = GroupCommitWriter(db).start()
    results: list[CommitResult] = []
    done = threading.Event()
    bad = (*row("x")[:8], "not a time", *row("x")[9:])

    def callback(result: CommitResult) -> None:
        results.append(result)
        done.set()

    writer.submit([bad], [], callback)
    assert done.wait(10)
    writer.stop()
    assert results[0].error is not None
    assert count(db) == 0


def test_a_dead_writer_refuses_at_once_instead_of_leaving_requests_waiting(db: Database) -> None:
    def broken_listener(inserted: int) -> None:
        raise RuntimeError("listener bug")

    writer = GroupCommitWriter(db, on_commit=broken_listener).start()
    done = threading.Event()
    writer.submit([row("a")], [], lambda r: done.set())
    assert done.wait(10)  # the listener's failure did not stop the answer
    writer.submit([row("b")], [], lambda r: None)
    writer.stop()
    from troth.errors import StoreError

    with pytest.raises(StoreError, match="not running"):
        writer.submit([row("c")], [], lambda r: None)
