"""Voice of the customer: surveys (NPS, CSAT), reviews, feedback and ideas, with free text."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from troth.demo.browsing import PRODUCTS
from troth.demo.cohort import Cohort, Occurrences
from troth.demo.events import APP, WEB, Piece
from troth.demo.jsontext import boolean, integer, json_object, pick, quoted
from troth.demo.period import DAY
from troth.demo.population import by_typology
from troth.demo.vocabulary import (
    FEEDBACK_TOPICS,
    IDEAS,
    NEGATIVE_PHRASES,
    NEUTRAL_PHRASES,
    POSITIVE_PHRASES,
)

__all__ = ["listen"]

# A customer's 0-10 score: normal around a mean, clipped to the typology's range.
_SCORE_MEAN = by_typology(
    deal_seeker=6.5,
    loyal_fan=9.5,
    quietly_retained=7.5,
    unhappy_complainer=3.0,
    vocal_advocate=9.7,
    browser=6.5,
    lapsed=7.0,
)
_SCORE_SD = by_typology(
    deal_seeker=1.5,
    loyal_fan=0.6,
    quietly_retained=1.0,
    unhappy_complainer=2.0,
    vocal_advocate=0.5,
    browser=1.5,
    lapsed=1.5,
)
_SCORE_LOW = by_typology(
    deal_seeker=3,
    loyal_fan=9,
    quietly_retained=5,
    unhappy_complainer=0,
    vocal_advocate=9,
    browser=2,
    lapsed=3,
)
_SCORE_HIGH = by_typology(
    deal_seeker=9,
    loyal_fan=10,
    quietly_retained=9,
    unhappy_complainer=6,
    vocal_advocate=10,
    browser=9,
    lapsed=9,
)
# Satisfaction sours in the weeks before a customer drops out.
_SOURING_DAYS = 60
_SOURING_POINTS = 3.0
# Quietly retained customers never answer: their loyalty shows only in what they buy.
_SURVEYS = by_typology(
    deal_seeker=0.04,
    loyal_fan=0.25,
    quietly_retained=0.0,
    unhappy_complainer=0.25,
    vocal_advocate=0.3,
    browser=0.03,
    lapsed=0.15,
)
_REVIEWS = by_typology(
    deal_seeker=0.03,
    loyal_fan=0.12,
    quietly_retained=0.0,
    unhappy_complainer=0.25,
    vocal_advocate=0.4,
    browser=0.01,
    lapsed=0.05,
)
_FEEDBACK = by_typology(
    deal_seeker=0.02,
    loyal_fan=0.05,
    quietly_retained=0.0,
    unhappy_complainer=0.2,
    vocal_advocate=0.15,
    browser=0.01,
    lapsed=0.05,
)
_IDEAS = by_typology(
    deal_seeker=0.0,
    loyal_fan=0.03,
    quietly_retained=0.0,
    unhappy_complainer=0.0,
    vocal_advocate=0.25,
    browser=0.0,
    lapsed=0.0,
)


def _scores(cohort: Cohort, name: str, at: Occurrences) -> np.ndarray:
    """Return a 0-10 score per occurrence from the customer's typology and nearness to dropout."""
    typology = cohort.population.typology[at.customer]
    mean = _SCORE_MEAN[typology] - _SOURING_POINTS * (
        cohort.journeys.churn_at[at.customer] - at.time < _SOURING_DAYS * DAY
    )
    raw = np.rint(mean + _SCORE_SD[typology] * cohort.normal(name, at))
    return np.clip(raw, _SCORE_LOW[typology], _SCORE_HIGH[typology]).astype(np.int64)


def _text(cohort: Cohort, name: str, at: Occurrences, sentiment: np.ndarray) -> pa.Array:
    """Return a phrase per occurrence: sentiment 2 positive, 1 neutral, 0 negative."""
    phrases = NEGATIVE_PHRASES + NEUTRAL_PHRASES + POSITIVE_PHRASES
    first = np.array([0, len(NEGATIVE_PHRASES), len(NEGATIVE_PHRASES) + len(NEUTRAL_PHRASES)])
    size = np.array([len(NEGATIVE_PHRASES), len(NEUTRAL_PHRASES), len(POSITIVE_PHRASES)])
    offset = (cohort.uniform(name, at, lane=6) * size[sentiment]).astype(np.int64)
    return pick(phrases, first[sentiment] + offset)


def _sentiment(score: np.ndarray) -> np.ndarray:
    """Return NPS groups as sentiment: promoters 2, passives 1, detractors 0."""
    return np.select([score >= 9, score >= 7], [2, 1], 0)


