"""Company-initiated contact: email campaigns and their opens, push, SMS and outbound calls."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from troth.demo.cohort import Cohort, Occurrences
from troth.demo.events import Piece
from troth.demo.jsontext import boolean, integer, json_object, pick, quoted
from troth.demo.period import DAY, HOUR, MINUTE, MONTH, NEVER, Period
from troth.demo.population import by_typology

__all__ = ["Campaigns", "contact", "draw_unsubscribes", "plan_campaigns"]

_SEND_SHARE = 0.8  # customers included in a given campaign's audience
_OPENS = by_typology(
    deal_seeker=0.55,
    loyal_fan=0.45,
    quietly_retained=0.2,
    unhappy_complainer=0.12,
    vocal_advocate=0.5,
    browser=0.1,
    lapsed=0.3,
)
_CLICKS = by_typology(  # given an open
    deal_seeker=0.45,
    loyal_fan=0.25,
    quietly_retained=0.1,
    unhappy_complainer=0.05,
    vocal_advocate=0.3,
    browser=0.05,
    lapsed=0.15,
)
_SPAM_MARKS = by_typology(  # per delivered email
    deal_seeker=0.002,
    loyal_fan=0.0003,
    quietly_retained=0.0005,
    unhappy_complainer=0.03,
    vocal_advocate=0.0002,
    browser=0.005,
    lapsed=0.004,
)
_UNSUBSCRIBES = by_typology(  # hazard per month
    deal_seeker=0.012,
    loyal_fan=0.002,
    quietly_retained=0.005,
    unhappy_complainer=0.08,
    vocal_advocate=0.001,
    browser=0.03,
    lapsed=0.03,
)
_CALLS = by_typology(
    deal_seeker=0.15,
    loyal_fan=0.08,
    quietly_retained=0.08,
    unhappy_complainer=0.35,
    vocal_advocate=0.08,
    browser=0.05,
    lapsed=0.2,
)
_LAPSED_OPEN_FACTOR = 0.15  # customers who dropped out rarely open what is still sent
_PUSH_PER_MONTH = 1.0
_SMS_PER_MONTH = 0.4
_CALL_PURPOSES = ("sales", "retention", "service", "survey")
_CALL_PURPOSE_WEIGHTS = np.array([0.4, 0.2, 0.3, 0.1])
_SOLICITED = np.array([0.1, 0.2, 0.8, 0.3])  # per purpose: the customer asked to be called
_BAD_TIME = np.array([0.2, 0.1, 0.03, 0.1])  # per purpose: called between 21:30 and 07:30


@dataclass(frozen=True)
class Campaigns:
    """The company's email calendar: when each campaign goes out, its id, whether it is a sale."""

    time: np.ndarray
    campaign_id: pa.Array
    sale: np.ndarray


