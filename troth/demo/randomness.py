"""Counter-based random numbers: every draw is a pure function of (seed, stream, customer, counter).

NumPy's generators are sequential, so a customer's numbers would depend on how many customers
were drawn before it, and chunking the population would change its content. Hashing the
counters instead (SplitMix64's finaliser, Steele et al. 2014) gives each customer the same
numbers whatever the chunk size, fully vectorised.
"""

from __future__ import annotations

import hashlib

import numpy as np

__all__ = ["RandomStream", "draw_gamma", "draw_poisson"]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_COUNTER = np.uint64(0xD1B54A32D192ED03)
_LANE = np.uint64(0x8CB92BA72F3D8DD7)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S11 = (np.uint64(s) for s in (30, 27, 31, 11))
_TO_UNIT = 2.0**-53
# Above this mean a Poisson count is drawn from its normal approximation: the inverse-CDF loop
# would need too many steps, and the approximation's error is far below the model's noise.
_POISSON_NORMAL_ABOVE = 25.0


def _mix(x: np.ndarray) -> np.ndarray:
    """Return SplitMix64's finaliser of `x` (uint64, wrapping arithmetic)."""
    x = x ^ (x >> _S30)
    x = x * _M1
    x = x ^ (x >> _S27)
    x = x * _M2
    return x ^ (x >> _S31)


class RandomStream:
    """A named stream of reproducible draws, addressed by customer index and a counter."""

    def __init__(self, seed: int, name: str) -> None:
        digest = hashlib.blake2b(f"{seed}/{name}".encode(), digest_size=8).digest()
        self._key = np.uint64(int.from_bytes(digest, "little"))

    def bits(self, index: np.ndarray, counter: np.ndarray | int = 0, lane: int = 0) -> np.ndarray:
        """Return 64 random bits per element (uint64) for (customer index, counter, lane)."""
        index = np.asarray(index, dtype=np.int64).astype(np.uint64)
        counter = np.asarray(counter, dtype=np.int64).astype(np.uint64)
        lane_term = np.uint64((lane * int(_LANE)) % 2**64)
        # Wrapping multiplication is the point; NumPy only warns about it for 0-d values.
        with np.errstate(over="ignore"):
            base = _mix(self._key ^ (index * _GOLDEN))
            return _mix(base + counter * _COUNTER + lane_term)

    def uniform(
        self, index: np.ndarray, counter: np.ndarray | int = 0, lane: int = 0
    ) -> np.ndarray:
        """Return uniform floats in [0, 1), one per element of `index`."""
        return (self.bits(index, counter, lane) >> _S11).astype(np.float64) * _TO_UNIT

    def normal(self, index: np.ndarray, counter: np.ndarray | int = 0) -> np.ndarray:
        """Return standard normal floats (Box-Muller), one per element of `index`."""
        u1 = 1.0 - self.uniform(index, counter, lane=1)
        u2 = self.uniform(index, counter, lane=2)
        return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)

    def exponential(
        self, index: np.ndarray, counter: np.ndarray | int = 0, lane: int = 0
    ) -> np.ndarray:
        """Return exponential floats with mean 1, one per element of `index`."""
        return -np.log1p(-self.uniform(index, counter, lane))

    def choice(
        self, index: np.ndarray, weights: np.ndarray, counter: np.ndarray | int = 0
    ) -> np.ndarray:
        """Return category numbers (int64) drawn with the given weights."""
        cumulative = np.cumsum(np.asarray(weights, dtype=np.float64))
        u = self.uniform(index, counter, lane=3) * cumulative[-1]
        return np.minimum(np.searchsorted(cumulative, u, side="right"), len(cumulative) - 1)

    def integers(
        self, index: np.ndarray, high: np.ndarray | int, counter: np.ndarray | int = 0
    ) -> np.ndarray:
        """Return integers uniform in [0, high) (int64); `high` may vary per element."""
        high = np.maximum(np.asarray(high, dtype=np.int64), 1).astype(np.uint64)
        return (self.bits(index, counter, lane=4) % high).astype(np.int64)


def draw_poisson(mean: np.ndarray, u: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Return Poisson counts (int64) for each `mean`, by inverting the CDF at uniform `u`.

    `z` (standard normal) is used instead of `u` where the mean is large enough for the
    normal approximation.
    """
    mean = np.maximum(np.asarray(mean, dtype=np.float64), 0.0)
    counts = np.zeros(mean.shape, dtype=np.int64)
    large = mean > _POISSON_NORMAL_ABOVE
    if large.any():
        lam = mean[large]
        counts[large] = np.maximum(np.rint(lam + np.sqrt(lam) * z[large]), 0).astype(np.int64)
    small = ~large & (mean > 0)
    if small.any():
        lam, target = mean[small], u[small]
        term = np.exp(-lam)
        cdf = term.copy()
        k = np.zeros(lam.shape, dtype=np.int64)
        # Loops over count values, not events: at most ~60 steps for a mean of 25.
        for step in range(1, 100):
            further = target > cdf
            if not further.any():
                break
            k += further
            term = term * lam / step
            cdf = cdf + term
        counts[small] = k
    return counts


def draw_gamma(shape: np.ndarray | float, mean: np.ndarray | float, z: np.ndarray) -> np.ndarray:
    """Return gamma draws with the given shape and mean from normals `z` (Wilson-Hilferty 1931).

    The cube-root normal approximation is accurate for shape >= 1, which is all this
    generator uses; it keeps the draw a pure function of one normal.
    """
    shape = np.asarray(shape, dtype=np.float64)
    cube = 1.0 - 1.0 / (9.0 * shape) + z / (3.0 * np.sqrt(shape))
    return np.asarray(mean, dtype=np.float64) * np.maximum(cube, 0.05) ** 3