def _surveys(cohort: Cohort, since: np.ndarray, until: np.ndarray) -> Piece:
    """Return Survey Responded with nps 0-10, csat 1-5 and a comment matching the score."""
    at = cohort.occurrences("sv", since, until, cohort.typed(_SURVEYS))
    nps = _scores(cohort, "sv.nps", at)
    csat = np.clip(np.rint(1 + 0.4 * nps + 0.5 * cohort.normal("sv.csat", at)), 1, 5)
    month = pc.strftime(pa.array(at.time, pa.timestamp("us", "UTC")), format="%Y-%m")
    properties = json_object(
        {
            "survey_id": quoted(pc.binary_join_element_wise("nps-", month, "")),
            "nps": integer(nps),
            "csat": integer(csat),
            "text": quoted(_text(cohort, "sv.text", at, _sentiment(nps))),
        }
    )
    return Piece(
        "sv", "track", at, event="Survey Responded", channel="surveys", properties=properties
    )


def _reviews(cohort: Cohort, until: np.ndarray) -> Piece:
    """Return Review Posted with a 1-5 rating, text to match, and where it was posted."""
    since = cohort.reaching(
        deal_seeker="satisfaction",
        loyal_fan="satisfaction",
        quietly_retained="satisfaction",
        unhappy_complainer="interaction",
        vocal_advocate="satisfaction",
        browser="interaction",
        lapsed="satisfaction",
    )
    at = cohort.occurrences("rv", since, until, cohort.typed(_REVIEWS))
    rating = np.clip(np.rint(_scores(cohort, "rv.score", at) / 2), 1, 5).astype(np.int64)
    sentiment = np.select([rating >= 4, rating == 3], [2, 1], 0)
    place = cohort.stream("rv.place").choice(
        cohort.population.index[at.customer], np.array([0.7, 0.2, 0.1]), at.n
    )
    place = np.where((place == 2) & ~cohort.population.has_app[at.customer], 1, place)
    # Segment's spec puts the review site in properties.channel; Troth reads that as the
    # touchpoint, so the row's channel is the same value.
    channel = pa.array(("reviews", "web", "app")).take(place)
    product = cohort.integers("rv.product", at, PRODUCTS)
    properties = json_object(
        {
            "rating": integer(rating),
            "text": quoted(_text(cohort, "rv.text", at, sentiment)),
            "channel": quoted(channel),
            "product_id": quoted(
                pc.binary_join_element_wise(
                    "p", pc.utf8_lpad(integer(product), width=4, padding="0"), ""
                )
            ),
        }
    )
    device = np.choose(place, [0, WEB, APP])
    return Piece(
        "rv",
        "track",
        at,
        event="Review Posted",
        channel=channel,
        device=device,
        properties=properties,
    )


def _feedback(cohort: Cohort, since: np.ndarray, until: np.ndarray) -> Piece:
    """Return Feedback Given: a topic and a comment whose tone follows the customer's mood."""
    at = cohort.occurrences("fb", since, until, cohort.typed(_FEEDBACK))
    topic = pick(FEEDBACK_TOPICS, cohort.integers("fb.topic", at, len(FEEDBACK_TOPICS)))
    sentiment = _sentiment(_scores(cohort, "fb.score", at))
    properties = json_object(
        {"topic": quoted(topic), "text": quoted(_text(cohort, "fb.text", at, sentiment))}
    )
    return Piece("fb", "track", at, event="Feedback Given", device=WEB, properties=properties)


def _ideas(cohort: Cohort, until: np.ndarray) -> Piece:
    """Return Idea Submitted; some ideas are later marked adopted (or not)."""
    since = cohort.reaching(
        deal_seeker="engagement",
        loyal_fan="commitment",
        quietly_retained="engagement",
        unhappy_complainer="engagement",
        vocal_advocate="engagement",
        browser="engagement",
        lapsed="engagement",
    )
    at = cohort.occurrences("id", since, until, cohort.typed(_IDEAS))
    idea = cohort.integers("id.idea", at, len(IDEAS))
    decided = cohort.uniform("id.decided", at) < 0.4
    adopted = cohort.uniform("id.adopted", at) < 0.35
    properties = json_object(
        {
            "idea_id": quoted(
                pc.binary_join_element_wise(
                    "idea-", integer(cohort.population.index[at.customer]), "-", integer(at.n), ""
                )
            ),
            "title": quoted(pick(IDEAS, idea)),
        },
        optional={"adopted": (boolean(adopted), decided)},
    )
    return Piece(
        "id", "track", at, event="Idea Submitted", channel="community", properties=properties
    )


def listen(cohort: Cohort) -> list[Piece]:
    """Return what a cohort says: surveys, reviews, feedback and ideas."""
    since = cohort.journeys.at_least("interaction")
    until = cohort.journeys.alive_until(cohort.period)
    return [
        _surveys(cohort, since, until),
        _reviews(cohort, until),
        _feedback(cohort, since, until),
        _ideas(cohort, until),
    ]
