"""The customer portal: signed expiring links, what is held about the person, their choices.

A link is `<payload>.<mac>`, both base64url without padding: the payload is the customer id
and the expiry (Unix seconds), the MAC an HMAC-SHA256 of it under the `portal_key` secret
(troth.privacy.keyring), truncated to 128 bits (RFC 2104 §5 allows truncating to half the
hash; forging one still takes 2^128 guesses). Nothing is stored per link, so rotating the key
is the way to invalidate every link at once. A refused link raises InvalidPortalLink with the
reason; what the visitor is told is up to the page (a generic message).

The form on the portal page carries a second MAC, of the link under another label, so that a
form posted from elsewhere without having read the page is refused.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from troth.errors import CustomerNotFound, TrothError
from troth.identity.profile import customer_events, customer_profile
from troth.privacy.consent import (
    SCORING_PURPOSES,
    ConsentError,
    customer_consent,
    record_consent,
)
from troth.privacy.keyring import rotate_secret_key, secret_key
from troth.store import Database

__all__ = [
    "PORTAL_KEY",
    "InvalidPortalForm",
    "InvalidPortalLink",
    "apply_portal_choices",
    "check_form_token",
    "describe_purpose",
    "form_token",
    "held_data",
    "portal_consents",
    "portal_token",
    "rotate_portal_key",
    "scores_withheld",
    "token_expiry",
    "verify_portal_token",
]

PORTAL_KEY = "portal_key"
# Labels keep the two MACs apart: a link's MAC is never a valid form token, nor the reverse.
_LINK_LABEL = b"troth portal link\x00"
_FORM_LABEL = b"troth portal form\x00"
_MAC_BYTES = 16
_MAX_TOKEN_CHARS = 512
_TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
# A merged-away customer's link follows merges to the customer holding their identifiers now.
_MAX_MERGE_HOPS = 64

_DESCRIPTIONS = {
    "analytics": "Counting and analysing what you do with us, to understand how our services "
    "are used.",
    "personalisation": "Choosing what we show you — products, articles, offers — by your "
    "interests.",
    "profiling": "Building a picture of our relationship with you: how engaged you are, where "
    "you stand with us and what your custom is worth. Without it we calculate none of this.",
    "marketing:email": "Sending you offers and news by email.",
    "marketing:sms": "Sending you offers and news by text message.",
    "marketing:call": "Calling you with offers.",
    "marketing:push": "Sending you offers as notifications in our app.",
}


class InvalidPortalLink(TrothError):
    """A portal link is malformed, forged, tampered with, expired, or its customer is gone."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"portal link refused: {reason}")
        self.reason = reason


class InvalidPortalForm(TrothError):
    """A portal form came without the page's form token, or with a wrong one."""


def _b64(data: bytes) -> str:
    """Return `data` as base64url text without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    """Return the bytes of unpadded base64url `text` (binascii.Error if it is not)."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, label: bytes, message: bytes) -> bytes:
    """Return the truncated HMAC-SHA256 of `message` under `key`, domain-separated by `label`."""
    return hmac.new(key, label + message, hashlib.sha256).digest()[:_MAC_BYTES]


def portal_token(db: Database, customer_id: str, hours: int, now: datetime | None = None) -> str:
    """Return a link token for `customer_id` valid for `hours` hours from `now` (default: now)."""
    if hours < 1:
        raise TrothError(f"a portal link must be valid for at least 1 hour, not {hours}")
    if not _customer_exists(db, customer_id):
        raise CustomerNotFound(f"no customer '{customer_id}'")
    expires = (now or datetime.now(UTC)) + timedelta(hours=hours)
    payload = f"{customer_id}.{int(expires.timestamp())}".encode()
    return f"{_b64(payload)}.{_b64(_mac(secret_key(db, PORTAL_KEY), _LINK_LABEL, payload))}"


def token_expiry(token: str) -> datetime:
    """Return when a well-formed token expires (not verified: for display after verifying)."""
    payload = _unb64(token.split(".", 1)[0]).decode()
    return datetime.fromtimestamp(int(payload.rpartition(".")[2]), UTC)


def verify_portal_token(db: Database, token: str, now: datetime | None = None) -> str:
    """Return the customer id a valid link token opens; raise InvalidPortalLink if not valid."""
    if len(token) > _MAX_TOKEN_CHARS or not _TOKEN_SHAPE.fullmatch(token):
        raise InvalidPortalLink("malformed token")
    encoded_payload, encoded_mac = token.split(".")
    try:
        payload, given = _unb64(encoded_payload), _unb64(encoded_mac)
    except (binascii.Error, ValueError):
        raise InvalidPortalLink("malformed token") from None
    expected = _mac(secret_key(db, PORTAL_KEY), _LINK_LABEL, payload)
    if not hmac.compare_digest(given, expected):
        raise InvalidPortalLink(
            "signature does not match (forged, altered, or issued before the links were rotated)"
        )
    # Signed by us, so well-formed unless a bug wrote it; still parsed defensively.
    customer_id, _, expiry = payload.decode("utf-8", "replace").rpartition(".")
    if not customer_id or not expiry.isdigit():
        raise InvalidPortalLink("malformed token")
    expires = datetime.fromtimestamp(int(expiry), UTC)
    if (now or datetime.now(UTC)) >= expires:
        raise InvalidPortalLink(f"expired at {expires.isoformat()}")
    current = _current_customer(db, customer_id)
    if current is None:
        raise InvalidPortalLink(f"customer '{customer_id}' no longer exists")
    return current


