"""`troth score`'s value step: the `customer_value` and `value_models` tables.

From the stored orders (`Order Completed`, revenue) as of the scoring date: the RFM summary in
`[value] period` units, a purchase model (`[value] model`: BG/NBD, modified BG/NBD or
Pareto/NBD) and a Gamma-Gamma spend model fitted by maximum likelihood, then per customer
P(alive), expected purchases in the next 90 and 365 days, expected order value, CLV over
`horizon_months` and CEV with its components (`troth.value.cev`).

Customers who never bought have no purchase history to project: their P(alive) and expected
purchases are empty and their CLV is 0 (their CEV may still hold referral, influence and
knowledge value). When a model cannot be fitted (too few customers, no repeat buyers), the
table is still written: the purchase predictions are empty and `value_models` says why. When
only Gamma-Gamma fails, a customer's expected order value is their own mean order value.

"At risk" are buyers with P(alive) below `at_risk_p_alive` whose CLV if still alive
(CLV / P(alive)) is among the top `at_risk_top_share` of buyers; `value_at_risk` is what churn
is expected to cost of it, CLV if alive minus CLV.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from troth.errors import TrothError
from troth.identity import events_with_customer
from troth.store import Database, Session
from troth.value.cev import CEV_EVENTS, engagement_value, influence, knowledge, referrals
from troth.value.clv import DAYS_PER_MONTH, clv, new_customer_clv
from troth.value.models.bgnbd import BGNBD
from troth.value.models.gamma_gamma import GammaGamma
from troth.value.models.modified_bgnbd import ModifiedBGNBD
from troth.value.models.pareto_nbd import ParetoNBD
from troth.value.summary import rfm_summary, store_transactions

__all__ = [
    "MODELS",
    "PERIOD_DAYS",
    "VALUE_COLUMNS",
    "FittedValue",
    "ValueSummary",
    "fit_value_models",
    "predict_value",
    "score_value",
    "value_events",
]

MODELS: dict[str, Callable[[], Any]] = {
    "bgnbd": BGNBD,
    "modified_bgnbd": ModifiedBGNBD,
    "pareto_nbd": ParetoNBD,
}
PERIOD_DAYS = {"D": 1.0, "W": 7.0}
PURCHASE_EVENTS = ("Order Completed",)

VALUE_COLUMNS = {
    "customer_id": "the customer",
    "orders": "orders to date (Order Completed)",
    "revenue": "revenue to date, currency",
    "frequency": "repeat purchase periods (periods with an order after the first one)",
    "recency": "periods from the first to the last order",
    "T": "periods from the first order to the scoring date",
    "monetary_value": "mean revenue of the repeat purchase periods, currency",
    "p_alive": "probability the customer is still alive (buying), empty for non-buyers",
    "expected_purchases_90d": "expected purchase periods in the next 90 days",
    "expected_purchases_365d": "expected purchase periods in the next 365 days",
    "expected_order_value": "expected value of a future order, currency (Gamma-Gamma)",
    "clv": "discounted margin of the next horizon_months of purchases, currency",
    "clv_if_alive": "CLV were the customer certainly alive (CLV / P(alive)), currency",
    "value_at_risk": "clv_if_alive - clv: value churn is expected to cost, currency",
    "at_risk": "low P(alive) with a high CLV if alive (see [value] at_risk_*)",
    "referred_customers": "customers this customer brought (credited referrals)",
    "crv": "customer referral value, currency",
    "reviews": "reviews in the trailing horizon",
    "shares": "content shares in the trailing horizon",
    "reach": "people those reviews and shares reached",
    "net_reach": "reach signed by valence (negative reviews count against)",
    "civ": "customer influence value, currency (may be negative)",
    "adopted_ideas": "ideas the company adopted, trailing horizon",
    "feedback": "feedback given, trailing horizon",
    "ckv": "customer knowledge value, currency",
    "cev": "customer engagement value = clv + crv + civ + ckv, currency",
    "as_of": "the scoring date",
}
# A P(alive) below this is a customer lost, not at risk: CLV / P(alive) is 0 / 0 there.
_LOST = 1e-12


@dataclass(frozen=True)
class ValueSummary:
    """What the value step wrote: customers, buyers, model status and totals (currency)."""

    customers: int
    buyers: int
    purchase_model: str
    purchase_status: str
    spend_status: str
    total_clv: float
    total_cev: float
    at_risk: int


@dataclass
class FittedValue:
    """The fitted purchase and spend models (None where a fit failed) and their records."""

    purchase: Any | None
    spend: GammaGamma | None
    records: list[dict[str, Any]]


def value_events(
    events: ir.Table, identifiers: ir.Table, as_of: datetime | None = None
) -> ir.Table:
    """Return the events the value step reads (orders and CEV evidence), before `as_of` if given."""
    wanted = events.filter(events.event.isin((*PURCHASE_EVENTS, *CEV_EVENTS)))
    if as_of is not None:
        wanted = wanted.filter(wanted.timestamp < ibis.literal(as_of, type="timestamp('UTC')"))
    joined = events_with_customer(wanted, identifiers)
    return joined.select("customer_id", "message_id", "timestamp", "event", "properties")


def fit_value_models(rfm: pd.DataFrame, model: str) -> FittedValue:
    """Fit `model` on the summary's (frequency, recency, T) and Gamma-Gamma on repeat spend."""
    records: list[dict[str, Any]] = []
    purchase = MODELS[model]()
    observed = rfm[rfm["T"] > 0]  # a customer seen for no time carries no information
    x, t_x, age = (observed[c].to_numpy() for c in ("frequency", "recency", "T"))
    try:
        purchase.fit(x, t_x, age)
        _check_predictions(purchase, x, t_x, age)
    except TrothError as exc:
        records.append(_record("purchase", model, len(observed), None, str(exc)))
        purchase = None
    else:
        rows = len(observed[["frequency", "recency", "T"]].drop_duplicates())
        expected = purchase.expected_purchases_new_customer(age)
        records.append(
            _record(
                "purchase",
                model,
                len(observed),
                purchase,
                rows=rows,
                observed_repeat=float(x.sum()),
                expected_repeat=float(np.sum(expected)),
            )
        )
    repeat = rfm[(rfm["frequency"] > 0) & (rfm["monetary_value"] > 0)]
    spend: GammaGamma | None = GammaGamma()
    try:
        spend.fit(repeat["frequency"].to_numpy(), repeat["monetary_value"].to_numpy())
        spend.population_mean_value()
    except TrothError as exc:
        records.append(_record("spend", "gamma_gamma", len(repeat), None, str(exc)))
        spend = None
    else:
        records.append(_record("spend", "gamma_gamma", len(repeat), spend))
    return FittedValue(purchase, spend, records)


