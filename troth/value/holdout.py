"""The holdout check of the purchase model: predicted against actual purchases after a date.

The classic BTYD validation (Fader, Hardie & Lee 2005, fig. 3): fit on the orders up to the
calibration end, predict each customer's purchases in the holdout (calibration end,
observation end], and compare with what they did, in total and by the number of repeat
purchases in calibration. As a yardstick, a naive forecast carries each customer's
calibration rate x / T into the holdout, ignoring that customers drop out.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import ibis
import numpy as np
import pandas as pd

from troth.config import PrivacySettings
from troth.errors import TrothError
from troth.privacy.consent import consent_snapshot
from troth.store import Database
from troth.value.scoring import MODELS, PERIOD_DAYS, value_events
from troth.value.summary import rfm_summary, store_transactions

__all__ = ["BUCKETS", "holdout_check"]

# Calibration repeat purchases 0..6 each, then 7 and more together (as in FHL 2005, fig. 3).
BUCKETS = 7


def holdout_check(
    db: Database,
    calibration_end: datetime,
    observation_end: datetime | None,
    model: str,
    period: str,
    privacy: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Return the fit on orders up to `calibration_end` and its holdout error per bucket.

    The holdout ends at `observation_end`, by default the last stored order. Purchases are
    counted in `period` units ("D"/"W": purchase days or weeks). Only customers who consent to
    being scored now (`privacy` is `[privacy]`, default its defaults) are counted. Raises
    TrothError when the calibration period has no orders, or the model cannot be fitted or
    predicts NaN.
    """
    consent_settings = privacy or PrivacySettings().model_dump()
    if observation_end is not None and calibration_end >= observation_end:
        raise TrothError(
            f"the calibration end {calibration_end:%Y-%m-%d} must be before the observation "
            f"end {observation_end:%Y-%m-%d}: the holdout period would be empty"
        )
    with db.session() as session:
        consent = consent_snapshot(
            session, consent_settings["purposes"], consent_settings["granted_by_default"]
        )
        allowed = consent.filter(consent.withheld.isnull()).select("customer_id")
        orders = store_transactions(
            value_events(session.table("events"), session.table("identifiers")).semi_join(
                allowed, "customer_id"
            )
        )
        if observation_end is None:
            last = session.scalar(orders.timestamp.max())
            if last is None or last <= calibration_end:
                raise TrothError(
                    f"no orders after the calibration end {calibration_end:%Y-%m-%d}: "
                    "the holdout period would be empty; choose an earlier --calibration-end"
                )
            observation_end = last
        else:
            # The holdout is (calibration end, observation end]: an order at the end counts.
            end = ibis.literal(observation_end, type="timestamp('UTC')")
            orders = orders.filter(orders.timestamp <= end)
        summary = rfm_summary(
            orders,
            "customer_id",
            "timestamp",
            "revenue",
            calibration_end=calibration_end,
            observation_end=observation_end,
            freq=period,
            session=session,
        )
    if summary.empty:
        raise TrothError(
            f"no orders on or before the calibration end {calibration_end:%Y-%m-%d}: "
            "choose a later --calibration-end"
        )
    seen = summary[summary["T"] > 0]
    fitted = MODELS[model]()
    try:
        fitted.fit(seen["frequency"], seen["recency"], seen["T"])
    except TrothError as exc:
        raise TrothError(f"{model} could not be fitted on the calibration period: {exc}") from exc
    duration = float(summary["duration_holdout"].iloc[0])
    predicted = np.empty(len(summary))
    observed = (summary["T"] > 0).to_numpy()
    predicted[observed] = fitted.expected_purchases(
        duration, seen["frequency"], seen["recency"], seen["T"]
    )
    # First order in the calibration end's own period: a customer just acquired.
    predicted[~observed] = fitted.expected_purchases_new_customer(duration)
    if not np.all(np.isfinite(predicted)):
        raise TrothError(
            f"{model} was fitted on the calibration period ({_params(fitted.params)}) but "
            "predicts NaN or infinite purchases, a numerical limit of the model: choose "
            "another --model"
        )
    rate = np.divide(
        summary["frequency"].to_numpy(),
        summary["T"].to_numpy(),
        out=np.zeros(len(summary)),
        where=observed,
    )
    frame = pd.DataFrame(
        {
            "bucket": np.minimum(summary["frequency"].to_numpy(), BUCKETS).astype(int),
            "actual": summary["frequency_holdout"].to_numpy(),
            "predicted": predicted,
            "naive": rate * duration,
        }
    )
    return {
        "model": model,
        "period": period,
        "calibration_end": calibration_end.isoformat(),
        "observation_end": None if observation_end is None else observation_end.isoformat(),
        "holdout_periods": duration,
        "holdout_days": duration * PERIOD_DAYS[period],
        "params": fitted.params,
        "log_likelihood": float(fitted.log_likelihood),
        "customers": len(frame),
        "total": _errors(frame),
        "by_frequency": [
            {"frequency": _bucket_label(int(bucket)), **_errors(group)}
            for bucket, group in frame.groupby("bucket", sort=True)
        ],
    }


def _params(params: dict[str, float]) -> str:
    """Return 'name=value, ...' for an error message."""
    return ", ".join(f"{name}={value:.4g}" for name, value in params.items())


def _bucket_label(bucket: int) -> str:
    """Return a bucket's label: the repeat purchase count, or '7+' for the last."""
    return f"{BUCKETS}+" if bucket >= BUCKETS else str(bucket)


def _errors(frame: pd.DataFrame) -> dict[str, float | None]:
    """Return customers, mean actual/predicted/naive purchases per customer, and the errors."""
    actual, predicted, naive = (frame[c].to_numpy() for c in ("actual", "predicted", "naive"))
    total = float(actual.sum())
    return {
        "customers": len(frame),
        "actual": float(actual.mean()),
        "predicted": float(predicted.mean()),
        "naive": float(naive.mean()),
        "actual_total": total,
        "predicted_total": float(predicted.sum()),
        # Relative error of the total: what a forecast of the base's purchases would miss by.
        "error_pct": float(100 * (predicted.sum() - total) / total) if total else None,
        "naive_error_pct": float(100 * (naive.sum() - total) / total) if total else None,
        "mae": float(np.abs(predicted - actual).mean()),
        "naive_mae": float(np.abs(naive - actual).mean()),
    }
