"""A chunk of customers with everything the event generators need to know about them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from troth.demo.journeys import Journeys, plan_journeys
from troth.demo.names import Names, name_customers
from troth.demo.period import MONTH, Period
from troth.demo.population import LEVELS, TYPOLOGIES, Population, draw_population
from troth.demo.randomness import RandomStream, draw_poisson

__all__ = ["Cohort", "Occurrences", "gather_cohort"]


@dataclass(frozen=True)
class Occurrences:
    """Moments of events: which customer (position in the cohort), its ordinal, and when."""

    customer: np.ndarray
    n: np.ndarray  # 0, 1, 2 ... per customer: with the customer, a stable key for draws
    time: np.ndarray  # microseconds since the epoch

    def __len__(self) -> int:
        return len(self.customer)

    def where(self, keep: np.ndarray) -> Occurrences:
        """Return only the occurrences where `keep` is true."""
        return Occurrences(self.customer[keep], self.n[keep], self.time[keep])


@dataclass(frozen=True)
class Cohort:
    """Customers of one chunk: latent population, journeys and names, plus the period."""

    seed: int
    period: Period
    population: Population
    journeys: Journeys
    names: Names

    def __len__(self) -> int:
        return len(self.population)

    def stream(self, name: str) -> RandomStream:
        """Return the named RandomStream of this generation's seed."""
        return RandomStream(self.seed, name)

    def typed(self, values: np.ndarray) -> np.ndarray:
        """Return each customer's entry of a per-typology array (see population.by_typology)."""
        return values[self.population.typology]

    def reaching(self, **levels: str) -> np.ndarray:
        """Return when each customer reaches the level given for its typology (or NEVER).

        Keywords are typology names, values level names: the same event can mark a low level
        for one kind of customer (a complainer's review) and a high one for another.
        """
        if set(levels) != set(TYPOLOGIES):
            raise ValueError(f"give a level for every typology: {sorted(TYPOLOGIES)}")
        position = np.array([LEVELS.index(levels[name]) for name in TYPOLOGIES])
        return self.journeys.at_least(position[self.population.typology])

    def occurrences(
        self,
        name: str,
        start: np.ndarray,
        stop: np.ndarray,
        per_month: np.ndarray | float,
    ) -> Occurrences:
        """Return a Poisson process per customer with rate `per_month` on [start, stop).

        The window is clipped to the period; an empty or inverted window yields nothing.
        """
        stream = self.stream(name)
        index = self.population.index
        lo = np.maximum(np.asarray(start, dtype=np.int64), self.period.start)
        hi = np.minimum(np.asarray(stop, dtype=np.int64), self.period.end)
        span = np.maximum(hi - lo, 0)
        mean = np.broadcast_to(per_month, span.shape) * (span / MONTH)
        counts = draw_poisson(mean, stream.uniform(index, 0, lane=5), stream.normal(index, 0))
        customer = np.repeat(np.arange(len(index)), counts)
        first = np.cumsum(counts) - counts
        n = np.arange(len(customer)) - np.repeat(first, counts)
        offset = stream.uniform(index[customer], n + 1) * span[customer]
        return Occurrences(customer, n, lo[customer] + offset.astype(np.int64))

    def once(self, time: np.ndarray, keep: np.ndarray | None = None) -> Occurrences:
        """Return one occurrence per customer at `time` (where `keep`), ordinal 0."""
        keep = np.ones(len(self), dtype=bool) if keep is None else np.asarray(keep, dtype=bool)
        keep = keep & (time >= self.period.start) & (time < self.period.end)
        customer = np.flatnonzero(keep)
        return Occurrences(customer, np.zeros(len(customer), dtype=np.int64), time[customer])

    def chance(self, name: str, at: Occurrences, probability: np.ndarray | float) -> np.ndarray:
        """Return, per occurrence, whether an event with chance `probability` happens (bool)."""
        return self.uniform(name, at, lane=7) < probability

    def delay(self, name: str, at: Occurrences, mean: np.ndarray | float) -> Occurrences:
        """Return the occurrences moved later by an exponential delay (mean in microseconds).

        Ordinals are kept, so each delayed event can be traced back to its cause.
        """
        lag = self.stream(name).exponential(self.population.index[at.customer], at.n, 8) * mean
        return Occurrences(at.customer, at.n, at.time + lag.astype(np.int64) + 1)

    def follow(
        self,
        name: str,
        parent: Occurrences,
        probability: np.ndarray | float,
        mean_delay: float,
    ) -> Occurrences:
        """Return events following some of `parent`'s (chance `probability` each), later."""
        return self.delay(name, parent.where(self.chance(name, parent, probability)), mean_delay)

    def uniform(self, name: str, at: Occurrences, lane: int = 0) -> np.ndarray:
        """Return a uniform float per occurrence from the named stream."""
        return self.stream(name).uniform(self.population.index[at.customer], at.n, lane)

    def normal(self, name: str, at: Occurrences) -> np.ndarray:
        """Return a standard normal float per occurrence from the named stream."""
        return self.stream(name).normal(self.population.index[at.customer], at.n)

    def integers(self, name: str, at: Occurrences, high: int) -> np.ndarray:
        """Return an integer in [0, high) per occurrence from the named stream."""
        return self.stream(name).integers(self.population.index[at.customer], high, at.n)


def gather_cohort(seed: int, index: np.ndarray, total: int, period: Period) -> Cohort:
    """Return the Cohort of the given global customer numbers (out of `total`)."""
    population = draw_population(seed, index, total, period)
    journeys = plan_journeys(seed, population, period)
    return Cohort(seed, period, population, journeys, name_customers(seed, population))
