"""Identity resolution as Ibis expressions: identifiers are nodes, co-occurrences are links,
and each connected component is one customer.

A node is written `kind:value` (`user_id:42`, `anonymous_id:a-9f`, `email:ann@example.com`).
Links come from events carrying both a userId and an anonymousId, from `alias` calls (previousId
may name either kind, so it is linked as both), and, only where configured, from equal email or
phone traits. Components are found by min-label propagation: every node starts with its own
rank key and repeatedly takes the smallest key among its neighbours until nothing changes. The
rank key puts userIds first, so a customer's id comes from their smallest userId when they have
one and does not depend on the order events arrived in. The store runs these expressions.
"""

from __future__ import annotations

from collections.abc import Sequence

import ibis
import ibis.expr.types as ir

__all__ = [
    "NODE_KINDS",
    "customer_id_of",
    "event_node",
    "events_with_customer",
    "identity_links",
    "initial_labels",
    "link_end_nodes",
    "merge_node_dates",
    "merges_between",
    "node_key",
    "observed_nodes",
    "propagate_labels",
]

# Order = preference for naming a customer: userIds are the most stable identifiers.
NODE_KINDS = ("user_id", "email", "phone", "anonymous_id")
_RANK = {kind: str(i) for i, kind in enumerate(NODE_KINDS)}


def node_key(kind: str, value: ir.StringValue) -> ir.StringValue:
    """Return the node key `kind:value` of an identifier column."""
    return ibis.literal(f"{kind}:") + value


def _trait(events: ir.Table, name: str) -> ir.StringValue:
    """Return a trait from `traits` or `context.traits`, trimmed and lower-cased."""
    value = events.traits[name].str.coalesce(events.context["traits"][name].str)
    return value.strip().lower()


def _normalized_phone(value: ir.StringValue) -> ir.StringValue:
    """Return a phone number with only its digits and a leading +, so spacing does not matter."""
    return value.re_replace(r"[^0-9+]", "")


def event_node(events: ir.Table) -> ir.StringValue:
    """Return the node an event belongs to: its userId, else its anonymousId."""
    return events.user_id.isnull().ifelse(
        node_key("anonymous_id", events.anonymous_id), node_key("user_id", events.user_id)
    )


def _trait_nodes(events: ir.Table, merge_on: Sequence[str]) -> list[tuple[str, ir.StringValue]]:
    """Return (kind, node) of each trait that merges customers in this configuration."""
    out = []
    if "email" in merge_on:
        email = _trait(events, "email")
        out.append(("email", email.nullif("").isnull().ifelse(None, node_key("email", email))))
    if "phone" in merge_on:
        phone = _normalized_phone(_trait(events, "phone"))
        out.append(("phone", phone.nullif("").isnull().ifelse(None, node_key("phone", phone))))
    return out


def observed_nodes(events: ir.Table, merge_on: Sequence[str] = ()) -> ir.Table:
    """Return every identifier seen in `events`: node, kind, value, first_seen, last_seen."""
    parts = [
        events.filter(events.user_id.notnull()).select(
            kind=ibis.literal("user_id"), value=events.user_id, ts=events.timestamp
        ),
        events.filter(events.anonymous_id.notnull()).select(
            kind=ibis.literal("anonymous_id"), value=events.anonymous_id, ts=events.timestamp
        ),
    ]
    for kind, node in _trait_nodes(events, merge_on):
        with_node = events.mutate(_node=node)
        parts.append(
            with_node.filter(with_node._node.notnull()).select(
                kind=ibis.literal(kind),
                value=with_node._node.substr(len(kind) + 1),
                ts=with_node.timestamp,
            )
        )
    seen = ibis.union(*parts, distinct=False)
    return (
        seen.group_by(["kind", "value"])
        .agg(first_seen=seen.ts.min(), last_seen=seen.ts.max())
        .select(
            node=ibis._.kind + ":" + ibis._.value,
            kind=ibis._.kind,
            value=ibis._.value,
            first_seen=ibis._.first_seen,
            last_seen=ibis._.last_seen,
        )
    )


