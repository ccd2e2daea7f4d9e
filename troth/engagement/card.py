"""The engagement card: a ledger of trust points per customer, from classified events.

Each rule of CARD_RULES picks events that earn the company trust (service the customer benefits
from, data shared willingly, offers taken) or lose it (unwelcome contact, data asked for without
a reason, spam marks, unsubscribes, complaints left unresolved). Weights come from `[card]`
and are magnitudes; a rule's direction gives the sign. A rule never fires on a fact the event
does not carry (no local time, no `solicited` flag, no ticket_id): nothing is judged on guesses.

`card_entries` is the ledger, one row per (event, rule) — an event may fire several rules;
`card_balances` sums it per customer. Entries depend only on events before their own date (a
complaint's deadline included), so the ledger as of a later date extends the earlier one.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir

from troth.engagement.features import COMPANY_CONTACTS, utc_day
from troth.errors import TrothError

__all__ = ["CARD_RULES", "ENTRY_COLUMNS", "CardRule", "card_balances", "card_entries"]

ENTRY_COLUMNS = ("customer_id", "timestamp", "rule", "points", "event", "reason", "message_id")

# IANA names the store can convert to local time; anything else leaves the local time unknown
# (DuckDB raises on an unknown zone, and one bad `context.timezone` must not stop scoring).
_ZONES = tuple(sorted(zoneinfo.available_timezones() - {"localtime"}))
_CLOCK = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


@ibis.udf.scalar.builtin(name="timezone")
def _wall_clock(zone: str, moment: dt.Timestamp(timezone="UTC")) -> dt.Timestamp():
    """Return `moment` as the wall-clock time in `zone` (DuckDB's and Postgres' timezone())."""


Predicate = Callable[[ir.Table, Mapping[str, Any]], ir.BooleanValue]


@dataclass(frozen=True)
class CardRule:
    """One way to earn or lose trust: the events it reads, when it fires, and why (for users).

    The weight is `[card]` key `name`; `dated` names the column giving the entry's date.
    """

    name: str
    earns: bool
    events: tuple[str, ...]
    reason: str
    when: Predicate
    dated: str = "timestamp"

    def points(self, card: Mapping[str, Any]) -> int:
        """Return the signed points one firing is worth under `card` ([card] settings)."""
        weight = int(card[self.name])
        return weight if self.earns else -weight


def _is(event: str) -> Predicate:
    return lambda b, _card: b.event == event


def _proactive_help(b: ir.Table, _card: Mapping[str, Any]) -> ir.BooleanValue:
    # Service the company starts unasked: the customer benefits without having to ask.
    return (
        ((b.event == "SMS Sent") & (b.purpose == "service"))
        | ((b.event == "Push Sent") & (b.kind == "order update"))
        | ((b.event == "Call Made") & (b.purpose == "service") & ~b.solicited.fill_null(True))
    ).fill_null(False)


def _unsolicited(b: ir.Table, _card: Mapping[str, Any]) -> ir.BooleanValue:
    # An unasked service call is help (above); any other unasked call is an intrusion.
    return (
        (b.event == "Call Made")
        & ~b.solicited.fill_null(True)
        & (b.purpose.fill_null("") != "service")
    )


CARD_RULES: tuple[CardRule, ...] = (
    CardRule(
        "proactive_help",
        True,
        ("SMS Sent", "Push Sent", "Call Made"),
        "service contact the customer did not have to ask for (order update, service message "
        "or call)",
        _proactive_help,
    ),
    CardRule(
        "ticket_resolved",
        True,
        ("Ticket Resolved",),
        "support ticket resolved",
        _is("Ticket Resolved"),
    ),
    CardRule(
        "first_contact_resolution",
        True,
        ("Ticket Resolved",),
        "resolved at the first contact (on top of the resolution)",
        lambda b, _card: (b.event == "Ticket Resolved") & b.first_contact.fill_null(False),
    ),
    CardRule(
        "chosen_time_callback",
        True,
        ("Call Made",),
        "called back as the customer asked, within waking hours",
        lambda b, _card: (
            (b.event == "Call Made") & b.solicited.fill_null(False) & b.waking.fill_null(False)
        ),
    ),
    CardRule("data_shared", True, ("Data Shared",), "shared data willingly", _is("Data Shared")),
    CardRule(
        "offer_taken",
        True,
        ("Order Completed",),
        "took an offer: an order with a coupon or discount",
        lambda b, _card: (b.event == "Order Completed") & b.with_offer,
    ),
    CardRule(
        "unsolicited_contact",
        False,
        ("Call Made",),
        "unsolicited call (sales, retention or survey)",
        _unsolicited,
    ),
    CardRule(
        "badly_timed_contact",
        False,
        COMPANY_CONTACTS,
        "contacted outside waking hours ({waking_from}-{waking_until} local time)",
        lambda b, _card: b.event.isin(COMPANY_CONTACTS) & ~b.waking.fill_null(True),
    ),
    CardRule(
        "over_contact_cap",
        False,
        COMPANY_CONTACTS,
        "contacted more than {contact_cap_per_week} times in one week",
        lambda b, _card: b.over_cap.fill_null(False),
    ),
    CardRule(
        "data_request_without_reason",
        False,
        ("Data Requested",),
        "asked for personal data without giving a reason",
        lambda b, _card: (b.event == "Data Requested") & ~b.reason_given.fill_null(True),
    ),
    CardRule(
        "spam_mark",
        False,
        ("Email Marked as Spam",),
        "marked an email as spam",
        _is("Email Marked as Spam"),
    ),
    CardRule(
        "unsubscribe", False, ("Unsubscribed",), "unsubscribed from a list", _is("Unsubscribed")
    ),
    CardRule(
        "unresolved_complaint",
        False,
        ("Ticket Opened",),
        "ticket not resolved within {complaint_resolution_days} days of opening",
        lambda b, _card: b.overdue_at.notnull(),
        dated="overdue_at",
    ),
)

_EVENTS = tuple(dict.fromkeys(name for rule in CARD_RULES for name in rule.events))
_TICKETS = ("Ticket Opened", "Ticket Resolved")


def card_entries(events: ir.Table, as_of: datetime, card: Mapping[str, Any]) -> ir.Table:
    """Return the ledger: ENTRY_COLUMNS, one row per rule an event before `as_of` fires (points).

    `events` must carry `customer_id` (troth.identity.events_with_customer); `card` holds the
    `[card]` settings (CardSettings.model_dump()).
    """
    _check(card)
    base = _classified(events, as_of, card)
    # One pass: every rule is a column, rows firing none are dropped, the rest are unnested
    # into one row per rule fired (a union of per-rule selects would rescan the events each).
    fires = {f"_fires_{rule.name}": rule.when(base, card).fill_null(False) for rule in CARD_RULES}
    marked = base.mutate(**fires)
    fired = marked.filter(ibis.or_(*(marked[column] for column in fires)))
    names = [
        ibis.cases((fired[column], rule.name), else_=None)
        for column, rule in zip(fires, CARD_RULES, strict=True)
    ]
    rows = fired.mutate(rule=ibis.array(names).filter(lambda rule: rule.notnull()).unnest())

    def per_rule(value: Callable[[CardRule], ir.Value]) -> ir.Value:
        return ibis.cases(*((rows.rule == rule.name, value(rule)) for rule in CARD_RULES))

    return rows.select(
        customer_id=rows.customer_id,
        timestamp=per_rule(lambda rule: rows[rule.dated]),
        rule=rows.rule,
        points=per_rule(lambda rule: ibis.literal(rule.points(card), type="int64")),
        event=rows.event,
        reason=per_rule(lambda rule: ibis.literal(rule.reason.format(**card))),
        message_id=rows.message_id,
    )


def card_balances(entries: ir.Table, as_of: datetime, trend_days: int) -> ir.Table:
    """Return per customer: balance, earned, lost (points), entries (count), trend, last_entry_at.

    `trend` is the points dated within (as_of - trend_days, as_of]. Customers without entries
    have no row; callers joining all customers should read a missing row as zeros.
    """
    cutoff = ibis.literal(as_of, type="timestamp('UTC')")
    since = ibis.literal(as_of - timedelta(days=trend_days), type="timestamp('UTC')")
    e = entries.filter(entries.timestamp <= cutoff)
    return (
        e.group_by("customer_id")
        .aggregate(
            balance=_bigint(e.points.sum()),
            earned=_bigint(e.points.sum(where=e.points > 0)).fill_null(0),
            lost=_bigint(e.points.sum(where=e.points < 0)).fill_null(0),
            entries=e.count(),
            trend=_bigint(e.points.sum(where=e.timestamp > since)).fill_null(0),
            last_entry_at=e.timestamp.max(),
        )
        .select("customer_id", "balance", "earned", "lost", "entries", "trend", "last_entry_at")
    )


def _bigint(total: ir.IntegerScalar) -> ir.IntegerScalar:
    """Return a sum of points as BIGINT.

    DuckDB sums BIGINT into HUGEINT, which Ibis cannot read back from a stored table, and Ibis
    drops a cast to the type it already believes the sum has; the exact round trip through
    DOUBLE (points stay far below 2**53) makes the cast stick.
    """
    return total.cast("float64").cast("int64")


def _check(card: Mapping[str, Any]) -> None:
    """Raise TrothError if `card` lacks a key the rules read or has a malformed time."""
    needed = [rule.name for rule in CARD_RULES] + [
        "waking_from",
        "waking_until",
        "contact_cap_per_week",
        "complaint_resolution_days",
    ]
    missing = [key for key in needed if key not in card]
    if missing:
        raise TrothError(
            f"[card] lacks {', '.join(missing)}: pass CardSettings().model_dump() or set them"
        )
    for key in ("waking_from", "waking_until"):
        if not _CLOCK.match(str(card[key])):
            raise TrothError(f"[card] {key} = {card[key]!r}: write a time as 'HH:MM', e.g. '08:00'")


def _classified(events: ir.Table, as_of: datetime, card: Mapping[str, Any]) -> ir.Table:
    """Return the events the rules read, with the facts they test as columns."""
    cutoff = ibis.literal(as_of, type="timestamp('UTC')")
    e = events.filter((events.timestamp < cutoff) & events.event.isin(_EVENTS))
    props, name = e.properties, e.event
    contact = name.isin(COMPANY_CONTACTS)

    def only(when: ir.BooleanValue, value: ir.Value) -> ir.Value:
        # Each JSON lookup parses the document: read a property only where the rule needs it.
        return ibis.cases((when, value), else_=None)

    raw = e.select(
        "customer_id",
        "timestamp",
        "event",
        "message_id",
        contact=contact,
        purpose=only(name.isin(("SMS Sent", "Call Made")), props["purpose"].str),
        kind=only(name == "Push Sent", props["kind"].str),
        solicited=only(name == "Call Made", props["solicited"].bool),
        given_time=only(name == "Call Made", props["customer_local_time"].str),
        zone=only(contact, e.context["timezone"].str),
        first_contact=only(name == "Ticket Resolved", props["first_contact_resolution"].bool),
        reason_given=only(name == "Data Requested", props["reason_given"].bool),
        coupon=only(name == "Order Completed", props["coupon"].str),
        discount=only(name == "Order Completed", props["discount"].float),
        ticket_id=only(name.isin(_TICKETS), props["ticket_id"].str),
    )
    # The zone conversion is the costliest step: once per row, in its own projection.
    clocked = raw.mutate(
        wall=only(
            raw.zone.isin(_ZONES) & raw.given_time.isnull(), _wall_clock(raw.zone, raw.timestamp)
        )
    )
    facts = clocked.mutate(
        waking=only(clocked.contact, _waking(_local_minute(clocked), card)),
        with_offer=(
            (clocked.coupon.notnull() & (clocked.coupon != "")) | (clocked.discount > 0)
        ).fill_null(False),
    ).drop("wall")
    over_cap = _over_cap(facts, int(card["contact_cap_per_week"]))
    overdue = _overdue_tickets(facts, as_of, int(card["complaint_resolution_days"]))
    return (
        facts.left_join(over_cap, "message_id")
        .drop("message_id_right")
        .left_join(overdue, "message_id")
        .drop("message_id_right")
    )


def _local_minute(facts: ir.Table) -> ir.IntegerValue:
    """Return the customer's local time in minutes after midnight: properties.customer_local_time
    ("HH:MM"), else the event's wall-clock time in context.timezone; null if neither is usable."""
    given = facts.given_time
    return ibis.cases(
        (
            given.re_search(_CLOCK.pattern).fill_null(False),
            given.left(2).cast("int64") * 60 + given.right(2).cast("int64"),
        ),
        else_=facts.wall.hour() * 60 + facts.wall.minute(),
    )


