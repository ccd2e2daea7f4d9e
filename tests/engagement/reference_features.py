"""An independent pandas implementation of the feature table: the oracle and the baseline.

It reads the events with plain SQL and parses JSON with the json module, row by row where it
must, so it shares nothing with troth.engagement.features but the definitions in FEATURE_DOCS.
"""

from __future__ import annotations

import json
from datetime import datetime

import numpy as np
import pandas as pd

from troth.store import Database

TWO_WAY = {
    "Live Chat Message Sent",
    "Call Received",
    "Ticket Opened",
    "Survey Responded",
    "Review Posted",
    "Feedback Given",
    "Idea Submitted",
    "Community Post",
    "Community Answer Accepted",
}
VOICE = {"Survey Responded", "Review Posted", "Feedback Given", "Idea Submitted"}
CONTACTS = {"Email Delivered", "Push Sent", "SMS Sent", "Call Made"}
COUNTS = {
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


def load_events(db: Database) -> pd.DataFrame:
    """Return every event with its customer_id, as a DataFrame."""
    return (
        db.cursor()
        .execute(
            "SELECT i.customer_id, e.type, e.event, e.channel, e.timestamp, "
            "CAST(e.properties AS VARCHAR) AS properties FROM events e JOIN identifiers i "
            "ON i.node = CASE WHEN e.user_id IS NULL THEN 'anonymous_id:' || e.anonymous_id "
            "ELSE 'user_id:' || e.user_id END"
        )
        .df()
    )


def _number(props: dict, key: str) -> float:
    value = props.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return np.nan
    return float(value)


def _flag(props: dict, key: str) -> float:
    value = props.get(key)
    return float(value) if isinstance(value, bool) else np.nan


def reference_features(events: pd.DataFrame, as_of: datetime) -> pd.DataFrame:
    """Return the feature table computed with pandas, indexed by customer_id."""
    e = events[events["timestamp"] < pd.Timestamp(as_of)].copy()
    props = [json.loads(p) if isinstance(p, str) else {} for p in e["properties"]]
    for key in ("revenue", "csat", "nps", "rating"):
        e[key] = [_number(p, key) for p in props]
    for key in ("first_contact_resolution", "granted", "solicited"):
        e[key] = [_flag(p, key) for p in props]
    e["agent"] = [p.get("agent") for p in props]
    e["local_time"] = [
        p.get("customer_local_time") if isinstance(p.get("customer_local_time"), str) else None
        for p in props
    ]
    name = e["event"]
    e["day"] = e["timestamp"].dt.tz_convert("UTC").dt.date
    e["month"] = e["timestamp"].dt.tz_convert("UTC").dt.strftime("%Y-%m")
    e["is_order"] = name == "Order Completed"
    e["is_survey"] = name == "Survey Responded"
    e["two_way"] = name.isin(TWO_WAY)
    e["contact"] = name.isin(CONTACTS)
    e["page"] = e["type"].isin(["page", "screen"])
    e["fcr"] = (name == "Ticket Resolved") & (e["first_contact_resolution"] == 1.0)
    e["promoter"] = e["is_survey"] & (e["nps"] >= 9)
    e["detractor"] = e["is_survey"] & (e["nps"] <= 6)
    e["praise"] = (name == "Review Posted") & (e["rating"] >= 4)
    e["complaint"] = (name == "Review Posted") & (e["rating"] <= 2)
    e["voice"] = name.isin(VOICE)
    e["bot"] = (name == "Live Chat Message Received") & (e["agent"] == "bot")
    e["granted_yes"] = (name == "Consent Updated") & (e["granted"] == 1.0)
    e["granted_no"] = (name == "Consent Updated") & (e["granted"] == 0.0)
    e["unsolicited"] = (name == "Call Made") & (e["solicited"] == 0.0)
    e["bad_time"] = (name == "Call Made") & e["local_time"].map(
        lambda t: isinstance(t, str) and (t < "08:00" or t >= "21:00")
    )
    for col, event in COUNTS.items():
        e[col] = name == event
    e["own"] = ~e["contact"]  # what the company sends is not the customer's activity
    g = e.groupby("customer_id")
    own = e[e["own"]].groupby("customer_id")
    out = pd.DataFrame(
        {
            "first_seen": own["timestamp"].min(),
            "last_seen": own["timestamp"].max(),
            "events": g["own"].sum(),
            "active_days": own["day"].nunique(),
            "channels_used": own["channel"].nunique(),
            "two_way_interactions": g["two_way"].sum(),
            "revenue": e[e["is_order"]].groupby("customer_id")["revenue"].sum(min_count=1),
            "purchase_months": e[e["is_order"]].groupby("customer_id")["month"].nunique(),
            "first_contact_resolutions": g["fcr"].sum(),
            "csat_mean": e[e["is_survey"]].groupby("customer_id")["csat"].mean(),
            "nps_mean": e[e["is_survey"]].groupby("customer_id")["nps"].mean(),
            "nps_last": e[e["is_survey"] & e["nps"].notna()]
            .sort_values("timestamp")
            .groupby("customer_id")["nps"]
            .last(),
            "rating_mean": e[name == "Review Posted"].groupby("customer_id")["rating"].mean(),
            "promoter_answers": g["promoter"].sum(),
            "detractor_answers": g["detractor"].sum(),
            "reviews_positive": g["praise"].sum(),
            "reviews_negative": g["complaint"].sum(),
            "voice_events": g["voice"].sum(),
            "bot_chats": g["bot"].sum(),
            "consents_granted": g["granted_yes"].sum(),
            "consents_withdrawn": g["granted_no"].sum(),
            "page_views": g["page"].sum(),
            "company_contacts": g["contact"].sum(),
            "calls_unsolicited": g["unsolicited"].sum(),
            "calls_badly_timed": g["bad_time"].sum(),
            **{col: g[col].sum() for col in COUNTS},
        }
    )
    for col in ("revenue", "purchase_months", "active_days", "channels_used"):
        out[col] = out[col].fillna(0)
    cutoff = pd.Timestamp(as_of)
    out["recency_days"] = (cutoff - out["last_seen"]).dt.total_seconds() / 86_400
    out["tenure_days"] = (cutoff - out["first_seen"]).dt.total_seconds() / 86_400
    out["tickets_unresolved"] = (out["tickets_opened"] - out["tickets_resolved"]).clip(lower=0)
    return out
