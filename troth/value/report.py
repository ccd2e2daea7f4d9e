"""Reading what the value step wrote: the fits, the value distribution, top and at-risk lists."""

from __future__ import annotations

import itertools
import json
from typing import Any

import ibis
import ibis.expr.types as ir

from troth.errors import TrothError
from troth.privacy.consent import personalised_only
from troth.store import Database, Session

__all__ = [
    "COMPONENTS",
    "P_ALIVE_BANDS",
    "QUANTILES",
    "VALUE_SORTS",
    "at_risk_customers",
    "customer_value",
    "top_customers",
    "value_overview",
]

# Columns `troth customers list` can show and sort by, largest first.
VALUE_SORTS = ("clv", "cev", "p_alive")
COMPONENTS = ("clv", "crv", "civ", "ckv", "cev")
QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9, 0.99)
P_ALIVE_BANDS = (0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0)
_LIST = ("customer_id", "orders", "revenue", "p_alive", "clv", "crv", "civ", "ckv", "cev")
_AT_RISK = (
    "customer_id",
    "orders",
    "revenue",
    "recency",
    "T",
    "p_alive",
    "clv",
    "clv_if_alive",
    "value_at_risk",
)


def _value_table(session: Session) -> ir.Table:
    """Return the customer_value table, or raise a TrothError saying to run `troth score`."""
    try:
        return session.table("customer_value")
    except TrothError as exc:
        raise TrothError("no customer values yet: run `troth score` first") from exc


def value_overview(db: Database, top: int = 10) -> dict[str, Any]:
    """Return the fitted models, the value distribution, and the top and at-risk customers.

    Currency amounts are in the orders' revenue currency; P(alive) is a probability. The two
    lists hold `top` customers each; with `top` 0 they are empty (aggregates only).
    """
    with db.session() as session:
        values = _value_table(session)
        models = session.fetch_dicts(session.table("value_models"))
        buyers = values.filter(values.orders > 0)
        totals = session.fetch_dicts(
            values.aggregate(
                customers=values.count(),
                buyers=values.count(where=values.orders > 0),
                at_risk=values.count(where=values.at_risk),
                value_at_risk=values.value_at_risk.sum(where=values.at_risk),
                as_of=values.as_of.max(),
                **{c: values[c].sum() for c in COMPONENTS},
            )
        )[0]
        quantiles = session.fetch_dicts(
            buyers.aggregate(
                **{
                    f"{c}_{q}": buyers[c].quantile(q)
                    for c in ("clv", "cev", "p_alive")
                    for q in QUANTILES
                }
            )
        )[0]
        bands = session.fetch(_p_alive_bands(buyers))
    counts = {int(band): int(n) for band, n in bands}
    as_of = totals.pop("as_of")
    return {
        "as_of": None if as_of is None else as_of.isoformat(),
        "models": [_model_record(m) for m in models],
        "customers": int(totals.pop("customers")),
        "buyers": int(totals.pop("buyers")),
        "at_risk": int(totals.pop("at_risk")),
        "totals": {k: float(v or 0.0) for k, v in totals.items()},
        "quantiles": {
            c: {str(q): _number(quantiles[f"{c}_{q}"]) for q in QUANTILES}
            for c in ("clv", "cev", "p_alive")
        },
        "p_alive_bands": [
            {"from": low, "to": high, "buyers": counts.get(i, 0)}
            for i, (low, high) in enumerate(itertools.pairwise(P_ALIVE_BANDS))
        ],
        "top_cev": top_customers(db, "cev", top) if top else [],
        "at_risk_customers": at_risk_customers(db, top) if top else [],
    }


def _p_alive_bands(buyers: ir.Table) -> ir.Table:
    """Return (band index, buyers) per P(alive) band of P_ALIVE_BANDS (the last one closed)."""
    band = ibis.cases(
        *((buyers.p_alive < high, i) for i, high in enumerate(P_ALIVE_BANDS[1:-1])),
        else_=len(P_ALIVE_BANDS) - 2,
    )
    scored = buyers.filter(buyers.p_alive.notnull()).mutate(band=band)
    return scored.group_by("band").aggregate(n=scored.count()).order_by("band")


def _model_record(row: dict[str, Any]) -> dict[str, Any]:
    """Return a value_models row with its JSON columns parsed and its date as text."""
    out = dict(row)
    for column in ("params", "standard_errors", "diagnostics"):
        out[column] = json.loads(out[column] or "{}")
    out["as_of"] = out["as_of"].isoformat() if out.get("as_of") else None
    return out


def _number(value: Any) -> float | None:
    """Return a float, or None for a missing value."""
    return None if value is None else float(value)


def top_customers(db: Database, by: str = "cev", limit: int = 10) -> list[dict[str, Any]]:
    """Return the `limit` customers with the highest `by` (clv, cev, ...) and their components."""
    with db.session() as session:
        values = personalised_only(session, _value_table(session))
        ranked = values.order_by([values[by].desc(nulls_first=False), values.customer_id])
        return session.fetch_dicts(ranked.select(*_LIST).limit(limit))


def at_risk_customers(db: Database, limit: int = 10) -> list[dict[str, Any]]:
    """Return at-risk customers, the largest value at risk (currency) first."""
    with db.session() as session:
        values = personalised_only(session, _value_table(session))
        risky = values.filter(values.at_risk)
        ranked = risky.order_by([risky.value_at_risk.desc(), risky.customer_id])
        return session.fetch_dicts(ranked.select(*_AT_RISK).limit(limit))


def customer_value(db: Database, customer_id: str) -> dict[str, Any] | None:
    """Return one customer's value row (currency, probabilities), or None if not scored."""
    with db.session() as session:
        try:
            values = session.table("customer_value")
        except TrothError:
            return None
        rows = session.fetch_dicts(values.filter(values.customer_id == customer_id))
    if not rows:
        return None
    row = rows[0]
    row["as_of"] = row["as_of"].isoformat() if row["as_of"] else None
    return row
