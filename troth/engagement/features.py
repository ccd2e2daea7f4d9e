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

__all__ = ["COMPANY_CONTACTS", "FEATURE_DOCS", "TWO_WAY", "VOICE", "customer_features"]

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


def customer_features(events: ir.Table, as_of: datetime, since: datetime | None = None) -> ir.Table:
    """Return one row per customer with the FEATURE_DOCS columns, from events before `as_of`.

    With `since`, only events from then on count: the trailing window in which stage evidence
    must have been seen. `events` must carry `customer_id` (troth.identity.events_with_customer).
    """
    cutoff = ibis.literal(as_of, type="timestamp('UTC')")
    e = events.filter(events.timestamp < cutoff)
    if since is not None:
        e = e.filter(e.timestamp >= ibis.literal(since, type="timestamp('UTC')"))
    name = e.event
    props = e.properties
    is_order = name == "Order Completed"
    is_survey = name == "Survey Responded"
    is_call = name == "Call Made"
    local_time = props["customer_local_time"].str
    granted = props["granted"].bool
    nps = props["nps"].float
    rating = props["rating"].float
    is_review = name == "Review Posted"
    # COUNT(*) FILTER, not SUM(bool): DuckDB sums booleans into HUGEINT, which Ibis can't read.
    counts = {col: e.count(where=name == event) for col, event in _COUNTS.items()}
    own = name.isnull() | ~name.isin(COMPANY_CONTACTS)
    grouped = e.group_by("customer_id").aggregate(
        first_seen=e.timestamp.min(where=own),
        last_seen=e.timestamp.max(where=own),
        events=e.count(where=own),
        active_days=e.timestamp.date().nunique(where=own),
        channels_used=e.channel.nunique(where=own),
        two_way_interactions=e.count(where=name.isin(TWO_WAY)),
        revenue=props["revenue"].float.sum(where=is_order),
        purchase_months=e.timestamp.truncate("M").nunique(where=is_order),
        first_contact_resolutions=e.count(
            where=(name == "Ticket Resolved") & props["first_contact_resolution"].bool
        ),
        csat_mean=props["csat"].float.mean(where=is_survey),
        nps_mean=nps.mean(where=is_survey),
        nps_last=nps.argmax(e.timestamp, where=is_survey & props["nps"].notnull()),
        rating_mean=rating.mean(where=is_review),
        promoter_answers=e.count(where=is_survey & (nps >= PROMOTER_MIN_NPS)),
        detractor_answers=e.count(where=is_survey & (nps <= DETRACTOR_MAX_NPS)),
        reviews_positive=e.count(where=is_review & (rating >= PRAISE_MIN_RATING)),
        reviews_negative=e.count(where=is_review & (rating <= COMPLAINT_MAX_RATING)),
        voice_events=e.count(where=name.isin(VOICE)),
        bot_chats=e.count(
            where=(name == "Live Chat Message Received") & (props["agent"].str == "bot")
        ),
        consents_granted=e.count(where=(name == "Consent Updated") & granted),
        consents_withdrawn=e.count(where=(name == "Consent Updated") & ~granted),
        page_views=e.count(where=e.type.isin(["page", "screen"])),
        company_contacts=e.count(where=name.isin(COMPANY_CONTACTS)),
        calls_unsolicited=e.count(where=is_call & ~props["solicited"].bool),
        calls_badly_timed=e.count(
            where=is_call & ((local_time < WAKING_FROM) | (local_time >= WAKING_UNTIL))
        ),
        **counts,
    )
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