def identity_links(events: ir.Table, merge_on: Sequence[str] = ()) -> ir.Table:
    """Return the links events make between identifiers: a, b, reason, message_id, linked_at."""
    both = events.filter(events.user_id.notnull() & events.anonymous_id.notnull())
    parts = [
        both.select(
            a=node_key("user_id", both.user_id),
            b=node_key("anonymous_id", both.anonymous_id),
            reason=(both.type == "identify").ifelse("identify", "event"),
            message_id=both.message_id,
            linked_at=both.timestamp,
        )
    ]
    alias = events.filter((events.type == "alias") & events.previous_id.notnull())
    parts.extend(
        alias.select(
            a=node_key("user_id", alias.user_id),
            b=node_key(kind, alias.previous_id),
            reason=ibis.literal("alias"),
            message_id=alias.message_id,
            linked_at=alias.timestamp,
        )
        for kind in ("user_id", "anonymous_id")
    )
    for kind, node in _trait_nodes(events, merge_on):
        with_node = events.mutate(_node=node, _owner=event_node(events))
        with_node = with_node.filter(with_node._node.notnull())
        parts.append(
            with_node.select(
                a=with_node._owner,
                b=with_node._node,
                reason=ibis.literal(f"shared {kind}"),
                message_id=with_node.message_id,
                linked_at=with_node.timestamp,
            )
        )
    links = ibis.union(*parts, distinct=False)
    return links.filter(links.a != links.b)


def link_end_nodes(links: ir.Table) -> ir.Table:
    """Return the nodes at either end of `links`, shaped like observed_nodes with no dates.

    An alias previousId is linked as both a userId and an anonymousId; the kind never seen in
    an event has no dates, ranks last and is not shown as an identifier.
    """
    ends = ibis.union(links.select(node=links.a), links.select(node=links.b), distinct=True)
    return ends.select(
        node=ends.node,
        kind=ends.node.split(":")[0],
        value=ends.node.substr(ends.node.find(":") + 1),
        first_seen=ibis.null("timestamp('UTC')"),
        last_seen=ibis.null("timestamp('UTC')"),
    )


def merge_node_dates(*nodes: ir.Table) -> ir.Table:
    """Return one row per node with the earliest first_seen and latest last_seen of the inputs."""
    columns = ["node", "kind", "value", "first_seen", "last_seen"]
    every = ibis.union(*(n.select(columns) for n in nodes), distinct=False)
    return every.group_by(["node", "kind", "value"]).agg(
        first_seen=every.first_seen.min(), last_seen=every.last_seen.max()
    )


def initial_labels(nodes: ir.Table) -> ir.Table:
    """Return each node labelled with its own rank key (kind preference, then the node).

    Nodes never seen in an event (an alias previousId read as the other kind) rank last, so
    they never name a customer.
    """
    rank = nodes.first_seen.isnull().ifelse("9", nodes.kind.cases(*_RANK.items(), else_="8"))
    return nodes.select(node=nodes.node, label=rank + nodes.node)


def propagate_labels(labels: ir.Table, links: ir.Table) -> ir.Table:
    """Return labels after one step: each node takes the smallest label among itself and links."""
    pairs = ibis.union(
        links.select(src=links.a, dst=links.b),
        links.select(src=links.b, dst=links.a),
        distinct=False,
    )
    offered = pairs.join(labels, pairs.dst == labels.node).select(
        node=pairs.src, label=labels.label
    )
    every = ibis.union(labels, offered, distinct=False)
    return every.group_by("node").agg(label=every.label.min())


def customer_id_of(label: ir.StringValue) -> ir.StringValue:
    """Return the deterministic customer id (`c_` + 16 hex of SHA-256) of a component label."""
    return ibis.literal("c_") + label.hexdigest("sha256").substr(0, 16)


def merges_between(before: ir.Table, after: ir.Table) -> ir.Table:
    """Return customers whose identifiers moved: from_customer_id, into_customer_id, count."""
    old = before.select(node=before.node, from_customer_id=before.customer_id)
    new = after.select(node=after.node, into_customer_id=after.customer_id)
    pairs = old.join(new, "node")
    moved = pairs.filter(pairs.from_customer_id != pairs.into_customer_id)
    return moved.group_by(["from_customer_id", "into_customer_id"]).agg(
        identifiers_moved=moved.count()
    )


def events_with_customer(events: ir.Table, identifiers: ir.Table) -> ir.Table:
    """Return `events` with the resolved `customer_id` of each (unresolved events are dropped)."""
    keyed = events.mutate(_node=event_node(events))
    return keyed.join(
        identifiers.select(_node=identifiers.node, customer_id=identifiers.customer_id), "_node"
    ).drop("_node")