def _waking(minute: ir.IntegerValue, card: Mapping[str, Any]) -> ir.BooleanValue:
    """Return whether a local minute lies in [waking_from, waking_until), null if unknown."""
    start, end = _minutes(card["waking_from"]), _minutes(card["waking_until"])
    if start < end:
        return (minute >= start) & (minute < end)
    # A waking window across midnight, e.g. 22:00-06:00 for night-shift customers.
    return (minute >= start) | (minute < end)


def _minutes(clock: str) -> int:
    hours, minutes = clock.split(":")
    return int(hours) * 60 + int(minutes)


def _over_cap(facts: ir.Table, cap: int) -> ir.Table:
    """Return message_id, over_cap of each contact beyond the `cap`-th of its customer's week.

    Weeks are ISO weeks (from Monday 00:00 UTC). Only the rare weeks over the cap are ranked:
    a window over every contact would sort them all.
    """
    contacts = facts.filter(facts.contact).select(
        # 1970-01-01 was a Thursday: day + 3 counts weeks from Monday. Epoch arithmetic, not
        # truncate("W"), which goes through ICU on zoned timestamps at ~1 µs a row.
        "customer_id",
        "timestamp",
        "message_id",
        week=(utc_day(facts.timestamp) + 3) // 7,
    )
    busy = (
        contacts.group_by(["customer_id", "week"])
        .aggregate(contacts_in_week=contacts.count())
        .filter(lambda t: t.contacts_in_week > cap)
    )
    crowded = contacts.semi_join(busy, ["customer_id", "week"])
    ranked = crowded.mutate(
        nth=ibis.row_number().over(
            group_by=[crowded.customer_id, crowded.week],
            order_by=[crowded.timestamp, crowded.message_id],
        )
    )
    # row_number counts from 0: the contact numbered `cap` is the first beyond it.
    return ranked.filter(ranked.nth >= cap).select("message_id", over_cap=ibis.literal(True))


