"""Per-customer engagement features as of a date, as one Ibis aggregation over the events.

Every feature counts or summarises the customer's events with `timestamp < as_of`, so the same
expression gives today's picture or any past one. Event names follow DESIGN §2's taxonomy.
FEATURE_DOCS documents each column with its unit; the tests hold an independent pandas
implementation to the same numbers.
"""

from __future__ import annotations

from datetime import datetime

import ibis
import ibis.expr.types as ir

__all__ = [
    "COMPANY_CONTACTS",
    "FEATURE_DOCS",
    "TWO_WAY",
    "VOICE",
    "customer_features",
    "event_facts",
    "feature_aggregates",
    "utc_day",
]

# Calls in which the customer answers or speaks up, rather than only receiving.
TWO_WAY = (
    "Live Chat Message Sent",
    "Call Received",
    "Ticket Opened",
    "Survey Responded",
    "Review Posted",
    "Feedback Given",
    "Idea Submitted",
    "Community Post",
    "Community Answer Accepted",
)
# The voice of the customer (DESIGN §2): the customer giving an opinion.
VOICE = ("Survey Responded", "Review Posted", "Feedback Given", "Idea Submitted")
# NPS groups (Reichheld 2003): promoters answer 9-10, detractors 0-6.
PROMOTER_MIN_NPS, DETRACTOR_MAX_NPS = 9, 6
# Reviews: 4-5 stars praise, 1-2 stars complain, 3 is neither.
PRAISE_MIN_RATING, COMPLAINT_MAX_RATING = 4, 2
# Contacts the company starts: what the contact policy and the engagement card watch.
COMPANY_CONTACTS = ("Email Delivered", "Push Sent", "SMS Sent", "Call Made")
# Local times a call is welcome: from 08:00 up to, not including, 21:00 ("HH:MM" text compares).
WAKING_FROM, WAKING_UNTIL = "08:00", "21:00"

# Features that count one event name each: column -> event name.
_COUNTS = {
    "orders": "Order Completed",
    "refunds": "Order Refunded",
    "tickets_opened": "Ticket Opened",
    "tickets_resolved": "Ticket Resolved",
    "surveys": "Survey Responded",
    "reviews": "Review Posted",
    "data_shared": "Data Shared",
    "data_requests": "Data Requested",
    "referrals_sent": "Referral Sent",
    "referrals_converted": "Referral Converted",
    "community_posts": "Community Post",
    "answers_accepted": "Community Answer Accepted",
    "ideas_submitted": "Idea Submitted",
    "feedback_given": "Feedback Given",
    "content_shared": "Content Shared",
    "product_views": "Product Viewed",
    "searches": "Products Searched",
    "articles_read": "Article Read",
    "causes_supported": "Cause Supported",
    "ethics_content_viewed": "Ethics Content Viewed",
    "emails_opened": "Email Opened",
    "email_clicks": "Email Link Clicked",
    "unsubscribes": "Unsubscribed",
    "spam_marks": "Email Marked as Spam",
    "signups": "Signed Up",
    "subscriptions_cancelled": "Subscription Cancelled",
}

