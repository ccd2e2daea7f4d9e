"""Who the demo customers are: typologies and each customer's latent attributes.

Every attribute is a pure function of (seed, customer index), so any customer can be drawn on
its own: referrals and duplicate accounts look up other customers without generating them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from troth.demo.period import DAY, MONTH, NEVER, Period
from troth.demo.randomness import RandomStream
from troth.demo.vocabulary import TIMEZONES

__all__ = [
    "LEVELS",
    "PLANS",
    "TYPOLOGIES",
    "Population",
    "Typology",
    "by_typology",
    "draw_population",
]

# Sashi (2012)'s customer engagement cycle, lowest to highest.
LEVELS = (
    "connection",
    "interaction",
    "satisfaction",
    "retention",
    "commitment",
    "advocacy",
    "engagement",
)
PLANS = ("free", "basic", "premium")


@dataclass(frozen=True)
class Typology:
    """A kind of customer: how common it is and how its journey through the cycle unfolds."""

    name: str
    share: float
    description: str
    path: tuple[str, ...]  # levels this kind passes through, in order
    peak_weights: tuple[float, ...]  # chance of the journey peaking at each step of `path`
    level_gap_days: float  # mean time between reaching consecutive levels
    existing_share: float  # already a customer when the period starts
    anonymous_share: float  # new customers who browse anonymously before identifying
    never_identify_share: float
    app_share: float  # uses the app too (a second device and anonymousId)
    lifetime_months: float  # mean time until dropout (Pareto/NBD's exponential lifetime)
    orders_per_month: float  # mean purchase rate while alive (Pareto/NBD's lambda)
    spend_mean: float  # mean order value, EUR
    plan_weights: tuple[float, float, float]  # free, basic, premium


_BUYER = ("connection", "interaction", "satisfaction", "retention")
TYPOLOGIES: dict[str, Typology] = {
    t.name: t
    for t in (
        Typology(
            "deal_seeker",
            0.16,
            "Buys when there is a discount, opens emails, little loyalty.",
            path=_BUYER,
            peak_weights=(0.0, 0.6, 0.25, 0.15),
            level_gap_days=20,
            existing_share=0.3,
            anonymous_share=0.8,
            never_identify_share=0.0,
            app_share=0.4,
            lifetime_months=14,
            orders_per_month=0.8,
            spend_mean=38,
            plan_weights=(0.7, 0.25, 0.05),
        ),
        Typology(
            "loyal_fan",
            0.14,
            "Buys regularly, rates 9-10, reviews positively.",
            path=(*_BUYER, "commitment", "advocacy"),
            peak_weights=(0, 0, 0, 0.2, 0.6, 0.2),
            level_gap_days=45,
            existing_share=0.5,
            anonymous_share=0.6,
            never_identify_share=0.0,
            app_share=0.6,
            lifetime_months=60,
            orders_per_month=1.0,
            spend_mean=80,
            plan_weights=(0.2, 0.4, 0.4),
        ),
        Typology(
            "quietly_retained",
            0.16,
            "Repeat buyer who never gives feedback (cognitive loyalty).",
            path=("connection", "interaction", "retention"),
            peak_weights=(0, 0, 1.0),
            level_gap_days=60,
            existing_share=0.5,
            anonymous_share=0.5,
            never_identify_share=0.0,
            app_share=0.4,
            lifetime_months=48,
            orders_per_month=0.9,
            spend_mean=70,
            plan_weights=(0.3, 0.5, 0.2),
        ),
        Typology(
            "unhappy_complainer",
            0.10,
            "Opens tickets, scores 0-6, reviews badly, often churns.",
            path=("connection", "interaction"),
            peak_weights=(0, 1.0),
            level_gap_days=15,
            existing_share=0.3,
            anonymous_share=0.6,
            never_identify_share=0.0,
            app_share=0.3,
            lifetime_months=7,
            orders_per_month=0.45,
            spend_mean=60,
            plan_weights=(0.4, 0.4, 0.2),
        ),
        Typology(
            "vocal_advocate",
            0.06,
            "Rates highly, reviews, shares, refers and helps others.",
            path=LEVELS,
            peak_weights=(0, 0, 0, 0, 0, 0.5, 0.5),
            level_gap_days=35,
            existing_share=0.45,
            anonymous_share=0.6,
            never_identify_share=0.0,
            app_share=0.6,
            lifetime_months=72,
            orders_per_month=1.1,
            spend_mean=90,
            plan_weights=(0.1, 0.4, 0.5),
        ),
        Typology(
            "browser",
            0.24,
            "Mostly anonymous page and product views; rarely buys.",
            path=("connection", "interaction"),
            peak_weights=(0.8, 0.2),
            level_gap_days=30,
            existing_share=0.05,
            anonymous_share=1.0,
            never_identify_share=0.45,
            app_share=0.2,
            lifetime_months=6,
            orders_per_month=0.15,
            spend_mean=45,
            plan_weights=(0.9, 0.1, 0.0),
        ),
        Typology(
            "lapsed",
            0.14,
            "Active early in the period, then stops and falls back.",
            path=_BUYER,
            peak_weights=(0, 0.3, 0.3, 0.4),
            level_gap_days=25,
            existing_share=0.6,
            anonymous_share=0.6,
            never_identify_share=0.0,
            app_share=0.3,
            lifetime_months=4,
            orders_per_month=0.8,
            spend_mean=60,
            plan_weights=(0.4, 0.4, 0.2),
        ),
    )
}
_TYPOLOGY_ORDER = tuple(TYPOLOGIES)


def by_typology(**values: float) -> np.ndarray:
    """Return one value per typology (float64, in TYPOLOGIES order) from keyword arguments."""
    if set(values) != set(_TYPOLOGY_ORDER):
        missing = sorted(set(_TYPOLOGY_ORDER) ^ set(values))
        raise ValueError(f"give a value for every typology exactly; check: {missing}")
    return np.array([values[name] for name in _TYPOLOGY_ORDER], dtype=np.float64)


def _attribute(name: str) -> np.ndarray:
    """Return a Typology field as an array in TYPOLOGIES order."""
    return np.array([getattr(t, name) for t in TYPOLOGIES.values()], dtype=np.float64)


@dataclass(frozen=True)
class Population:
    """Latent attributes of customers (one element per customer; times in microseconds)."""

    index: np.ndarray  # global customer number, the key of all randomness
    typology: np.ndarray  # position in TYPOLOGIES
    existing: np.ndarray  # a customer before the period started
    identified_at: np.ndarray  # sign-up (or NEVER: an anonymous visitor only)
    first_seen: np.ndarray  # first (possibly anonymous) visit
    last_seen: np.ndarray  # end of an anonymous-only visitor's browsing, else NEVER
    has_app: np.ndarray
    has_phone: np.ndarray
    timezone: np.ndarray  # position in vocabulary.TIMEZONES
    plan: np.ndarray  # position in PLANS
    legacy_until: np.ndarray  # an old userId is used before this moment (-NEVER: none)
    duplicate_of: np.ndarray  # an earlier customer whose email this record shares, or -1
    company: np.ndarray  # B2B company number, or -1
    total: int  # customers in the whole population (for looking up others)

    def __len__(self) -> int:
        return len(self.index)


def _draw_typology(seed: int, index: np.ndarray) -> np.ndarray:
    """Return each customer's typology number."""
    return RandomStream(seed, "typology").choice(index, _attribute("share"))