def _check_predictions(purchase: Any, x: NDArray, t_x: NDArray, age: NDArray) -> None:
    """Raise TrothError when a fitted purchase model predicts NaN or infinity for its customers."""
    # A fit can converge to where the model's formulas overflow (Pareto/NBD with s and beta
    # near a pure exponential dropout); its predictions would make CLV fail for everyone.
    horizon = float(age.max())
    bad = ~np.isfinite(purchase.probability_alive(x, t_x, age))
    bad |= ~np.isfinite(purchase.expected_purchases(horizon, x, t_x, age))
    if bad.any() or not np.all(np.isfinite(purchase.expected_purchases_new_customer(horizon))):
        params = ", ".join(f"{k}={v:.4g}" for k, v in purchase.params.items())
        raise TrothError(
            f"the fit ({params}) gives NaN or infinite predictions for {int(bad.sum())} of "
            f"{len(x)} customers, a numerical limit of the model: choose another [value] model"
        )


def _record(
    component: str,
    model: str,
    customers: int,
    fitted: Any | None,
    error: str = "",
    **diagnostics: float,
) -> dict[str, Any]:
    """Return one `value_models` row: the fit's parameters and diagnostics, or why it failed."""
    return {
        "component": component,
        "model": model,
        "status": "failed" if fitted is None else "fitted",
        "message": error,
        "customers": customers,
        "params": json.dumps({} if fitted is None else fitted.params),
        "standard_errors": json.dumps({} if fitted is None else _finite(fitted.standard_errors)),
        "log_likelihood": None if fitted is None else float(fitted.log_likelihood),
        "diagnostics": json.dumps(diagnostics),
    }