FEATURE_DOCS: dict[str, str] = {
    "customer_id": "the customer",
    "first_seen": "time of the customer's first own event (UTC); contacts the company "
    "started (COMPANY_CONTACTS) are not the customer's activity and never count here",
    "last_seen": "time of the customer's last own event before as_of (UTC)",
    "recency_days": "days from the last own event to as_of",
    "tenure_days": "days from the first own event to as_of",
    "events": "the customer's own events before as_of (count)",
    "active_days": "distinct UTC days with an own event (count)",
    "channels_used": "distinct touchpoint channels of own events (count)",
    "two_way_interactions": "calls where the customer speaks: " + ", ".join(TWO_WAY),
    "revenue": "sum of properties.revenue over Order Completed (currency units)",
    "purchase_months": "distinct calendar months with an Order Completed (count)",
    "tickets_unresolved": "tickets opened minus tickets resolved, at least 0 (count)",
    "first_contact_resolutions": "Ticket Resolved with first_contact_resolution true (count)",
    "csat_mean": "mean properties.csat of Survey Responded (1-5), null without one",
    "nps_mean": "mean properties.nps of Survey Responded (0-10), null without one",
    "nps_last": "properties.nps of the latest survey that had one (0-10), null without one",
    "rating_mean": "mean properties.rating of Review Posted (1-5), null without one",
    "promoter_answers": f"Survey Responded with properties.nps >= {PROMOTER_MIN_NPS} (count)",
    "detractor_answers": f"Survey Responded with properties.nps <= {DETRACTOR_MAX_NPS} (count)",
    "reviews_positive": f"Review Posted with properties.rating >= {PRAISE_MIN_RATING} (count)",
    "reviews_negative": f"Review Posted with properties.rating <= {COMPLAINT_MAX_RATING} (count)",
    "voice_events": "opinions the customer gave: " + ", ".join(VOICE) + " (count)",
    "bot_chats": "Live Chat Message Received with properties.agent 'bot': help the customer "
    "got without a person, i.e. self-service (count)",
    "consents_granted": "Consent Updated with granted true (count)",
    "consents_withdrawn": "Consent Updated with granted false (count)",
    "page_views": "page and screen calls (count)",
    "company_contacts": "contacts the company started: " + ", ".join(COMPANY_CONTACTS),
    "calls_unsolicited": "Call Made with properties.solicited false (count)",
    "calls_badly_timed": (
        f"Call Made whose properties.customer_local_time is before {WAKING_FROM} "
        f"or from {WAKING_UNTIL} on (count)"
    ),
    **{name: f"{event} events (count)" for name, event in _COUNTS.items()},
}


def utc_day(timestamp: ir.TimestampValue) -> ir.IntegerValue:
    """Return the UTC calendar day of `timestamp` as days since 1970-01-01."""
    return timestamp.epoch_seconds() // 86_400


def customer_features(events: ir.Table, as_of: datetime, since: datetime | None = None) -> ir.Table:
    """Return one row per customer with the FEATURE_DOCS columns, from events before `as_of`.

    With `since`, only events from then on count: the trailing window in which stage evidence
    must have been seen. `events` must carry `customer_id` (troth.identity.events_with_customer).
    """
    f = event_facts(events, as_of)
    if since is not None:
        f = f.filter(f.timestamp >= ibis.literal(since, type="timestamp('UTC')"))
    grouped = f.group_by("customer_id").aggregate(**feature_aggregates(f))
    return _finish(grouped, as_of)


def event_facts(events: ir.Table, as_of: datetime) -> ir.Table:
    """Return the events before `as_of` slimmed to the typed facts the features aggregate."""
    cutoff = ibis.literal(as_of, type="timestamp('UTC')")
    e = events.filter(events.timestamp < cutoff)
    name, props = e.event, e.properties
    is_order = name == "Order Completed"
    is_survey = name == "Survey Responded"
    is_review = name == "Review Posted"
    is_call = name == "Call Made"
    is_consent = name == "Consent Updated"

    def only(when: ir.BooleanValue, value: ir.Value) -> ir.Value:
        # Reading a JSON property parses the document: parse it only on the events that carry it.
        return ibis.cases((when, value), else_=None)

    return e.select(
        "customer_id",
        "timestamp",
        "event",
        "type",
        "channel",
        own=name.isnull() | ~name.isin(COMPANY_CONTACTS),
        # Calendar functions on timestamps with a time zone go through ICU, ~1 µs a row: the UTC
        # day comes from epoch arithmetic, the month is read only on orders.
        day=utc_day(e.timestamp),
        order_month=only(is_order, e.timestamp.truncate("M")),
        revenue=only(is_order, props["revenue"].float),
        first_contact=only(name == "Ticket Resolved", props["first_contact_resolution"].bool),
        csat=only(is_survey, props["csat"].float),
        nps=only(is_survey, props["nps"].float),
        rating=only(is_review, props["rating"].float),
        agent=only(name == "Live Chat Message Received", props["agent"].str),
        granted=only(is_consent, props["granted"].bool),
        solicited=only(is_call, props["solicited"].bool),
        local_time=only(is_call, props["customer_local_time"].str),
    )


