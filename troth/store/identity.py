"""Runs identity resolution (troth.identity) against the database, incrementally.

New events since the last run (by `seq`, which the single writer assigns in commit order) add
their links and identifiers; components are then recomputed over the whole identifier graph —
far smaller than the event log — and the customer assignment is swapped in one transaction,
with every merge recorded.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import ibis
import ibis.expr.types as ir

from troth.identity import (
    customer_id_of,
    identity_links,
    initial_labels,
    merges_between,
    observed_nodes,
    propagate_labels,
)
from troth.store.database import Database

__all__ = ["ResolutionSummary", "identities_stale", "resolve_identities"]

_lock = threading.Lock()
_MAX_ROUNDS = 200


@dataclass(frozen=True)
class ResolutionSummary:
    """What one resolution did: events read, links added, customers now, merges recorded."""

    events_read: int
    links_added: int
    identifiers: int
    customers: int
    merges: int
    rounds: int


def _state(cur, name: str, default: int = 0) -> int:
    row = cur.execute("SELECT value FROM identity_state WHERE name = ?", [name]).fetchone()
    return int(row[0]) if row else default


def _set_state(cur, name: str, value: int) -> None:
    cur.execute(
        "INSERT INTO identity_state VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = ?",
        [name, value, value],
    )


def _merge_flags(merge_on: Sequence[str]) -> int:
    """Return the merge configuration as bit flags, to notice when it changes."""
    return (1 if "email" in merge_on else 0) | (2 if "phone" in merge_on else 0)


def identities_stale(db: Database) -> bool:
    """Return True when events exist that identity resolution has not read yet."""
    cur = db.cursor()
    newest = cur.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0]
    return int(newest) > _state(cur, "resolved_seq")


def _sql(expr: ir.Expr) -> str:
    return ibis.to_sql(expr, dialect="duckdb")


def _unbound(db: Database, name: str, source: str | None = None) -> ir.Table:
    """Return an unbound Ibis table over a stored table (see Database.unbound_table)."""
    return db.unbound_table(name, source)


def resolve_identities(db: Database, merge_on: Sequence[str] = ()) -> ResolutionSummary:
    """Bring the identifier graph and customer assignment up to date; return what changed."""
    with _lock:
        return _resolve(db, merge_on)


def _resolve(db: Database, merge_on: Sequence[str]) -> ResolutionSummary:
    cur = db.cursor()
    flags = _merge_flags(merge_on)
    watermark = _state(cur, "resolved_seq")
    if _state(cur, "merge_flags", -1) not in (-1, flags):
        watermark = 0  # the merge rules changed: rebuild the graph from every event
    newest = int(cur.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0])
    if newest <= watermark and _state(cur, "merge_flags", -1) == flags:
        count = cur.execute("SELECT count(*), count(DISTINCT customer_id) FROM identifiers")
        identifiers, customers = count.fetchone()
        return ResolutionSummary(0, 0, identifiers, customers, 0, 0)

    events = _unbound(db, "events")
    fresh = events.filter((events.seq > watermark) & (events.seq <= newest))
    cur.execute(
        f"CREATE OR REPLACE TEMP TABLE _fresh_links AS {_sql(_distinct_links(fresh, merge_on))}"
    )
    links = _unbound(db, "identity_links")
    fresh_links = ibis.table(links.schema(), name="_fresh_links")
    known = links if watermark else links.filter(ibis.literal(False))
    new_links = fresh_links.anti_join(known, ["a", "b", "reason"])
    cur.execute(f"CREATE OR REPLACE TEMP TABLE _new_links AS {_sql(new_links)}")

    previous = _unbound(db, "identifiers")
    if not watermark:
        previous = previous.filter(ibis.literal(False))
    nodes = _all_nodes(previous, observed_nodes(fresh, merge_on), fresh_links, links, watermark)
    cur.execute(f"CREATE OR REPLACE TEMP TABLE _nodes AS {_sql(nodes)}")
    nodes_t = ibis.table(nodes.schema(), name="_nodes")
    graph = (
        ibis.union(links.select("a", "b"), fresh_links.select("a", "b"), distinct=True)
        if watermark
        else fresh_links.select("a", "b").distinct()
    )
    cur.execute(f"CREATE OR REPLACE TEMP TABLE _graph AS {_sql(graph)}")
    graph_t = ibis.table(graph.schema(), name="_graph")

    cur.execute(f"CREATE OR REPLACE TEMP TABLE _labels AS {_sql(initial_labels(nodes_t))}")
    labels_t = ibis.table({"node": "string", "label": "string"}, name="_labels")
    step = _sql(propagate_labels(labels_t, graph_t))
    rounds = 0
    while rounds < _MAX_ROUNDS:
        rounds += 1
        cur.execute(f"CREATE OR REPLACE TEMP TABLE _labels_next AS {step}")
        changed = cur.execute(
            "SELECT count(*) FROM _labels_next n JOIN _labels o USING (node) "
            "WHERE n.label <> o.label"
        ).fetchone()[0]
        cur.execute("DROP TABLE _labels")
        cur.execute("ALTER TABLE _labels_next RENAME TO _labels")
        if not changed:
            break

    assigned = nodes_t.join(labels_t, "node").select(
        node=nodes_t.node,
        kind=nodes_t.kind,
        value=nodes_t.value,
        customer_id=customer_id_of(labels_t.label),
        first_seen=nodes_t.first_seen,
        last_seen=nodes_t.last_seen,
    )
    cur.execute(f"CREATE OR REPLACE TEMP TABLE _assigned AS {_sql(assigned)}")
    assigned_t = ibis.table(assigned.schema(), name="_assigned")
    merges = merges_between(_unbound(db, "identifiers"), assigned_t)
    now = datetime.now(UTC)
    with db.transaction(cur):
        if not watermark:
            cur.execute("DELETE FROM identity_links")
        cur.execute(
            "INSERT INTO identity_links SELECT a, b, reason, message_id, linked_at FROM _new_links"
        )
        merge_count = cur.execute(
            "INSERT INTO identity_merges SELECT ?, m.from_customer_id, m.into_customer_id, "
            "m.identifiers_moved, r.reasons FROM (" + _sql(merges) + ") m LEFT JOIN ("
            "SELECT i.customer_id, string_agg(DISTINCT l.reason, ', ' ORDER BY l.reason) "
            "AS reasons FROM _new_links l JOIN _assigned i ON l.a = i.node "
            "GROUP BY i.customer_id) r ON r.customer_id = m.into_customer_id",
            [now],
        ).fetchone()[0]
        cur.execute("DELETE FROM identifiers")
        cur.execute(
            "INSERT INTO identifiers (node, kind, value, customer_id, first_seen, last_seen) "
            "SELECT node, kind, value, customer_id, first_seen, last_seen FROM _assigned"
        )
        _set_state(cur, "resolved_seq", newest)
        _set_state(cur, "merge_flags", flags)
    counts = cur.execute(
        "SELECT (SELECT count(*) FROM _new_links), count(*), count(DISTINCT customer_id) "
        "FROM _assigned"
    ).fetchone()
    read = cur.execute(f"SELECT count(*) FROM ({_sql(fresh)})").fetchone()[0]
    for temp in ("_fresh_links", "_new_links", "_nodes", "_graph", "_labels", "_assigned"):
        cur.execute(f"DROP TABLE IF EXISTS {temp}")
    return ResolutionSummary(read, counts[0], counts[1], counts[2], int(merge_count), rounds)


def _distinct_links(events: ir.Table, merge_on: Sequence[str]) -> ir.Table:
    """Return each link once, with the first event that made it."""
    links = identity_links(events, merge_on)
    return (
        links.group_by(["a", "b", "reason"])
        .agg(
            message_id=links.message_id.argmin(links.linked_at),
            linked_at=links.linked_at.min(),
        )
        .select("a", "b", "reason", "message_id", "linked_at")
    )


def _all_nodes(
    previous: ir.Table, fresh: ir.Table, fresh_links: ir.Table, links: ir.Table, watermark: int
) -> ir.Table:
    """Return every node: known identifiers, newly seen ones, and link ends never seen in events."""
    cols = ["node", "kind", "value", "first_seen", "last_seen"]
    ends = ibis.union(
        fresh_links.select(node=fresh_links.a),
        fresh_links.select(node=fresh_links.b),
        *([links.select(node=links.a), links.select(node=links.b)] if watermark else []),
        distinct=True,
    )
    unseen = ends.select(
        node=ends.node,
        kind=ends.node.split(":")[0],
        value=ends.node.substr(ends.node.find(":") + 1),
        first_seen=ibis.null("timestamp('UTC')"),
        last_seen=ibis.null("timestamp('UTC')"),
    )
    every = ibis.union(
        previous.select(cols),
        fresh.select(cols).cast(previous.select(cols).schema()),
        unseen.cast(previous.select(cols).schema()),
        distinct=False,
    )
    return every.group_by(["node", "kind", "value"]).agg(
        first_seen=every.first_seen.min(), last_seen=every.last_seen.max()
    )