def _finite(values: Mapping[str, float]) -> dict[str, float | None]:
    """Return `values` with non-finite numbers as None (JSON has no inf)."""
    return {k: (float(v) if np.isfinite(v) else None) for k, v in values.items()}


class _ObservedSpend:
    """A spend model standing in for Gamma-Gamma: each customer's own mean order value."""

    def __init__(self, values: NDArray[np.float64]) -> None:
        self.values = values

    def expected_average_value(
        self, frequency: ArrayLike, monetary_value: ArrayLike
    ) -> NDArray[np.float64]:
        """Return the stored mean order values, currency."""
        return self.values


def predict_value(
    rfm: pd.DataFrame, totals: pd.DataFrame, fitted: FittedValue, settings: Mapping[str, Any]
) -> tuple[pd.DataFrame, float]:
    """Return the per-buyer predictions (indexed like `rfm`) and a new customer's CLV, currency.

    `totals` holds orders and revenue per customer (same index); `settings` is `[value]`.
    """
    out = rfm.join(totals, how="left")
    period_days = PERIOD_DAYS[str(settings["period"])]
    months, rate = int(settings["horizon_months"]), float(settings["discount_rate_monthly"])
    margin = float(settings["margin"])
    x, t_x, age = (out[c].to_numpy() for c in ("frequency", "recency", "T"))
    m = out["monetary_value"].to_numpy()
    own_mean = np.divide(
        out["revenue"].to_numpy(),
        out["orders"].to_numpy(),
        where=out["orders"].to_numpy() > 0,
        out=np.zeros(len(out)),
    )
    if fitted.spend is not None:
        # Customers whose repeat spend is not positive (refund-heavy) get the population mean.
        usable = (x > 0) & (m > 0)
        order_value = fitted.spend.expected_average_value(
            np.where(usable, x, 0), np.where(usable, m, 0)
        )
        mean_value = fitted.spend.population_mean_value()
    else:
        order_value = own_mean
        mean_value = float(out["revenue"].sum() / max(out["orders"].sum(), 1))
    out["expected_order_value"] = order_value
    purchase = fitted.purchase
    if purchase is None:
        empty = np.full(len(out), np.nan)
        for column in ("p_alive", "expected_purchases_90d", "expected_purchases_365d"):
            out[column] = empty
        out["clv"] = np.nan
        out["clv_if_alive"] = np.nan
        return out, 0.0
    # Customers whose first order is in the scoring date's period have T = 0: no time observed,
    # so the model's answer is that of a customer just acquired (alive, new-customer curve).
    seen = age > 0
    p_alive = np.ones(len(out))
    expected_90, expected_365 = np.empty(len(out)), np.empty(len(out))
    p_alive[seen] = purchase.probability_alive(x[seen], t_x[seen], age[seen])
    for horizon, expected in ((90, expected_90), (365, expected_365)):
        t = horizon / period_days
        expected[seen] = purchase.expected_purchases(t, x[seen], t_x[seen], age[seen])
        expected[~seen] = purchase.expected_purchases_new_customer(t)
    value = np.empty(len(out))
    value[seen] = clv(
        purchase,
        _ObservedSpend(order_value[seen]),
        x[seen],
        t_x[seen],
        age[seen],
        m[seen],
        months,
        rate,
        period_days,
    )
    repeats = new_customer_clv(purchase, 1.0, months, rate, period_days) - 1.0
    value[~seen] = order_value[~seen] * repeats
    out["p_alive"] = p_alive
    out["expected_purchases_90d"] = expected_90
    out["expected_purchases_365d"] = expected_365
    out["clv"] = margin * value
    alive = p_alive > _LOST
    out["clv_if_alive"] = np.where(alive, margin * value / np.where(alive, p_alive, 1.0), np.nan)
    new_value = margin * new_customer_clv(purchase, mean_value, months, rate, period_days)
    return out, new_value


