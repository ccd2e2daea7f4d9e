"""Runs identity resolution (troth.identity) against the database, incrementally.

Each run reads the events stored since the last one (by `seq`, which the single writer assigns
in commit order), adds their links and identifiers, and recomputes only the components they
touch: the customers owning any identifier seen in the new events, plus the new identifiers.
The new assignment of those nodes replaces the old one in one transaction, with every merge
recorded. A change of the merge rules rebuilds the whole graph from every event.
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
    link_end_nodes,
    merge_node_dates,
    merges_between,
    observed_nodes,
    propagate_labels,
)
from troth.store.database import Database

__all__ = ["ResolutionSummary", "identities_stale", "resolve_identities"]

_lock = threading.Lock()
_MAX_ROUNDS = 1000
_NODE_SCHEMA = ibis.schema(
    {
        "node": "string",
        "kind": "string",
        "value": "string",
        "first_seen": "timestamp('UTC')",
        "last_seen": "timestamp('UTC')",
    }
)
_TEMP_TABLES = (
    "_fresh_links",
    "_new_links",
    "_fresh_nodes",
    "_touched_customers",
    "_previous",
    "_nodes",
    "_graph",
    "_labels",
    "_labels_next",
    "_assigned",
)


@dataclass(frozen=True)
class ResolutionSummary:
    """What one run did: events read, links added, identifiers and customers now, merges."""

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


def _newest_seq(cur) -> int:
    return int(cur.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0])


def identities_stale(db: Database) -> bool:
    """Return True when events exist that identity resolution has not read yet."""
    cur = db.cursor()
    return _newest_seq(cur) > _state(cur, "resolved_seq")


def resolve_identities(db: Database, merge_on: Sequence[str] = ()) -> ResolutionSummary:
    """Bring the identifier graph and customer assignment up to date; return what changed."""
    with _lock:
        cur = db.cursor()
        try:
            return _resolve(db, cur, merge_on)
        finally:
            for temp in _TEMP_TABLES:
                cur.execute(f"DROP TABLE IF EXISTS {temp}")
            cur.close()


def _sql(expr: ir.Expr) -> str:
    return ibis.to_sql(expr, dialect="duckdb")


def _materialize(cur, name: str, expr: ir.Table) -> ir.Table:
    """Run `expr` into temp table `name`; return an unbound table over it."""
    cur.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {_sql(expr)}")
    return ibis.table(expr.schema(), name=name)


def _resolve(db: Database, cur, merge_on: Sequence[str]) -> ResolutionSummary:
    flags = _merge_flags(merge_on)
    stored_flags = _state(cur, "merge_flags", -1)
    rebuild = stored_flags not in (-1, flags)
    watermark = 0 if rebuild else _state(cur, "resolved_seq")
    newest = _newest_seq(cur)
    if newest <= watermark and not rebuild:
        identifiers, customers = cur.execute(
            "SELECT count(*), count(DISTINCT customer_id) FROM identifiers"
        ).fetchone()
        return ResolutionSummary(0, 0, identifiers, customers, 0, 0)

    events = db.unbound_table("events")
    links = db.unbound_table("identity_links")
    identifiers = db.unbound_table("identifiers")
    fresh = events.filter((events.seq > watermark) & (events.seq <= newest))
    read = cur.execute(f"SELECT count(*) FROM ({_sql(fresh)})").fetchone()[0]

    fresh_links = _materialize(cur, "_fresh_links", _distinct_links(fresh, merge_on))
    known_links = links.filter(ibis.literal(False)) if rebuild else links
    new_links = _materialize(
        cur, "_new_links", fresh_links.anti_join(known_links, ["a", "b", "reason"])
    )
    fresh_nodes = _materialize(
        cur,
        "_fresh_nodes",
        merge_node_dates(
            observed_nodes(fresh, merge_on).cast(_NODE_SCHEMA),
            link_end_nodes(fresh_links).cast(_NODE_SCHEMA),
        ),
    )
    # The customers whose components the fresh events can change; a rebuild touches everyone.
    touched = identifiers if rebuild else identifiers.semi_join(fresh_nodes, "node")
    touched_customers = _materialize(
        cur, "_touched_customers", touched.select("customer_id").distinct()
    )
    previous = _materialize(
        cur, "_previous", identifiers.semi_join(touched_customers, "customer_id")
    )
    base = previous.filter(ibis.literal(False)) if rebuild else previous
    nodes = _materialize(cur, "_nodes", merge_node_dates(base.cast(_NODE_SCHEMA), fresh_nodes))
    every_link = ibis.union(known_links.select("a", "b"), new_links.select("a", "b"))
    graph = _materialize(cur, "_graph", every_link.semi_join(nodes, every_link.a == nodes.node))

    labels = _materialize(cur, "_labels", initial_labels(nodes))
    step = _sql(propagate_labels(labels, graph))
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

    assigned = _materialize(
        cur,
        "_assigned",
        nodes.join(labels, "node").select(
            node=nodes.node,
            kind=nodes.kind,
            value=nodes.value,
            customer_id=customer_id_of(labels.label),
            first_seen=nodes.first_seen,
            last_seen=nodes.last_seen,
        ),
    )
    merges = merges_between(previous, assigned)
    with db.transaction(cur):
        if rebuild:
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
            [datetime.now(UTC)],
        ).fetchone()[0]
        if rebuild:
            cur.execute("DELETE FROM identifiers")
        else:
            cur.execute(
                "DELETE FROM identifiers WHERE customer_id IN "
                "(SELECT customer_id FROM _touched_customers)"
            )
        cur.execute(
            "INSERT INTO identifiers (node, kind, value, customer_id, first_seen, last_seen) "
            "SELECT node, kind, value, customer_id, first_seen, last_seen FROM _assigned"
        )
        _set_state(cur, "resolved_seq", newest)
        _set_state(cur, "merge_flags", flags)
    added, total, customers = cur.execute(
        "SELECT (SELECT count(*) FROM _new_links), count(*), count(DISTINCT customer_id) "
        "FROM identifiers"
    ).fetchone()
    return ResolutionSummary(read, added, total, customers, int(merge_count), rounds)


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
