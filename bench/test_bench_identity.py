"""Identity resolution benchmark: a full run over 2M events, then incremental runs.

2M events over 700k identifiers (500k anonymous ids, 200k users); then 1,000 new events, which
an incremental run resolves by recomputing only the components they touch. Results are written
to bench/results/identity.md.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from troth.identity.runner import resolve_identities
from troth.store import open_database

RESULTS = Path(__file__).parent / "results"


@pytest.mark.bench
def test_identity_resolution_full_and_incremental(tmp_path: Path) -> None:
    db = open_database(tmp_path / "identity.duckdb")
    db.connection.execute(
        "INSERT INTO events (message_id, type, event, user_id, anonymous_id, timestamp, "
        "received_at) SELECT 'm' || i, 'track', 'Seen', CASE WHEN i % 3 = 0 THEN "
        "'u' || (i % 200000) END, 'a' || (i % 500000), now(), now() FROM range(2000000) t(i)"
    )
    started = time.perf_counter()
    full = resolve_identities(db)
    full_s = time.perf_counter() - started
    db.connection.execute(
        "INSERT INTO events (message_id, type, event, user_id, anonymous_id, timestamp, "
        "received_at) SELECT 'n' || i, 'track', 'Seen', 'u' || (i % 200000), 'b' || i, now(), "
        "now() FROM range(1000) t(i)"
    )
    started = time.perf_counter()
    incremental = resolve_identities(db)
    incremental_s = time.perf_counter() - started
    db.close()
    assert incremental.identifiers == full.identifiers + 1000
    lines = [
        "# Identity resolution",
        "",
        "| run | events read | identifiers after | customers | rounds | seconds |",
        "|---|---|---|---|---|---|",
        f"| full, first run | {full.events_read:,} | {full.identifiers:,} | {full.customers:,} | "
        f"{full.rounds} | {full_s:.2f} |",
        f"| incremental, 1,000 new events | {incremental.events_read:,} | "
        f"{incremental.identifiers:,} | {incremental.customers:,} | {incremental.rounds} | "
        f"{incremental_s:.2f} |",
    ]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "identity.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