def _at_risk(out: pd.DataFrame, settings: Mapping[str, Any]) -> pd.Series:
    """Return whether each customer is at risk (see module doc)."""
    if_alive = out["clv_if_alive"]
    buyers = if_alive.notna()
    if not buyers.any():
        return pd.Series(False, index=out.index)
    cut = if_alive[buyers].quantile(1.0 - float(settings["at_risk_top_share"]))
    return (
        buyers & (out["p_alive"] < float(settings["at_risk_p_alive"])) & (if_alive >= cut)
    ).fillna(False)


def score_value(
    db: Database,
    as_of: datetime,
    settings: Mapping[str, Any],
    progress: Callable[[str], None] | None = None,
) -> ValueSummary:
    """Fit the value models as of `as_of`, write `customer_value` and `value_models`; summarise.

    `settings` is `[value]` (ValueSettings.model_dump()). Customers are those of
    `customer_features`, so run the engagement scoring first (`troth score` does).
    """
    say = progress or (lambda _step: None)
    with db.session() as session:
        say("value: orders")
        # Customers of `customer_features` are those who consent to being scored: no one
        # else's orders enter the population models either.
        scored = session.table("customer_features").select("customer_id")
        events = session.materialize(
            "value_events",
            value_events(session.table("events"), session.table("identifiers"), as_of).semi_join(
                scored, "customer_id"
            ),
        )
        orders = store_transactions(events)
        rfm = rfm_summary(
            orders,
            "customer_id",
            "timestamp",
            "revenue",
            observation_end=as_of,
            freq=str(settings["period"]),
            session=session,
        )
        totals = _frame(
            session,
            orders.group_by("customer_id").aggregate(
                orders=orders.count(), revenue=orders.revenue.sum()
            ),
        ).set_index("customer_id")
        say(f"value: fitting {settings['model']} and Gamma-Gamma")
        fitted = fit_value_models(rfm, str(settings["model"]))
        predicted, new_value = predict_value(rfm, totals, fitted, settings)
        say("value: engagement value")
        since = as_of - timedelta(days=DAYS_PER_MONTH * int(settings["horizon_months"]))
        customers = _frame(session, session.table("customer_features").select("customer_id"))
        table = customers.set_index("customer_id").join(predicted, how="left")
        table["orders"] = table["orders"].fillna(0).astype("int64")
        table["revenue"] = table["revenue"].fillna(0.0)
        table["clv"] = table["clv"].fillna(0.0)
        table = engagement_value(
            table,
            _frame(session, referrals(events, session.table("identifiers"))),
            _frame(session, influence(events, since, float(settings["default_reach"]))),
            _frame(session, knowledge(events, since)),
            new_value,
            settings,
        )
        table["value_at_risk"] = (table["clv_if_alive"] - table["clv"]).clip(lower=0.0)
        table["at_risk"] = _at_risk(table, settings)
        stamp = _utc(as_of)
        table["as_of"] = stamp
        table = table.reset_index()[list(VALUE_COLUMNS)]
        models = pd.DataFrame(fitted.records).assign(
            period=str(settings["period"]),
            new_customer_value=new_value,
            as_of=stamp,
        )
        with session.transaction():
            session.replace_table("customer_value", ibis.memtable(table))
            session.replace_table("value_models", ibis.memtable(models))
    status = {r["component"]: r["status"] for r in fitted.records}
    return ValueSummary(
        customers=len(table),
        buyers=int((table["orders"] > 0).sum()),
        purchase_model=str(settings["model"]),
        purchase_status=status["purchase"],
        spend_status=status["spend"],
        total_clv=float(table["clv"].sum()),
        total_cev=float(table["cev"].sum()),
        at_risk=int(table["at_risk"].sum()),
    )


def _frame(session: Session, expr: ir.Table) -> pd.DataFrame:
    """Return a table expression's rows as a pandas DataFrame."""
    return session.fetch_arrow(expr).to_pandas()


def _utc(when: datetime) -> pd.Timestamp:
    """Return `when` as a UTC timestamp (a naive time is taken as UTC)."""
    stamp = pd.Timestamp(when)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
