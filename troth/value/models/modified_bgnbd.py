"""The modified BG/NBD model (Batislam, Denizel & Filiztekin 2007).

As BG/NBD, except that a customer may also drop out right after the first purchase, so a
customer with no repeat purchase is not certainly alive. Same data and parameters (r, alpha,
a, b) as `BGNBD`; the equations below are those of lifetimes' ModifiedBetaGeoFitter.

References
----------
Batislam, E. P., Denizel, M. & Filiztekin, A. (2007). Empirical validation and comparison of
models for customer base analysis. International Journal of Research in Marketing 24(3), 201-209.
Wagner, U. & Hoppe, D. (2008). Erratum on the MBG/NBD model. IJRM 25(3), 225-226.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from numpy.typing import ArrayLike

from troth.value.models.base import FloatArray
from troth.value.models.bgnbd import BGNBD, _simulate

__all__ = ["ModifiedBGNBD", "simulate"]


class ModifiedBGNBD(BGNBD):
    """Modified BG/NBD (MBG/NBD) with parameters r, alpha, a, b.

    Log-likelihood per row (Batislam et al. 2007, eq. 4):
    lnG(r + x) - lnG(r) + r ln alpha + lnB(a, b + x + 1) - lnB(a, b) - (r + x) ln(alpha + T)
    + ln(1 + a / (b + x) ((alpha + T) / (alpha + t_x))^(r + x)).
    P(alive) = 1 / (1 + a / (b + x) ((alpha + T) / (alpha + t_x))^(r + x)) for every x
    (Batislam et al., appendix A, eq. 5); E[X(t) | x, t_x, T] uses (a + b + x) / (a - 1) and
    2F1(r + x, b + x + 1; a + b + x; z) (Wagner & Hoppe 2008); a new customer's expected
    purchases are b / (a - 1) [1 - (alpha / (alpha + t))^r 2F1(r, b + 1; a + b; t / (alpha + t))].
    """

    _shift: ClassVar[int] = 1


def simulate(
    T: ArrayLike,
    r: float,
    alpha: float,
    a: float,
    b: float,
    *,
    size: int | None = None,
    rng: np.random.Generator,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Draw (frequency, recency, T) from the modified BG/NBD process, in continuous time.

    Same arguments as `troth.value.models.bgnbd.simulate`; here the dropout coin is also tossed
    right after the first purchase.
    """
    return _simulate(T, (r, alpha, a, b), size, rng, shift=1)