def draw_population(seed: int, index: np.ndarray, total: int, period: Period) -> Population:
    """Return the Population of the given global customer numbers (out of `total`)."""
    index = np.asarray(index, dtype=np.int64)
    typology = _draw_typology(seed, index)
    stream = RandomStream(seed, "population")
    existing, never = _draw_status(seed, index, typology)
    lapsed = typology == _TYPOLOGY_ORDER.index("lapsed")
    # Lapsed customers must be active early to be able to fall back within the period.
    joined_within = np.where(lapsed, 0.5, 1.0) * period.span
    new_signup = period.start + (stream.uniform(index, 1) * joined_within).astype(np.int64)
    # Existing customers' tenure: up to three years before the period.
    tenure = (stream.uniform(index, 2) * 36 * MONTH).astype(np.int64)
    signup = np.where(existing, period.start - tenure, new_signup)

    anonymous_first = ~existing & (
        never | (stream.uniform(index, 4) < _attribute("anonymous_share")[typology])
    )
    lead_time = (stream.exponential(index, 5) * 12 * DAY).astype(np.int64)
    first_seen = np.where(anonymous_first, signup - lead_time, signup)
    # Anonymous-only visitors browse for a few weeks from their first visit, then go.
    visit = (stream.exponential(index, 6) * 20 * DAY).astype(np.int64)
    first_seen = np.where(never, new_signup, first_seen)
    last_seen = np.where(never, new_signup + visit, NEVER)
    identified_at = np.where(never, NEVER, signup)

    has_app = stream.uniform(index, 7) < _attribute("app_share")[typology]
    has_phone = ~never & (stream.uniform(index, 8) < 0.55)
    weights = np.array([w for _, w in TIMEZONES])
    timezone = stream.choice(index, weights, 9)
    plan_weights = np.array([t.plan_weights for t in TYPOLOGIES.values()])[typology]
    plan = (stream.uniform(index, 10)[:, None] > np.cumsum(plan_weights, axis=1)).sum(axis=1)
    plan = np.minimum(plan, len(PLANS) - 1)

    # Some long-standing customers come from a legacy system whose userId is replaced (and
    # aliased) early in the period.
    legacy = existing & (stream.uniform(index, 11) < 0.25)
    migrated = period.start + (stream.uniform(index, 12) * 0.4 * period.span).astype(np.int64)
    legacy_until = np.where(legacy, migrated, -NEVER)

    duplicate_of = _draw_duplicates(seed, index, never)
    b2b = ~never & (stream.uniform(index, 13) < 0.05)
    companies = max(1, total // 40)
    company = np.where(b2b, stream.integers(index, companies, 14), -1)
    return Population(
        index=index,
        typology=typology,
        existing=existing,
        identified_at=identified_at,
        first_seen=first_seen,
        last_seen=last_seen,
        has_app=has_app,
        has_phone=has_phone,
        timezone=timezone,
        plan=plan,
        legacy_until=legacy_until,
        duplicate_of=duplicate_of,
        company=company,
        total=total,
    )


def _draw_status(
    seed: int, index: np.ndarray, typology: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Return (already a customer at the start, never identifies) per customer, both bool."""
    stream = RandomStream(seed, "status")
    existing = stream.uniform(index, 0) < _attribute("existing_share")[typology]
    never = ~existing & (stream.uniform(index, 1) < _attribute("never_identify_share")[typology])
    return existing, never


def _draws_duplicate(seed: int, index: np.ndarray) -> np.ndarray:
    """Return whether each customer opened a second account with the same email (bool)."""
    return RandomStream(seed, "duplicate").uniform(index) < 0.02


def _draw_duplicates(seed: int, index: np.ndarray, never: np.ndarray) -> np.ndarray:
    """Return, per customer, the earlier customer whose email it reuses, or -1."""
    wants = ~never & _draws_duplicate(seed, index) & (index > 0)
    candidates = RandomStream(seed, "duplicate.of").integers(index[wants], index[wants])
    # The original must itself be an identified, non-duplicate account, or the shared email
    # would belong to nobody; checking costs one more draw of those few customers.
    _, never_original = _draw_status(seed, candidates, _draw_typology(seed, candidates))
    ok = ~_draws_duplicate(seed, candidates) & ~never_original
    result = np.full(index.shape, -1, dtype=np.int64)
    result[np.flatnonzero(wants)[ok]] = candidates[ok]
    return result
