"""Identity: the graph of identifiers and its resolution into customers (DESIGN §3)."""

from troth.identity.resolution import (
    NODE_KINDS,
    customer_id_of,
    events_with_customer,
    identity_links,
    initial_labels,
    link_end_nodes,
    merge_node_dates,
    merges_between,
    node_key,
    observed_nodes,
    propagate_labels,
)

__all__ = [
    "NODE_KINDS",
    "customer_id_of",
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
