"""Accounts and identities: sign-up, identify, alias and group calls, trials, cancellations."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from troth.demo.cohort import Cohort, Occurrences
from troth.demo.events import APP, WEB, Piece
from troth.demo.jsontext import json_object, pick, quoted
from troth.demo.names import name_companies
from troth.demo.period import DAY, MINUTE, NEVER, SECOND
from troth.demo.population import PLANS, TYPOLOGIES
from troth.demo.vocabulary import CANCEL_REASONS

__all__ = ["open_accounts"]

_IDENTIFY_PER_MONTH = 0.25  # trait refreshes: logins on a new session, profile edits
_GROUP_PER_MONTH = 0.1
_COMPLAINER = list(TYPOLOGIES).index("unhappy_complainer")


def _sign_ups(cohort: Cohort) -> list[Piece]:
    """Return Signed Up, identify (linking the device) and Account Created at sign-up."""
    population = cohort.population
    new = ~population.existing & (population.identified_at < NEVER)
    signed = cohort.once(population.identified_at, new)
    on_app = population.has_app[signed.customer] & (cohort.uniform("signup.device", signed) < 0.25)
    device = np.where(on_app, APP, WEB)
    channel = pc.if_else(pa.array(on_app), "app", "web")
    method = pick(("email", "google", "apple"), cohort.integers("signup.method", signed, 3))
    identify_at = Occurrences(signed.customer, signed.n, signed.time + 2 * SECOND)
    created = cohort.follow("account.created", signed, 1.0, 30 * SECOND)
    plan = quoted(pick(PLANS, population.plan[created.customer]))
    return [
        Piece(
            "su",
            "track",
            signed,
            event="Signed Up",
            channel=channel,
            device=device,
            properties=json_object({"method": quoted(method)}),
        ),
        Piece(
            "is",
            "identify",
            identify_at,
            channel=channel,
            device=device,
            traits=cohort.names.traits.take(signed.customer),
            context=cohort.names.context.take(signed.customer),
        ),
        Piece(
            "ac", "track", created, event="Account Created", properties=json_object({"plan": plan})
        ),
    ]


def _identifies(cohort: Cohort) -> list[Piece]:
    """Return later identify calls: a first visit in the period, then occasional refreshes."""
    population, journeys = cohort.population, cohort.journeys
    alive_until = journeys.alive_until(cohort.period)
    stream = cohort.stream("identify.first")
    first_visit = cohort.period.start + (stream.exponential(population.index) * 20 * DAY).astype(
        np.int64
    )
    first = cohort.once(first_visit, population.existing & (first_visit < alive_until))
    later = cohort.occurrences("ir", population.identified_at, alive_until, _IDENTIFY_PER_MONTH)
    return [
        Piece(
            code,
            "identify",
            at,
            device=WEB,
            traits=cohort.names.traits.take(at.customer),
            context=cohort.names.context.take(at.customer),
        )
        for code, at in (("if", first), ("ir", later))
    ]


def _aliases(cohort: Cohort) -> list[Piece]:
    """Return alias calls: legacy userIds replaced, and app devices merged into the account."""
    population, names = cohort.population, cohort.names
    migrated = cohort.once(
        population.legacy_until, population.legacy_until > population.identified_at
    )
    alive_until = cohort.journeys.alive_until(cohort.period)
    stream = cohort.stream("alias.app")
    app_alias_at = np.maximum(population.identified_at, cohort.period.start) + (
        stream.exponential(population.index) * 5 * DAY
    ).astype(np.int64)
    wants = population.has_app & (stream.uniform(population.index, 1) < 0.5)
    app = cohort.once(app_alias_at, wants & (app_alias_at < alive_until))
    return [
        Piece("al", "alias", migrated, previous_id=names.legacy_id.take(migrated.customer)),
        Piece(
            "aa",
            "alias",
            app,
            channel="app",
            device=APP,
            previous_id=names.anonymous_app.take(app.customer),
        ),
    ]


def _groups(cohort: Cohort) -> list[Piece]:
    """Return group calls tying B2B customers to their company: a first one, then repeats."""
    population = cohort.population
    alive_until = cohort.journeys.alive_until(cohort.period)
    b2b = population.company >= 0
    stream = cohort.stream("group.first")
    first_at = np.maximum(population.identified_at, cohort.period.start) + (
        stream.exponential(population.index) * 10 * DAY
    ).astype(np.int64)
    first = cohort.once(first_at, b2b & (first_at < alive_until))
    later = cohort.occurrences(
        "gr", population.identified_at, alive_until, np.where(b2b, _GROUP_PER_MONTH, 0.0)
    )
    pieces = []
    for code, at in (("gf", first), ("gr", later)):
        group_id, traits = name_companies(cohort.seed, population.company[at.customer])
        pieces.append(Piece(code, "group", at, group_id=group_id, traits=traits))
    return pieces


def _subscriptions(cohort: Cohort) -> list[Piece]:
    """Return Trial Started for new paying customers and Subscription Cancelled at dropout."""
    population, journeys = cohort.population, cohort.journeys
    paying = population.plan > 0
    stream = cohort.stream("trial")
    trial_at = population.identified_at + (stream.exponential(population.index) * 3 * DAY).astype(
        np.int64
    )
    wants_trial = paying & ~population.existing & (stream.uniform(population.index, 1) < 0.5)
    trials = cohort.once(trial_at, wants_trial & (trial_at < journeys.churn_at))
    plan = quoted(pick(PLANS, population.plan[trials.customer]))
    cancel_at = np.maximum(journeys.churn_at - MINUTE, population.identified_at)
    cancels = cohort.once(cancel_at, paying & (journeys.churn_at < NEVER))
    reason = cohort.integers("cancel.reason", cancels, len(CANCEL_REASONS))
    reason = np.where(
        population.typology[cancels.customer] == _COMPLAINER,
        CANCEL_REASONS.index("bad service"),
        reason,
    )
    return [
        Piece(
            "tt",
            "track",
            trials,
            event="Trial Started",
            properties=json_object({"plan": plan, "trial_days": "14"}),
        ),
        Piece(
            "cx",
            "track",
            cancels,
            event="Subscription Cancelled",
            properties=json_object(
                {
                    "plan": quoted(pick(PLANS, population.plan[cancels.customer])),
                    "reason": quoted(pick(CANCEL_REASONS, reason)),
                }
            ),
        ),
    ]


def open_accounts(cohort: Cohort) -> list[Piece]:
    """Return the account and identity events of a cohort."""
    return [
        *_sign_ups(cohort),
        *_identifies(cohort),
        *_aliases(cohort),
        *_groups(cohort),
        *_subscriptions(cohort),
    ]
