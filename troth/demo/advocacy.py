"""Advocacy and community: posts, accepted answers, shared content and referrals."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from troth.demo.cohort import Cohort, Occurrences
from troth.demo.events import WEB, Piece
from troth.demo.journeys import plan_journeys
from troth.demo.jsontext import integer, json_object, pick, quoted
from troth.demo.names import format_user_ids
from troth.demo.period import DAY, HOUR, MINUTE
from troth.demo.population import by_typology, draw_population
from troth.demo.vocabulary import FEEDBACK_TOPICS, NETWORKS

__all__ = ["advocate"]

_POSTS = by_typology(
    deal_seeker=0.0,
    loyal_fan=0.05,
    quietly_retained=0.0,
    unhappy_complainer=0.03,
    vocal_advocate=0.6,
    browser=0.0,
    lapsed=0.0,
)
_ANSWERS = by_typology(
    deal_seeker=0.0,
    loyal_fan=0.0,
    quietly_retained=0.0,
    unhappy_complainer=0.0,
    vocal_advocate=0.25,
    browser=0.0,
    lapsed=0.0,
)
_SHARES = by_typology(
    deal_seeker=0.01,
    loyal_fan=0.1,
    quietly_retained=0.0,
    unhappy_complainer=0.0,
    vocal_advocate=0.4,
    browser=0.0,
    lapsed=0.0,
)
_REFERRALS = by_typology(  # referrals that do not convert; converted ones come from the referred
    deal_seeker=0.0,
    loyal_fan=0.05,
    quietly_retained=0.0,
    unhappy_complainer=0.0,
    vocal_advocate=0.15,
    browser=0.0,
    lapsed=0.0,
)
_REFERRED_SHARE = 0.08  # new customers who join on a referral
_REFERRER_TRIES = 48  # candidates looked at per referred customer; about 3% qualify


def _reference(cohort: Cohort, prefix: str, at: Occurrences) -> pa.Array:
    """Return ids like "post-123-4" (prefix, customer number, ordinal) for occurrences."""
    return pc.binary_join_element_wise(
        prefix, integer(cohort.population.index[at.customer]), "-", integer(at.n), ""
    )


def _community(cohort: Cohort, until: np.ndarray) -> list[Piece]:
    """Return Community Post, Community Answer Accepted and Content Shared."""
    since = cohort.reaching(
        deal_seeker="interaction",
        loyal_fan="commitment",
        quietly_retained="advocacy",
        unhappy_complainer="interaction",
        vocal_advocate="advocacy",
        browser="advocacy",
        lapsed="advocacy",
    )
    posts = cohort.occurrences("cp", since, until, cohort.typed(_POSTS))
    topic = pick(FEEDBACK_TOPICS, cohort.integers("cp.topic", posts, len(FEEDBACK_TOPICS)))
    expert_since = cohort.reaching(
        deal_seeker="engagement",
        loyal_fan="engagement",
        quietly_retained="engagement",
        unhappy_complainer="engagement",
        vocal_advocate="engagement",
        browser="engagement",
        lapsed="engagement",
    )
    answers = cohort.occurrences("ca", expert_since, until, cohort.typed(_ANSWERS))
    question = cohort.integers("ca.question", answers, 100_000)
    # Sharing and referring are advocacy itself, so only a deal (shared by deal seekers) is
    # shared below that level.
    sharing_since = cohort.reaching(
        deal_seeker="interaction",
        loyal_fan="advocacy",
        quietly_retained="advocacy",
        unhappy_complainer="advocacy",
        vocal_advocate="advocacy",
        browser="advocacy",
        lapsed="advocacy",
    )
    shares = cohort.occurrences("cs", sharing_since, until, cohort.typed(_SHARES))
    network = pick(NETWORKS, cohort.integers("cs.network", shares, len(NETWORKS)))
    reach = np.rint(np.exp(4.0 + 1.2 * cohort.normal("cs.reach", shares))).astype(np.int64)
    return [
        Piece(
            "cp",
            "track",
            posts,
            event="Community Post",
            channel="community",
            properties=json_object(
                {"post_id": quoted(_reference(cohort, "post-", posts)), "topic": quoted(topic)}
            ),
        ),
        Piece(
            "ca",
            "track",
            answers,
            event="Community Answer Accepted",
            channel="community",
            properties=json_object(
                {
                    "post_id": quoted(_reference(cohort, "answer-", answers)),
                    "question_id": quoted(pc.binary_join_element_wise("q", integer(question), "")),
                }
            ),
        ),
        Piece(
            "cs",
            "track",
            shares,
            event="Content Shared",
            device=WEB,
            properties=json_object(
                {
                    "content_id": quoted(_reference(cohort, "share-", shares)),
                    "network": quoted(network),
                    "reach": integer(reach),
                }
            ),
        ),
    ]


def _find_referrers(cohort: Cohort, referred: np.ndarray, sent_at: np.ndarray) -> np.ndarray:
    """Return, per referred customer, a customer who was an advocate when the referral was sent.

    Candidates are drawn from the whole population as pure functions of their number, so the
    pairing does not depend on chunking; -1 where none of the candidates qualified.
    """
    population = cohort.population
    index = population.index[referred]
    tries = np.arange(_REFERRER_TRIES)
    candidate = cohort.stream("referral.referrer").integers(
        np.repeat(index, len(tries)), population.total, np.tile(tries, len(index))
    )
    others = draw_population(cohort.seed, candidate, population.total, cohort.period)
    journeys = plan_journeys(cohort.seed, others, cohort.period)
    sent = np.repeat(sent_at, len(tries))
    qualifies = (
        (candidate != np.repeat(index, len(tries)))
        & (journeys.at_least("advocacy") <= sent)
        & (sent < journeys.churn_at)
    ).reshape(len(index), len(tries))
    chosen = candidate.reshape(len(index), len(tries))[
        np.arange(len(index)), np.argmax(qualifies, axis=1)
    ]
    return np.where(qualifies.any(axis=1), chosen, -1)


def _referrals(cohort: Cohort, until: np.ndarray) -> list[Piece]:
    """Return Referral Sent and Referral Converted.

    A converted referral is emitted with the referred customer (who signs up after it), on
    behalf of the referrer, so no chunk needs to know who another chunk's customers referred.
    """
    population = cohort.population
    since = cohort.reaching(
        deal_seeker="advocacy",
        loyal_fan="advocacy",
        quietly_retained="advocacy",
        unhappy_complainer="advocacy",
        vocal_advocate="advocacy",
        browser="advocacy",
        lapsed="advocacy",
    )
    unconverted = cohort.occurrences("rs", since, until, cohort.typed(_REFERRALS))
    medium = pick(("link", "email", "code"), cohort.integers("rs.medium", unconverted, 3))

    stream = cohort.stream("referral")
    new = ~population.existing & (population.identified_at < cohort.period.end)
    wants = new & (stream.uniform(population.index) < _REFERRED_SHARE)
    referred = np.flatnonzero(wants)
    sent_at = population.identified_at[referred] - (
        HOUR + stream.exponential(population.index[referred], 1) * 5 * DAY
    ).astype(np.int64)
    referrer = _find_referrers(cohort, referred, sent_at)
    found = (referrer >= 0) & (sent_at >= cohort.period.start)
    referred, sent_at, referrer = referred[found], sent_at[found], referrer[found]
    zero = np.zeros(len(referred), dtype=np.int64)
    sent = Occurrences(referred, zero, sent_at)
    converted = Occurrences(referred, zero, population.identified_at[referred] + MINUTE)
    legacy_until = draw_population(
        cohort.seed, referrer, population.total, cohort.period
    ).legacy_until

    def referrer_id(time: np.ndarray) -> pa.Array:
        """Return the referrer's userId at each moment (its legacy one before migration)."""
        return pc.if_else(
            pa.array(time < legacy_until),
            format_user_ids(referrer, "crm-"),
            format_user_ids(referrer),
        )

    referral_id = pc.binary_join_element_wise("ref-", integer(population.index[referred]), "")
    return [
        Piece(
            "rs",
            "track",
            unconverted,
            event="Referral Sent",
            channel="referrals",
            properties=json_object(
                {
                    "referral_id": quoted(_reference(cohort, "ref-", unconverted)),
                    "medium": quoted(medium),
                }
            ),
        ),
        Piece(
            "rb",
            "track",
            sent,
            event="Referral Sent",
            channel="referrals",
            user_id=referrer_id(sent.time),
            properties=json_object({"referral_id": quoted(referral_id), "medium": '"link"'}),
        ),
        Piece(
            "rc",
            "track",
            converted,
            event="Referral Converted",
            channel="referrals",
            user_id=referrer_id(converted.time),
            properties=json_object(
                {
                    "referral_id": quoted(referral_id),
                    "referred_user_id": quoted(cohort.names.user_id.take(referred)),
                }
            ),
        ),
    ]


def advocate(cohort: Cohort) -> list[Piece]:
    """Return the advocacy events of a cohort: community, sharing and referrals."""
    until = cohort.journeys.alive_until(cohort.period)
    return [*_community(cohort, until), *_referrals(cohort, until)]
