"""Ethics and trust: consent choices, data shared and requested, causes supported."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from troth.demo.cohort import Cohort, Occurrences
from troth.demo.events import WEB, Piece
from troth.demo.jsontext import boolean, json_object, number, pick, quoted
from troth.demo.marketing import draw_unsubscribes
from troth.demo.period import SECOND
from troth.demo.population import by_typology
from troth.demo.vocabulary import CAUSES, DATA_FIELD_SETS

__all__ = ["PURPOSES", "build_trust"]

PURPOSES = (
    "analytics",
    "personalisation",
    "profiling",
    "marketing:email",
    "marketing:sms",
    "marketing:call",
    "marketing:push",
)
# How readily a purpose is granted, relative to the customer's general trust.
_PURPOSE_FACTOR = np.array([1.2, 1.0, 0.6, 1.0, 0.7, 0.5, 0.9])
_TRUST = by_typology(
    deal_seeker=0.6,
    loyal_fan=0.8,
    quietly_retained=0.5,
    unhappy_complainer=0.3,
    vocal_advocate=0.9,
    browser=0.4,
    lapsed=0.5,
)
_CHOICE_AT_SIGNUP = 0.6  # chance a purpose is explicitly chosen in the sign-up banner
_CONSENT_CHANGES = 0.03  # per month
_DATA_SHARED = by_typology(
    deal_seeker=0.03,
    loyal_fan=0.1,
    quietly_retained=0.03,
    unhappy_complainer=0.01,
    vocal_advocate=0.12,
    browser=0.01,
    lapsed=0.03,
)
_DATA_REQUESTED = 0.04  # per month: the company asks every customer now and then
_REASON_GIVEN = 0.7
_CAUSES = by_typology(
    deal_seeker=0.01,
    loyal_fan=0.06,
    quietly_retained=0.01,
    unhappy_complainer=0.01,
    vocal_advocate=0.1,
    browser=0.01,
    lapsed=0.01,
)


def _consents(cohort: Cohort) -> list[Piece]:
    """Return Consent Updated: choices at sign-up, later changes, and opt-outs on unsubscribe."""
    population = cohort.population
    stream = cohort.stream("consent.signup")
    new = ~population.existing
    purposes = np.arange(len(PURPOSES))
    chooses = new[:, None] & (
        stream.uniform(population.index[:, None], purposes[None, :]) < _CHOICE_AT_SIGNUP
    )
    customer, purpose = np.nonzero(chooses)
    signup = Occurrences(
        customer,
        purpose,
        population.identified_at[customer] + (3 + purpose) * SECOND,
    )
    later = cohort.occurrences(
        "cl", population.identified_at, cohort.journeys.alive_until(cohort.period), _CONSENT_CHANGES
    )
    later_purpose = cohort.integers("cl.purpose", later, len(PURPOSES))
    unsubscribed = cohort.once(draw_unsubscribes(cohort) + SECOND)

    def grants(name: str, at: Occurrences, purpose: np.ndarray) -> pa.Array:
        """Return whether each choice grants the purpose, as JSON booleans."""
        chance = np.clip(cohort.typed(_TRUST)[at.customer] * _PURPOSE_FACTOR[purpose], 0, 0.97)
        return boolean(cohort.uniform(name, at) < chance)

    return [
        Piece(
            "cg",
            "track",
            signup,
            event="Consent Updated",
            device=WEB,
            properties=json_object(
                {
                    "purpose": quoted(pick(PURPOSES, purpose)),
                    "granted": grants("cg.granted", signup, purpose),
                }
            ),
        ),
        Piece(
            "cl",
            "track",
            later,
            event="Consent Updated",
            device=WEB,
            properties=json_object(
                {
                    "purpose": quoted(pick(PURPOSES, later_purpose)),
                    "granted": grants("cl.granted", later, later_purpose),
                }
            ),
        ),
        Piece(
            "cu",
            "track",
            unsubscribed,
            event="Consent Updated",
            channel="email",
            properties=json_object(
                {
                    "purpose": quoted(pick(PURPOSES, np.full(len(unsubscribed), 3))),
                    "granted": boolean(np.zeros(len(unsubscribed), dtype=bool)),
                }
            ),
        ),
    ]


def build_trust(cohort: Cohort) -> list[Piece]:
    """Return a cohort's trust events: consent, data shared and requested, causes."""
    population = cohort.population
    until = cohort.journeys.alive_until(cohort.period)
    sharing_since = cohort.reaching(
        deal_seeker="interaction",
        loyal_fan="commitment",
        quietly_retained="retention",
        unhappy_complainer="interaction",
        vocal_advocate="commitment",
        browser="interaction",
        lapsed="interaction",
    )
    shared = cohort.occurrences("ds", sharing_since, until, cohort.typed(_DATA_SHARED))
    requested = cohort.occurrences(
        "dr", population.identified_at, cohort.period.end, _DATA_REQUESTED
    )
    causes = cohort.occurrences("cv", sharing_since, until, cohort.typed(_CAUSES))
    amount = 5 * (
        1
        + (
            cohort.stream("cv.amount").exponential(population.index[causes.customer], causes.n) * 3
        ).astype(np.int64)
    )
    return [
        *_consents(cohort),
        Piece(
            "ds",
            "track",
            shared,
            event="Data Shared",
            device=WEB,
            properties=json_object(
                {
                    "fields": pick(
                        DATA_FIELD_SETS, cohort.integers("ds.fields", shared, len(DATA_FIELD_SETS))
                    )
                }
            ),
        ),
        Piece(
            "dr",
            "track",
            requested,
            event="Data Requested",
            channel="email",
            properties=json_object(
                {
                    "fields": pick(
                        DATA_FIELD_SETS,
                        cohort.integers("dr.fields", requested, len(DATA_FIELD_SETS)),
                    ),
                    "reason_given": boolean(cohort.uniform("dr.reason", requested) < _REASON_GIVEN),
                }
            ),
        ),
        Piece(
            "cv",
            "track",
            causes,
            event="Cause Supported",
            device=WEB,
            properties=json_object(
                {
                    "cause": quoted(pick(CAUSES, cohort.integers("cv.cause", causes, len(CAUSES)))),
                    "amount": number(amount),
                    "currency": '"EUR"',
                }
            ),
        ),
    ]