def rotate_portal_key(db: Database) -> None:
    """Replace the portal key: every link issued so far stops opening."""
    rotate_secret_key(db, PORTAL_KEY)


def form_token(db: Database, link_token: str) -> str:
    """Return the form token the portal page of `link_token` carries in its form."""
    return _b64(_mac(secret_key(db, PORTAL_KEY), _FORM_LABEL, link_token.encode()))


def check_form_token(db: Database, link_token: str, given: str | None) -> None:
    """Return None if `given` is the form token of `link_token`; else raise InvalidPortalForm."""
    expected = form_token(db, link_token)
    if not given or not hmac.compare_digest(given.encode(), expected.encode()):
        raise InvalidPortalForm(
            "the form was not sent from this portal page (form token missing or wrong); "
            "reload the page and try again"
        )


def _customer_exists(db: Database, customer_id: str) -> bool:
    """Return True if some identifier belongs to `customer_id`."""
    with db.session() as session:
        ids = session.table("identifiers")
        return bool(session.scalar(ids.filter(ids.customer_id == customer_id).count()))


def _current_customer(db: Database, customer_id: str) -> str | None:
    """Return the customer holding `customer_id`'s identifiers now (following merges), or None."""
    with db.session() as session:
        ids, merges = session.table("identifiers"), session.table("identity_merges")
        current = customer_id
        for _ in range(_MAX_MERGE_HOPS):
            if session.scalar(ids.filter(ids.customer_id == current).count()):
                return current
            into = session.scalar(
                merges.filter(merges.from_customer_id == current)
                .order_by(merges.merged_at.desc())
                .select("into_customer_id")
                .limit(1)
            )
            if into is None:
                return None
            current = into
    return None


def held_data(db: Database, customer_id: str) -> dict[str, Any]:
    """Return what is held about a customer: identifiers, traits and their events by kind,
    by channel and their date range (ISO-8601 UTC)."""
    profile = customer_profile(db, customer_id)
    user_ids = [i["value"] for i in profile["identifiers"] if i["kind"] == "user_id"]
    anonymous_ids = [i["value"] for i in profile["identifiers"] if i["kind"] == "anonymous_id"]
    with db.session() as session:
        events = customer_events(session.table("events"), user_ids, anonymous_ids)
        labelled = events.mutate(label=events.channel.fill_null("unspecified"))
        channels = session.fetch(
            labelled.group_by("label").aggregate(n=labelled.count()).order_by("label")
        )
    return {
        "customer_id": profile["customer_id"],
        "identifiers": [
            {key: i[key] for key in ("kind", "value", "first_seen", "last_seen")}
            for i in profile["identifiers"]
        ],
        "traits": profile["traits"],
        "events": {
            "count": profile["event_count"],
            "first": profile["first_seen"],
            "last": profile["last_seen"],
            "by_kind": profile["events_by_name"],
            "by_channel": {label: int(n) for label, n in channels},
        },
    }


def describe_purpose(purpose: str) -> str:
    """Return a plain-language sentence saying what a purpose lets the company do."""
    if purpose in _DESCRIPTIONS:
        return _DESCRIPTIONS[purpose]
    area, _, channel = purpose.partition(":")
    if area == "marketing" and channel:
        return f"Sending you offers and news by {channel.replace('_', ' ')}."
    return f"Using your data for {purpose.replace('_', ' ').replace(':', ' by ')}."


def portal_consents(
    db: Database, customer_id: str, purposes: Sequence[str], granted_by_default: Sequence[str]
) -> list[dict[str, Any]]:
    """Return each purpose with its description, whether granted, since when and by default."""
    state = customer_consent(db, customer_id, purposes, granted_by_default)["purposes"]
    return [
        {"purpose": purpose, "description": describe_purpose(purpose), **state[purpose]}
        for purpose in purposes
    ]


def scores_withheld(consents: Sequence[Mapping[str, Any]]) -> str | None:
    """Return why scores are withheld now ("no consent: profiling"), or None if they are not.

    `consents` is what `portal_consents` returns: the current answer, not the last scoring's.
    """
    refused = [
        c["purpose"] for c in consents if c["purpose"] in SCORING_PURPOSES and not c["granted"]
    ]
    return "no consent: " + ", ".join(refused) if refused else None


def apply_portal_choices(
    db: Database,
    customer_id: str,
    choices: Mapping[str, bool],
    purposes: Sequence[str],
    granted_by_default: Sequence[str],
    *,
    source: str = "portal",
    changed_by: str = "customer",
) -> list[dict[str, Any]]:
    """Record the choices that differ from the customer's current consent; return those changes.

    Each change is a `Consent Updated` event from `source` by `changed_by`; a choice equal to
    the current state (even a default) records nothing. Unknown purposes refuse the whole lot.
    """
    unknown = sorted(set(choices) - set(purposes))
    if unknown:
        raise ConsentError(
            f"unknown purpose{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}; "
            f"valid purposes: {', '.join(purposes)}"
        )
    current = customer_consent(db, customer_id, purposes, granted_by_default)["purposes"]
    changes = []
    for purpose in purposes:  # in the configured order, whatever order the choices came in
        if purpose in choices and bool(choices[purpose]) != current[purpose]["granted"]:
            record_consent(
                db,
                customer_id,
                purpose,
                bool(choices[purpose]),
                purposes=purposes,
                source=source,
                changed_by=changed_by,
            )
            changes.append({"purpose": purpose, "granted": bool(choices[purpose])})
    return changes
