"""Each customer's latent journey: when it reaches each engagement level, buys, and drops out.

Purchases follow Pareto/NBD (Schmittlein, Morrison and Colombo 1987): while alive a customer
buys as a Poisson process with rate lambda ~ Gamma, and its lifetime is exponential with rate
mu ~ Gamma, so later CLV models have the process they assume to fit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from troth.demo.period import DAY, MONTH, NEVER, Period
from troth.demo.population import LEVELS, TYPOLOGIES, Population
from troth.demo.randomness import RandomStream, draw_gamma

__all__ = ["TRUTH_SCHEMA", "Journeys", "describe_journeys", "plan_journeys"]

TRUTH_SCHEMA = pa.schema(
    [
        ("userId", pa.string()),
        ("anonymous_ids", pa.list_(pa.string())),
        ("typology", pa.string()),
        ("acquired_at", pa.timestamp("us", tz="UTC")),
        ("journey", pa.string()),
        ("peak_level", pa.string()),
        ("final_level", pa.string()),
        ("churned_at", pa.timestamp("us", tz="UTC")),
        ("identified", pa.bool_()),
        ("previous_user_id", pa.string()),
        ("duplicate_of", pa.string()),
    ]
)
_LEVEL = {name: position for position, name in enumerate(LEVELS)}
# Gamma shapes of the heterogeneity in purchase rate and lifetime across customers.
_RATE_SHAPE = 2.0
_LIFETIME_SHAPE = 3.0


@dataclass(frozen=True)
class Journeys:
    """Latent journeys of a Population (one row per customer; times in microseconds)."""

    reached: np.ndarray  # (customers, levels): when each level was first reached, or NEVER
    churn_at: np.ndarray  # dropout moment (may lie after the period), or NEVER
    orders_per_month: np.ndarray  # purchase rate while alive
    spend_mean: np.ndarray  # mean order value, EUR
    peak: np.ndarray  # highest level reached within the period (position in LEVELS)
    final: np.ndarray  # level intended at the end of the period

    def at_least(self, level: str | np.ndarray) -> np.ndarray:
        """Return when each customer first stood at `level` or higher (microseconds, or NEVER).

        `level` is a level name, or an array of level positions, one per customer.
        """
        # A journey may skip a level (quietly retained customers never show satisfaction),
        # so the gate for "at least L" is the earliest of the levels from L upwards.
        earliest = np.minimum.accumulate(self.reached[:, ::-1], axis=1)[:, ::-1]
        if isinstance(level, str):
            return earliest[:, _LEVEL[level]]
        return earliest[np.arange(len(earliest)), level]

    def alive_until(self, period: Period) -> np.ndarray:
        """Return when each customer stops acting on its own: dropout, or the period's end."""
        return np.minimum(self.churn_at, period.end)


def _path_table() -> tuple[np.ndarray, np.ndarray]:
    """Return (level position of each path step, peak weights) per typology, padded."""
    steps = np.full((len(TYPOLOGIES), len(LEVELS)), -1, dtype=np.int64)
    weights = np.zeros((len(TYPOLOGIES), len(LEVELS)))
    for row, typology in enumerate(TYPOLOGIES.values()):
        if len(typology.path) != len(typology.peak_weights):
            raise ValueError(f"{typology.name}: one peak weight per path level is needed")
        steps[row, : len(typology.path)] = [_LEVEL[name] for name in typology.path]
        weights[row, : len(typology.path)] = typology.peak_weights
    return steps, weights


def _typology_values(name: str) -> np.ndarray:
    """Return a Typology field as an array in TYPOLOGIES order."""
    return np.array([getattr(t, name) for t in TYPOLOGIES.values()], dtype=np.float64)


def _draw_churn(seed: int, population: Population, period: Period) -> np.ndarray:
    """Return each customer's dropout moment (microseconds; NEVER for anonymous-only visitors)."""
    stream = RandomStream(seed, "journey.churn")
    index, typology = population.index, population.typology
    mean_lifetime = _typology_values("lifetime_months")[typology] * MONTH
    # mu ~ Gamma, lifetime ~ Exp(mu): lifetimes are exponential given mu, heterogeneous across.
    rate = draw_gamma(_LIFETIME_SHAPE, 1.0, stream.normal(index, 0))
    lifetime = stream.exponential(index, 1) * mean_lifetime / rate
    # Existing customers were alive at the start; by memorylessness their remaining lifetime
    # is drawn afresh from the start.
    active_from = np.maximum(population.identified_at, period.start)
    churn = active_from + np.minimum(lifetime, 50 * 12 * MONTH).astype(np.int64)
    lapsed = typology == list(TYPOLOGIES).index("lapsed")
    remaining = np.maximum(period.end - active_from, 0)
    early_stop = active_from + ((0.15 + 0.6 * stream.uniform(index, 2)) * remaining).astype(
        np.int64
    )
    churn = np.where(lapsed, early_stop, churn)
    return np.where(population.identified_at >= NEVER, NEVER, churn)