def _overdue_tickets(facts: ir.Table, as_of: datetime, days: int) -> ir.Table:
    """Return message_id, overdue_at of tickets opened and not resolved within `days`.

    Only tickets whose deadline is before `as_of` are judged; a ticket is resolved in time by a
    Ticket Resolved of the same customer and ticket_id from its opening up to the deadline.
    """
    cutoff = ibis.literal(as_of, type="timestamp('UTC')")
    opened = facts.filter((facts.event == "Ticket Opened") & facts.ticket_id.notnull())
    opened = opened.select(
        "message_id",
        "customer_id",
        "ticket_id",
        opened_at=opened.timestamp,
        overdue_at=opened.timestamp + ibis.interval(days=days),
    )
    opened = opened.filter(opened.overdue_at < cutoff)
    resolved = facts.filter(facts.event == "Ticket Resolved").select(
        r_customer=facts.customer_id, r_ticket=facts.ticket_id, resolved_at=facts.timestamp
    )
    late = opened.anti_join(
        resolved,
        [
            opened.customer_id == resolved.r_customer,
            opened.ticket_id == resolved.r_ticket,
            resolved.resolved_at >= opened.opened_at,
            resolved.resolved_at <= opened.overdue_at,
        ],
    )
    return late.select("message_id", "overdue_at")
