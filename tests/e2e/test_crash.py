"""Kill -9 during sustained load: every acknowledged event survives; re-sent batches land once."""

from __future__ import annotations

import threading
import time

import duckdb
import httpx

from tests.e2e.harness import Server, free_port

THREADS = 8
BATCH = 100


def _batch(thread: int, n: int) -> list[dict]:
    return [
        {
            "type": "track",
            "event": "Product Viewed",
            "userId": f"u{thread}-{n % 50}",
            "messageId": f"crash-{thread}-{n}-{i}",
            "properties": {"sku": f"s{i}"},
        }
        for i in range(BATCH)
    ]


def _load(url: str, key: str, thread: int, stop: threading.Event, outcome: dict) -> None:
    with httpx.Client(auth=(key, ""), timeout=10) as client:
        n = 0
        while not stop.is_set() and n < 10_000:
            batch = _batch(thread, n)
            try:
                answer = client.post(f"{url}/v1/batch", json={"batch": batch})
                outcome[(thread, n)] = answer.status_code
            except httpx.HTTPError:
                outcome[(thread, n)] = None  # no answer: the client must re-send
                return
            n += 1


def _stored(db_path) -> list[str]:
    con = duckdb.connect(str(db_path))
    try:
        return [r[0] for r in con.execute("SELECT message_id FROM events").fetchall()]
    finally:
        con.close()


def test_kill_9_loses_no_acknowledged_event_and_resends_land_once(db_path, write_key) -> None:
    server = Server(db_path, free_port())
    server.start()
    stop = threading.Event()
    outcome: dict = {}
    threads = [
        threading.Thread(target=_load, args=(server.url, write_key, t, stop, outcome))
        for t in range(THREADS)
    ]
    for thread in threads:
        thread.start()
    time.sleep(3)
    server.kill()
    stop.set()
    for thread in threads:
        thread.join(timeout=30)

    acked = [key for key, status in outcome.items() if status == 200]
    unanswered = [key for key, status in outcome.items() if status is None]
    assert len(acked) > 20, "the load did not get going before the kill"
    assert all(status in (200, None) for status in outcome.values()), outcome

    server.start()  # recovery replays DuckDB's write-ahead log
    server.stop()
    stored = set(_stored(db_path))
    missing = [k for k in acked for e in _batch(*k) if e["messageId"] not in stored]
    assert missing == [], f"{len(missing)} acknowledged batches lost"

    server.start()
    with httpx.Client(auth=(write_key, ""), timeout=30) as client:
        for key in unanswered + acked[:10]:  # unanswered, and some answered ones again
            answer = client.post(f"{server.url}/v1/batch", json={"batch": _batch(*key)})
            assert answer.status_code == 200
    server.stop()
    ids = _stored(db_path)
    assert len(ids) == len(set(ids)), "an event was stored twice"
    sent = {e["messageId"] for k in acked + unanswered for e in _batch(*k)}
    assert sent <= set(ids)