def plan_journeys(seed: int, population: Population, period: Period) -> Journeys:
    """Return the Journeys of a Population: level times, dropout, purchase rate and spend."""
    stream = RandomStream(seed, "journey")
    index, typology = population.index, population.typology
    count = len(population)
    steps, weights = _path_table()
    cumulative = np.cumsum(weights[typology], axis=1)
    peak_step = (stream.uniform(index, 1)[:, None] * cumulative[:, -1:] > cumulative).sum(axis=1)

    reached = np.full((count, len(LEVELS)), NEVER, dtype=np.int64)
    reached[:, _LEVEL["connection"]] = population.first_seen
    gap_mean = _typology_values("level_gap_days")[typology] * DAY
    moment = population.identified_at.copy()
    rows = np.arange(count)
    # Loops over the (at most seven) path steps; each step is vectorised over customers.
    for step in range(1, len(LEVELS)):
        level = steps[typology, step]
        moment = moment + (stream.exponential(index, 10 + step) * gap_mean).astype(np.int64)
        takes = (level >= 0) & (step <= peak_step) & (population.identified_at < NEVER)
        reached[rows[takes], level[takes]] = moment[takes]

    churn_at = _draw_churn(seed, population, period)
    # Levels not reached before dropping out are never reached.
    reached = np.where(reached < churn_at[:, None], reached, NEVER)
    horizon = np.minimum(churn_at, period.end)
    held = reached < horizon[:, None]
    peak = np.where(held.any(axis=1), len(LEVELS) - 1 - np.argmax(held[:, ::-1], axis=1), 0)
    final = np.where(churn_at < period.end, _LEVEL["connection"], peak)

    rate = draw_gamma(_RATE_SHAPE, 1.0, stream.normal(index, 2))
    orders_per_month = rate * _typology_values("orders_per_month")[typology]
    spread = 0.35
    spend_mean = _typology_values("spend_mean")[typology] * np.exp(
        spread * stream.normal(index, 3) - spread**2 / 2
    )
    return Journeys(reached, churn_at, orders_per_month, spend_mean, peak, final)


def _journey_labels() -> list[str]:
    """Return journey texts, addressed by typology * (2 * L + 2) + reached steps * 2 + churned."""
    labels = []
    for typology in TYPOLOGIES.values():
        for steps in range(len(LEVELS) + 1):
            text = ">".join(typology.path[:steps]) or "none"
            labels.extend([text, text + ">lapsed"])
    return labels


def describe_journeys(
    population: Population,
    journeys: Journeys,
    period: Period,
    user_ids: pa.Array,
    anonymous_ids: pa.Array,
    previous_user_ids: pa.Array,
    duplicate_of: pa.Array,
) -> pa.Table:
    """Return the latent truth per customer in TRUTH_SCHEMA (the `.truth.parquet` rows)."""
    horizon = np.minimum(journeys.churn_at, period.end)
    churned = journeys.churn_at < period.end
    held = journeys.reached < horizon[:, None]
    steps, _ = _path_table()
    on_path = steps[population.typology]
    # A journey reaches path steps in order, so counting held steps gives the prefix reached.
    held_steps = (np.take_along_axis(held, np.maximum(on_path, 0), axis=1) & (on_path >= 0)).sum(
        axis=1
    )
    code = population.typology * (2 * len(LEVELS) + 2) + held_steps * 2 + churned
    timestamp = pa.timestamp("us", tz="UTC")
    identified = population.identified_at < NEVER
    levels = pa.array(LEVELS)
    columns = {
        "userId": user_ids,
        "anonymous_ids": anonymous_ids,
        "typology": pa.array(list(TYPOLOGIES)).take(population.typology),
        "acquired_at": pa.array(population.identified_at, timestamp, mask=~identified),
        "journey": pa.array(_journey_labels()).take(code),
        "peak_level": levels.take(journeys.peak),
        "final_level": levels.take(journeys.final),
        "churned_at": pa.array(journeys.churn_at, timestamp, mask=~churned),
        "identified": pa.array(identified),
        "previous_user_id": previous_user_ids,
        "duplicate_of": duplicate_of,
    }
    return pa.Table.from_pydict(columns, schema=TRUTH_SCHEMA)
