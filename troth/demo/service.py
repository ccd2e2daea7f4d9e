"""Customer service: tickets and their resolution, live chat, inbound calls."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from troth.demo.cohort import Cohort, Occurrences
from troth.demo.events import Piece
from troth.demo.jsontext import boolean, integer, json_object, pick, quoted
from troth.demo.period import DAY, MINUTE
from troth.demo.population import by_typology
from troth.demo.vocabulary import RESOLUTIONS, TICKET_TOPICS

__all__ = ["serve"]

_TICKETS = by_typology(  # per month, from the first interaction until dropout
    deal_seeker=0.08,
    loyal_fan=0.1,
    quietly_retained=0.05,
    unhappy_complainer=0.9,
    vocal_advocate=0.1,
    browser=0.03,
    lapsed=0.2,
)
_RESOLVED = by_typology(
    deal_seeker=0.9,
    loyal_fan=0.95,
    quietly_retained=0.95,
    unhappy_complainer=0.55,
    vocal_advocate=0.95,
    browser=0.9,
    lapsed=0.8,
)
_FIRST_CONTACT = by_typology(
    deal_seeker=0.7,
    loyal_fan=0.75,
    quietly_retained=0.8,
    unhappy_complainer=0.2,
    vocal_advocate=0.75,
    browser=0.7,
    lapsed=0.5,
)
_RESOLUTION_DAYS = by_typology(
    deal_seeker=1,
    loyal_fan=1,
    quietly_retained=1,
    unhappy_complainer=4,
    vocal_advocate=1,
    browser=1,
    lapsed=2,
)
_CHATS = by_typology(
    deal_seeker=0.3,
    loyal_fan=0.3,
    quietly_retained=0.1,
    unhappy_complainer=1.5,
    vocal_advocate=0.4,
    browser=0.2,
    lapsed=0.4,
)
_INBOUND_CALLS = by_typology(
    deal_seeker=0.05,
    loyal_fan=0.05,
    quietly_retained=0.03,
    unhappy_complainer=0.4,
    vocal_advocate=0.05,
    browser=0.02,
    lapsed=0.1,
)


def _reference(cohort: Cohort, prefix: str, at: Occurrences) -> pa.Array:
    """Return ids like "t123-4" (prefix, customer number, ordinal) for occurrences."""
    return pc.binary_join_element_wise(
        prefix, integer(cohort.population.index[at.customer]), "-", integer(at.n), ""
    )


def _tickets(cohort: Cohort, since: np.ndarray, until: np.ndarray) -> list[Piece]:
    """Return Ticket Opened and, for most, Ticket Resolved some days later."""
    opened = cohort.occurrences("to", since, until, cohort.typed(_TICKETS))
    priority = np.where(cohort.uniform("to.priority", opened) < 0.2, "high", "normal")
    topic = cohort.integers("to.topic", opened, len(TICKET_TOPICS))
    resolved_mask = cohort.chance("tr", opened, cohort.typed(_RESOLVED)[opened.customer])
    chosen = opened.where(resolved_mask)
    # Tickets still open when the period ends show up as opened but never resolved.
    days = cohort.typed(_RESOLUTION_DAYS)[chosen.customer]
    resolved = cohort.delay("tr.lag", chosen, days * DAY)
    first_contact = (
        cohort.uniform("tr.fcr", resolved) < cohort.typed(_FIRST_CONTACT)[resolved.customer]
    )
    resolution = cohort.integers("tr.resolution", resolved, len(RESOLUTIONS))
    return [
        Piece(
            "to",
            "track",
            opened,
            event="Ticket Opened",
            channel="support",
            properties=json_object(
                {
                    "ticket_id": quoted(_reference(cohort, "t", opened)),
                    "topic": quoted(pick(TICKET_TOPICS, topic)),
                    "priority": quoted(pa.array(priority)),
                }
            ),
        ),
        Piece(
            "tr",
            "track",
            resolved,
            event="Ticket Resolved",
            channel="support",
            properties=json_object(
                {
                    "ticket_id": quoted(_reference(cohort, "t", resolved)),
                    "resolution": quoted(pick(RESOLUTIONS, resolution)),
                    "first_contact_resolution": boolean(first_contact),
                }
            ),
        ),
    ]


def serve(cohort: Cohort) -> list[Piece]:
    """Return the service events of a cohort: tickets, chats and inbound calls."""
    since = cohort.journeys.at_least("interaction")
    until = cohort.journeys.alive_until(cohort.period)
    chats = cohort.occurrences("ch", since, until, cohort.typed(_CHATS))
    replies = cohort.follow("cr", chats, 0.95, MINUTE)
    agent = pick(("bot", "human"), cohort.integers("cr.agent", replies, 2))
    calls = cohort.occurrences("ci", since, until, cohort.typed(_INBOUND_CALLS))
    reason = cohort.integers("ci.reason", calls, len(TICKET_TOPICS))
    stream = cohort.stream("ci.duration")
    index = cohort.population.index[calls.customer]
    return [
        *_tickets(cohort, since, until),
        Piece(
            "ch",
            "track",
            chats,
            event="Live Chat Message Sent",
            channel="support",
            properties=json_object({"conversation_id": quoted(_reference(cohort, "c", chats))}),
        ),
        Piece(
            "cr",
            "track",
            replies,
            event="Live Chat Message Received",
            channel="support",
            properties=json_object(
                {
                    "conversation_id": quoted(_reference(cohort, "c", replies)),
                    "agent": quoted(agent),
                }
            ),
        ),
        Piece(
            "ci",
            "track",
            calls,
            event="Call Received",
            channel="call_centre",
            properties=json_object(
                {
                    "reason": quoted(pick(TICKET_TOPICS, reason)),
                    "duration_s": integer(60 + stream.exponential(index, calls.n) * 300),
                    "wait_s": integer(stream.exponential(index, calls.n, lane=1) * 120),
                }
            ),
        ),
    ]