def feature_aggregates(f: ir.Table) -> dict[str, ir.Value]:
    """Return the feature aggregates over the facts `f`, by column name."""
    name, own = f.event, f.own
    # COUNT(*) FILTER, not SUM(bool): DuckDB sums booleans into HUGEINT, which Ibis can't read.
    counts = {col: f.count(where=(name == event)) for col, event in _COUNTS.items()}
    return {
        "first_seen": f.timestamp.min(where=own),
        "last_seen": f.timestamp.max(where=own),
        "events": f.count(where=own),
        "active_days": f.day.nunique(where=own),
        "channels_used": f.channel.nunique(where=own),
        "two_way_interactions": f.count(where=name.isin(TWO_WAY)),
        "revenue": f.revenue.sum(),
        "purchase_months": f.order_month.nunique(),
        "first_contact_resolutions": f.count(where=f.first_contact),
        "csat_mean": f.csat.mean(),
        "nps_mean": f.nps.mean(),
        "nps_last": f.nps.argmax(f.timestamp, where=f.nps.notnull()),
        "rating_mean": f.rating.mean(),
        "promoter_answers": f.count(where=(f.nps >= PROMOTER_MIN_NPS)),
        "detractor_answers": f.count(where=(f.nps <= DETRACTOR_MAX_NPS)),
        "reviews_positive": f.count(where=(f.rating >= PRAISE_MIN_RATING)),
        "reviews_negative": f.count(where=(f.rating <= COMPLAINT_MAX_RATING)),
        "voice_events": f.count(where=name.isin(VOICE)),
        "bot_chats": f.count(where=(f.agent == "bot")),
        "consents_granted": f.count(where=f.granted),
        "consents_withdrawn": f.count(where=~f.granted),
        "page_views": f.count(where=f.type.isin(["page", "screen"])),
        "company_contacts": f.count(where=name.isin(COMPANY_CONTACTS)),
        "calls_unsolicited": f.count(where=~f.solicited),
        "calls_badly_timed": f.count(
            where=((f.local_time < WAKING_FROM) | (f.local_time >= WAKING_UNTIL))
        ),
        **counts,
    }


def _finish(grouped: ir.Table, as_of: datetime) -> ir.Table:
    """Return the FEATURE_DOCS columns from aggregated features: zeros, recency, tenure."""
    cutoff = ibis.literal(as_of, type="timestamp('UTC')")
    days = 86_400.0
    # A sum over no matching row is NULL in SQL; a count of nothing is 0.
    zeros = {col: grouped[col].fill_null(0) for col in _ZERO_WHEN_NONE}
    filled = grouped.mutate(**zeros)
    return filled.mutate(
        recency_days=(cutoff.epoch_seconds() - filled.last_seen.epoch_seconds()) / days,
        tenure_days=(cutoff.epoch_seconds() - filled.first_seen.epoch_seconds()) / days,
        tickets_unresolved=ibis.greatest(filled.tickets_opened - filled.tickets_resolved, 0),
    ).select(*FEATURE_DOCS)


_ZERO_WHEN_NONE = (
    "events",
    "two_way_interactions",
    "revenue",
    "purchase_months",
    "first_contact_resolutions",
    "promoter_answers",
    "detractor_answers",
    "reviews_positive",
    "reviews_negative",
    "voice_events",
    "bot_chats",
    "consents_granted",
    "consents_withdrawn",
    "page_views",
    "company_contacts",
    "calls_unsolicited",
    "calls_badly_timed",
    *_COUNTS,
)
