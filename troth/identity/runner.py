"""Runs identity resolution against the store, incrementally, through a Session.

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

import ibis
import ibis.expr.types as ir

from troth.identity.resolution import (
    customer_id_of,
    identity_links,
    initial_labels,
    link_end_nodes,
    merge_node_dates,
    merges_between,
    observed_nodes,
    propagate_labels,
)
from troth.store import Database, Session

__all__ = ["ResolutionSummary", "identities_stale", "resolve_identities"]

# One run at a time per process: the server's background loop and a read may both ask.
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


@dataclass(frozen=True)
class ResolutionSummary:
    """What one run did: events read, links added, identifiers and customers now, merges."""

    events_read: int
    links_added: int
    identifiers: int
    customers: int
    merges: int
    rounds: int


def _merge_flags(merge_on: Sequence[str]) -> int:
    """Return the merge configuration as bit flags, to notice when it changes."""
    return (1 if "email" in merge_on else 0) | (2 if "phone" in merge_on else 0)


def _newest_seq(session: Session) -> int:
    events = session.table("events")
    return int(session.scalar(events.seq.max().coalesce(0)))


def identities_stale(db: Database) -> bool:
    """Return True when events exist that identity resolution has not read yet."""
    with db.session() as session:
        return _newest_seq(session) > session.read_state("resolved_seq")


def resolve_identities(db: Database, merge_on: Sequence[str] = ()) -> ResolutionSummary:
    """Bring the identifier graph and customer assignment up to date; return what changed."""
    with _lock, db.session() as session:
        return _resolve(session, merge_on)


def _counts(session: Session) -> tuple[int, int]:
    """Return (identifiers, customers) now stored."""
    ids = session.table("identifiers")
    row = session.fetch(ids.aggregate(n=ids.count(), c=ids.customer_id.nunique()))[0]
    return int(row[0]), int(row[1])


def _resolve(session: Session, merge_on: Sequence[str]) -> ResolutionSummary:
    flags = _merge_flags(merge_on)
    rebuild = session.read_state("merge_flags", -1) not in (-1, flags)
    watermark = 0 if rebuild else session.read_state("resolved_seq")
    newest = _newest_seq(session)
    if newest <= watermark and not rebuild:
        return ResolutionSummary(0, 0, *_counts(session), 0, 0)

    events = session.table("events")
    links = session.table("identity_links")
    identifiers = session.table("identifiers")
    # The window comes from a temp table, so the expressions (and their compiled SQL) repeat.
    window = session.materialize_row("_window", {"after": watermark, "upto": newest})
    fresh = events.filter(
        (events.seq > window.after.max().as_scalar())
        & (events.seq <= window.upto.max().as_scalar())
    )
    read = int(session.scalar(fresh.count()))

    fresh_links = session.materialize("_fresh_links", _distinct_links(fresh, merge_on))
    known_links = links.filter(ibis.literal(False)) if rebuild else links
    new_links = session.materialize(
        "_new_links", fresh_links.anti_join(known_links, ["a", "b", "reason"])
    )
    fresh_nodes = session.materialize(
        "_fresh_nodes",
        merge_node_dates(
            observed_nodes(fresh, merge_on).cast(_NODE_SCHEMA),
            link_end_nodes(fresh_links).cast(_NODE_SCHEMA),
        ),
    )
    # The customers whose components the fresh events can change; a rebuild touches everyone.
    touched = identifiers if rebuild else identifiers.semi_join(fresh_nodes, "node")
    touched_customers = session.materialize(
        "_touched_customers", touched.select("customer_id").distinct()
    )
    previous = session.materialize(
        "_previous", identifiers.semi_join(touched_customers, "customer_id")
    )
    base = previous.filter(ibis.literal(False)) if rebuild else previous
    nodes = session.materialize("_nodes", merge_node_dates(base.cast(_NODE_SCHEMA), fresh_nodes))
    every_link = ibis.union(known_links.select("a", "b"), new_links.select("a", "b"))
    graph = session.materialize("_graph", every_link.semi_join(nodes, every_link.a == nodes.node))
    labels, rounds = _components(session, nodes, graph)
    assigned = session.materialize(
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
    merges = _merges_with_reasons(previous, assigned, new_links)
    with session.transaction():
        if rebuild:
            session.delete_all("identity_links")
            session.delete_all("identifiers")
        else:
            session.delete_where_in("identifiers", "customer_id", touched_customers)
        session.insert("identity_links", new_links)
        merge_count = session.insert("identity_merges", merges)
        session.insert("identifiers", assigned)
        session.write_state("resolved_seq", newest)
        session.write_state("merge_flags", flags)
    added = int(session.scalar(new_links.count()))
    return ResolutionSummary(read, added, *_counts(session), merge_count, rounds)


def _components(session: Session, nodes: ir.Table, graph: ir.Table) -> tuple[ir.Table, int]:
    """Return the fixed point of label propagation over `graph`, and the rounds it took."""
    labels = session.materialize("_labels", initial_labels(nodes))
    step = propagate_labels(labels, graph)
    for rounds in range(1, _MAX_ROUNDS + 1):
        session.materialize("_labels_next", step)
        following = ibis.table(labels.schema(), name="_labels_next")
        moved = following.join(labels, "node").filter(following.label != labels.label)
        changed = int(session.scalar(moved.count()))
        session.replace("_labels", following)
        if not changed:
            return labels, rounds
    return labels, _MAX_ROUNDS


def _merges_with_reasons(previous: ir.Table, assigned: ir.Table, new_links: ir.Table) -> ir.Table:
    """Return identity_merges rows: customers absorbed now, with the kinds of link that did it."""
    linked = new_links.join(assigned, new_links.a == assigned.node)
    reasons = (
        linked.select(customer_id=linked.customer_id, reason=linked.reason)
        .distinct()
        .group_by("customer_id")
        .agg(reasons=ibis._.reason.group_concat(", ", order_by=ibis._.reason))
    )
    merges = merges_between(previous, assigned)
    joined = merges.left_join(reasons, merges.into_customer_id == reasons.customer_id)
    return joined.select(
        merged_at=ibis.now().cast("timestamp('UTC')"),
        from_customer_id=joined.from_customer_id,
        into_customer_id=joined.into_customer_id,
        identifiers_moved=joined.identifiers_moved,
        reasons=joined.reasons,
    )


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