def plan_campaigns(period: Period) -> Campaigns:
    """Return the period's campaigns: fortnightly Tuesday newsletters, sales on the first and
    third Friday of each month, and Black Friday."""
    first_day = np.datetime64(period.start - period.start % DAY, "us").astype("datetime64[D]")
    days = np.arange(first_day, first_day + period.span // DAY + 2)
    weekday = (days.astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday; Monday is 0
    day_of_month = (days - days.astype("datetime64[M]")).astype(np.int64) + 1
    month = days.astype("datetime64[M]").astype(np.int64) % 12 + 1
    friday = weekday == 4
    black_friday = friday & (month == 11) & (day_of_month >= 23) & (day_of_month <= 29)
    sale = friday & ((day_of_month <= 7) | ((day_of_month >= 15) & (day_of_month <= 21)))
    # Newsletters go out every other Tuesday (even weeks since the epoch).
    newsletter = (weekday == 1) & ((days.astype(np.int64) + 3) // 7 % 2 == 0)
    midnight = days.astype("datetime64[us]").astype(np.int64)
    time = np.concatenate(
        [
            midnight[newsletter] + 9 * HOUR,
            midnight[sale] + 8 * HOUR,
            midnight[black_friday] + 7 * HOUR,
        ]
    )
    kind = np.concatenate(
        [
            np.zeros(newsletter.sum(), dtype=np.int64),
            np.ones(sale.sum(), dtype=np.int64),
            np.full(black_friday.sum(), 2, dtype=np.int64),
        ]
    )
    inside = (time >= period.start) & (time < period.end)
    order = np.argsort(time[inside], kind="stable")
    time, kind = time[inside][order], kind[inside][order]
    date = pc.strftime(pa.array(time, pa.timestamp("us", "UTC")), format="%Y-%m-%d")
    prefix = pick(("newsletter-", "sale-", "black-friday-"), kind)
    return Campaigns(time, pc.binary_join_element_wise(prefix, date, ""), kind > 0)


def draw_unsubscribes(cohort: Cohort) -> np.ndarray:
    """Return when each customer unsubscribes from marketing email (microseconds, or NEVER)."""
    population = cohort.population
    stream = cohort.stream("unsubscribe")
    since = np.maximum(population.identified_at, cohort.period.start)
    wait = stream.exponential(population.index) / cohort.typed(_UNSUBSCRIBES) * MONTH
    return np.where(since < NEVER, since + np.minimum(wait, 1e17).astype(np.int64), NEVER)


def _emails(cohort: Cohort) -> list[Piece]:
    """Return Email Delivered to each audience, then opens, clicks, spam marks, unsubscribes."""
    population, campaigns = cohort.population, plan_campaigns(cohort.period)
    unsubscribed = draw_unsubscribes(cohort)
    stream = cohort.stream("email.audience")
    index = population.index
    number = np.arange(len(campaigns.time))
    receives = (
        (campaigns.time[None, :] >= population.identified_at[:, None])
        & (campaigns.time[None, :] < unsubscribed[:, None])
        & (stream.uniform(index[:, None], number[None, :]) < _SEND_SHARE)
    )
    customer, campaign = np.nonzero(receives)
    jitter = (stream.uniform(index[customer], campaign, lane=1) * 2 * HOUR).astype(np.int64)
    delivered = Occurrences(customer, campaign, campaigns.time[campaign] + jitter)
    churned = delivered.time >= cohort.journeys.churn_at[customer]
    sale = campaigns.sale[campaign]
    open_chance = cohort.typed(_OPENS)[customer] * np.where(churned, _LAPSED_OPEN_FACTOR, 1.0)
    opened_mask = cohort.chance("email.open", delivered, open_chance)
    opened = cohort.delay("email.open", delivered.where(opened_mask), 4 * HOUR)
    click_chance = cohort.typed(_CLICKS)[opened.customer] * np.where(sale[opened_mask], 1.2, 0.6)
    clicked_mask = cohort.chance("email.click", opened, click_chance)
    clicked = cohort.delay("email.click", opened.where(clicked_mask), 3 * MINUTE)
    spam_mask = cohort.chance("email.spam", delivered, cohort.typed(_SPAM_MARKS)[customer])
    spam = cohort.delay("email.spam", delivered.where(spam_mask), DAY)

    def campaign_of(mask_chain: list[np.ndarray]) -> pa.Array:
        """Return the campaign id of the deliveries selected by a chain of masks."""
        chosen = campaign
        for mask in mask_chain:
            chosen = chosen[mask]
        return campaigns.campaign_id.take(chosen)

    link = pick(("/sale", "/blog"), (~sale[opened_mask][clicked_mask]).astype(np.int64))
    unsubscribe = cohort.once(unsubscribed)
    return [
        Piece(
            "ed",
            "track",
            delivered,
            event="Email Delivered",
            channel="email",
            properties=json_object({"campaign_id": quoted(campaign_of([]))}),
        ),
        Piece(
            "eo",
            "track",
            opened,
            event="Email Opened",
            channel="email",
            properties=json_object({"campaign_id": quoted(campaign_of([opened_mask]))}),
        ),
        Piece(
            "ec",
            "track",
            clicked,
            event="Email Link Clicked",
            channel="email",
            properties=json_object(
                {
                    "campaign_id": quoted(campaign_of([opened_mask, clicked_mask])),
                    "link": quoted(link),
                }
            ),
        ),
        Piece(
            "es",
            "track",
            spam,
            event="Email Marked as Spam",
            channel="email",
            properties=json_object({"campaign_id": quoted(campaign_of([spam_mask]))}),
        ),
        Piece(
            "eu",
            "track",
            unsubscribe,
            event="Unsubscribed",
            channel="email",
            properties=json_object(
                {
                    "list": quoted(
                        pick(("newsletter", "offers"), cohort.integers("eu.list", unsubscribe, 2))
                    )
                }
            ),
        ),
    ]


def _local_clock(cohort: Cohort, at: Occurrences) -> tuple[pa.Array, np.ndarray]:
    """Return the customer's local time "HH:MM" at each occurrence, and minutes past midnight."""
    timezone = cohort.population.timezone[at.customer]
    local = at.time + cohort.period.utc_offset(timezone, at.time)
    minutes = (local % DAY) // MINUTE
    hours = pc.utf8_lpad(integer(minutes // 60), width=2, padding="0")
    clock = pc.binary_join_element_wise(
        hours, ":", pc.utf8_lpad(integer(minutes % 60), width=2, padding="0"), ""
    )
    return clock, minutes


def _calls(cohort: Cohort) -> Piece:
    """Return Call Made: outbound calls, some unsolicited and some at bad local times."""
    population = cohort.population
    rate = np.where(population.has_phone, cohort.typed(_CALLS), 0.0)
    drawn = cohort.occurrences("cm", population.identified_at, cohort.period.end, rate)
    purpose = cohort.stream("cm.purpose").choice(
        population.index[drawn.customer], _CALL_PURPOSE_WEIGHTS, drawn.n
    )
    bad = cohort.uniform("cm.bad", drawn) < _BAD_TIME[purpose]
    # Calls are placed at a chosen local time of day: 09:00-19:30, or 21:30-07:30 when bad.
    minute = cohort.uniform("cm.minute", drawn)
    local_minute = np.where(bad, 21.5 * 60 + minute * 10 * 60, 9 * 60 + minute * 10.5 * 60)
    timezone = population.timezone[drawn.customer]
    offset = cohort.period.utc_offset(timezone, drawn.time)
    local_day = drawn.time + offset - (drawn.time + offset) % DAY
    time = local_day + (local_minute * MINUTE).astype(np.int64) - offset
    # Moving a call to its local hour must not place it before the customer was known.
    keep = time >= population.identified_at[drawn.customer]
    at = Occurrences(drawn.customer[keep], drawn.n[keep], time[keep])
    purpose = purpose[keep]
    clock, _ = _local_clock(cohort, at)
    solicited = cohort.uniform("cm.solicited", at) < _SOLICITED[purpose]
    duration = 30 + (
        cohort.stream("cm.duration").exponential(population.index[at.customer], at.n) * 240
    ).astype(np.int64)
    properties = json_object(
        {
            "purpose": quoted(pick(_CALL_PURPOSES, purpose)),
            "solicited": boolean(solicited),
            "customer_local_time": quoted(clock),
            "duration_s": integer(duration),
        }
    )
    return Piece(
        "cm",
        "track",
        at,
        event="Call Made",
        channel="call_centre",
        properties=properties,
        context=cohort.names.context.take(at.customer),
    )


def contact(cohort: Cohort) -> list[Piece]:
    """Return all company-initiated contact with a cohort (it continues after dropout)."""
    population = cohort.population
    pushes = cohort.occurrences(
        "ps",
        population.identified_at,
        cohort.period.end,
        np.where(population.has_app, _PUSH_PER_MONTH, 0.0),
    )
    push_kind = pick(
        ("promotion", "order update", "reminder"), cohort.integers("ps.kind", pushes, 3)
    )
    texts = cohort.occurrences(
        "ss",
        population.identified_at,
        cohort.period.end,
        np.where(population.has_phone, _SMS_PER_MONTH, 0.0),
    )
    sms_purpose = pick(("marketing", "service"), cohort.integers("ss.purpose", texts, 2))
    return [
        *_emails(cohort),
        Piece(
            "ps",
            "track",
            pushes,
            event="Push Sent",
            channel="push",
            properties=json_object({"kind": quoted(push_kind)}),
            context=cohort.names.context.take(pushes.customer),
        ),
        Piece(
            "ss",
            "track",
            texts,
            event="SMS Sent",
            channel="sms",
            properties=json_object({"purpose": quoted(sms_purpose)}),
            context=cohort.names.context.take(texts.customer),
        ),
        _calls(cohort),
    ]
