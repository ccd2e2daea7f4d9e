"""RFM summaries against lifetimes' summary_data_from_transaction_data (FHL 2005, §2)."""

from __future__ import annotations

import warnings
from datetime import UTC, datetime, timedelta

import ibis
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st
from lifetimes.datasets import load_transaction_data
from lifetimes.utils import calibration_and_holdout_data, summary_data_from_transaction_data

from tests.engagement.events import add_events
from troth.identity import events_with_customer
from troth.identity.runner import resolve_identities
from troth.store import Database
from troth.value.summary import (
    HOLDOUT_COLUMNS,
    SUMMARY_COLUMNS,
    TransactionLogError,
    _period,
    rfm_summary,
    store_transactions,
)

TOLERANCE = 1e-9
START = datetime(2019, 1, 1)


def lifetimes_summary(
    log: pd.DataFrame, freq: str, calibration_end=None, observation_end=None
) -> pd.DataFrame:
    """Return lifetimes' summary (calibration columns without their _cal suffix), by customer."""
    with warnings.catch_warnings():
        # lifetimes writes into slices of the log (pandas' chained-assignment warnings).
        warnings.simplefilter("ignore")
        if calibration_end is None:
            out = summary_data_from_transaction_data(
                log, "customer", "time", "value", observation_period_end=observation_end, freq=freq
            )
        else:
            out = calibration_and_holdout_data(
                log,
                "customer",
                "time",
                calibration_end,
                observation_period_end=observation_end,
                freq=freq,
                monetary_value_col="value",
            )
    out.columns = [c.removesuffix("_cal") for c in out.columns]
    return out.sort_index()


def month_summary(log: pd.DataFrame, observation_end=None) -> pd.DataFrame:
    """Return the summary in calendar months, lifetimes' steps with pandas Period arithmetic.

    lifetimes 0.11.3 cannot divide by np.timedelta64(1, "M") under pandas >= 2, so for months
    recency and T are whole months between period starts, as its duration_holdout counts them.
    """
    end = (observation_end or log.time.max()).to_period("M").ordinal
    periods = log.assign(period=log.time.dt.to_period("M").map(lambda p: p.ordinal))
    periods = periods.groupby(["customer", "period"], as_index=False)["value"].sum()
    first = periods.groupby("customer").period.transform("min")
    by_customer = periods.groupby("customer").period.agg(["min", "max", "count"])
    repeat = periods[periods.period > first].groupby("customer").value.mean()
    return pd.DataFrame(
        {
            "frequency": by_customer["count"] - 1.0,
            "recency": (by_customer["max"] - by_customer["min"]).astype(float),
            "T": (end - by_customer["min"]).astype(float),
            "monetary_value": repeat.reindex(by_customer.index).fillna(0.0),
        }
    ).sort_index()


def assert_same(ours: pd.DataFrame, theirs: pd.DataFrame) -> None:
    assert list(ours.index) == list(theirs.index)
    assert list(ours.columns) == list(theirs.columns)
    np.testing.assert_allclose(ours.to_numpy(), theirs.to_numpy(), rtol=TOLERANCE, atol=TOLERANCE)


def cdnow() -> pd.DataFrame:
    log = load_transaction_data().rename(columns={"id": "customer", "date": "time"})
    log["time"] = pd.to_datetime(log["time"])
    log["value"] = np.random.default_rng(13).gamma(2.0, 15.0, len(log)).round(2)
    return log


@pytest.mark.parametrize("freq", ["h", "D", "W"])
def test_summary_equals_lifetimes_on_the_CDNOW_transactions(freq: str) -> None:
    log = cdnow()
    assert_same(
        rfm_summary(log, "customer", "time", "value", freq=freq), lifetimes_summary(log, freq)
    )


@pytest.mark.parametrize("freq", ["D", "W"])
def test_calibration_and_holdout_equal_lifetimes_on_the_CDNOW_transactions(freq: str) -> None:
    log = cdnow()
    ours = rfm_summary(log, "customer", "time", "value", calibration_end="2014-09-01", freq=freq)
    assert list(ours.columns) == [*SUMMARY_COLUMNS, *HOLDOUT_COLUMNS]
    assert_same(ours, lifetimes_summary(log, freq, calibration_end="2014-09-01"))


@st.composite
def logs(draw: st.DrawFn) -> pd.DataFrame:
    n = draw(st.integers(1, 40))
    customers = draw(st.lists(st.integers(0, 6), min_size=n, max_size=n))
    # Up to ~3 years in seconds: periods of every freq, month ends and a leap day included.
    seconds = draw(st.lists(st.integers(0, 95_000_000), min_size=n, max_size=n))
    values = draw(st.lists(st.floats(-50, 500, allow_nan=False), min_size=n, max_size=n))
    return pd.DataFrame(
        {
            "customer": customers,
            "time": pd.Timestamp(START) + pd.to_timedelta(seconds, unit="s"),
            "value": values,
        }
    )


@given(
    log=logs(),
    freq=st.sampled_from(["h", "D", "W"]),
    calibration=st.none() | st.floats(0.0, 1.0),
    extra_days=st.none() | st.integers(0, 400),
)
def test_summary_equals_lifetimes_on_random_logs(log, freq, calibration, extra_days) -> None:
    last = log.time.max()
    end = None if extra_days is None else last + timedelta(days=extra_days, hours=5)
    if calibration is None:
        theirs = lifetimes_summary(log, freq, observation_end=end)
        ours = rfm_summary(log, "customer", "time", "value", observation_end=end, freq=freq)
        assert_same(ours, theirs)
        return
    cal_end = log.time.min() + (last - log.time.min()) * calibration
    ours = rfm_summary(log, "customer", "time", "value", cal_end, end, freq=freq)
    if (log.time > cal_end).any():
        assert_same(ours, lifetimes_summary(log, freq, cal_end, end))
    else:
        # lifetimes raises on an empty holdout; it simply has no purchase here.
        assert (ours[["frequency_holdout", "monetary_value_holdout"]] == 0).all().all()


@given(
    log=logs(),
    calibration=st.none() | st.floats(0.0, 1.0),
    extra_days=st.none() | st.integers(0, 400),
)
def test_month_summary_counts_calendar_months(log, calibration, extra_days) -> None:
    end = None if extra_days is None else log.time.max() + timedelta(days=extra_days)
    if calibration is None:
        ours = rfm_summary(log, "customer", "time", "value", observation_end=end, freq="M")
        assert_same(ours, month_summary(log, end))
        return
    cal_end = log.time.min() + (log.time.max() - log.time.min()) * calibration
    ours = rfm_summary(log, "customer", "time", "value", cal_end, end, freq="M")
    theirs = month_summary(log[log.time <= cal_end], cal_end)
    holdout = log[log.time > cal_end]
    months = holdout.time.dt.to_period("M")
    theirs["frequency_holdout"] = months.groupby(holdout.customer).nunique()
    theirs["monetary_value_holdout"] = holdout.groupby("customer").value.mean()
    theirs = theirs.fillna(0.0)
    end_month = (end or log.time.max()).to_period("M")
    theirs["duration_holdout"] = float((end_month - cal_end.to_period("M")).n)
    assert_same(ours, theirs)


def test_a_date_column_is_taken_as_midnight_utc() -> None:
    log = cdnow()
    dates = log.assign(time=log.time.dt.date)
    pd.testing.assert_frame_equal(
        rfm_summary(dates, "customer", "time", "value", freq="W"),
        rfm_summary(log, "customer", "time", "value", freq="W"),
    )


@pytest.mark.parametrize(("freq", "pandas_freq"), [("h", "h"), ("D", "D"), ("W", "W"), ("M", "M")])
def test_periods_are_pandas_periods_before_and_after_1970(freq: str, pandas_freq: str) -> None:
    rng = np.random.default_rng(13)
    offsets = rng.integers(-3_000_000_000, 3_000_000_000, 5_000) * 1_000_000 + rng.integers(
        0, 1_000_000, 5_000
    )
    edges = pd.to_datetime(
        ["1969-12-31 23:59:59.999999", "1970-01-01", "2000-02-29 23:59:59"], format="ISO8601"
    )
    times = pd.DatetimeIndex(pd.to_datetime(offsets, unit="us")).append(edges)
    frame = pd.DataFrame({"time": times})
    table = ibis.memtable(frame)
    ours = ibis.duckdb.connect().to_pandas(table.select(period=_period(table.time, freq)))
    theirs = times.to_period(pandas_freq).asi8
    # Period numbers may start from another origin; consecutive differences must agree.
    differences = ours.period.to_numpy() - theirs
    assert (differences == differences[0]).all()


def test_arrow_and_pandas_inputs_give_the_same_summary() -> None:
    log = cdnow()
    from_pandas = rfm_summary(log, "customer", "time", "value", freq="W")
    from_arrow = rfm_summary(pa.Table.from_pandas(log), "customer", "time", "value", freq="W")
    pd.testing.assert_frame_equal(from_pandas, from_arrow)


def test_zoned_times_are_taken_in_utc() -> None:
    log = cdnow()
    zoned = log.assign(time=log.time.dt.tz_localize("UTC").dt.tz_convert("America/New_York"))
    pd.testing.assert_frame_equal(
        rfm_summary(zoned, "customer", "time", "value", freq="D"),
        rfm_summary(log, "customer", "time", "value", freq="D"),
    )


def test_a_customer_with_one_purchase_period_has_zero_frequency_and_value() -> None:
    log = pd.DataFrame(
        {
            "customer": ["a", "a", "b"],
            "time": pd.to_datetime(["2024-01-01 09:00", "2024-01-01 17:00", "2024-01-03 00:00"]),
            "value": [10.0, 5.0, 7.0],
        }
    )
    summary = rfm_summary(log, "customer", "time", "value", freq="D")
    assert summary.loc["a"].to_dict() == {
        "frequency": 0.0,
        "recency": 0.0,
        "T": 2.0,
        "monetary_value": 0.0,
    }


def test_an_empty_log_gives_an_empty_summary() -> None:
    log = pd.DataFrame({"customer": [], "time": pd.to_datetime([]), "value": []})
    summary = rfm_summary(log, "customer", "time", "value")
    assert summary.empty
    assert list(summary.columns) == list(SUMMARY_COLUMNS)


def test_bad_logs_raise_errors_that_say_what_to_do() -> None:
    log = cdnow()
    with pytest.raises(TransactionLogError, match="no column 'amount'"):
        rfm_summary(log, "customer", "time", "amount")
    with pytest.raises(TransactionLogError, match="null or NaN 'time'"):
        rfm_summary(log.assign(time=log.time.where(log.index != 3)), "customer", "time", "value")
    with pytest.raises(TransactionLogError, match="null or NaN 'value'"):
        rfm_summary(log.assign(value=log.value.where(log.index != 3)), "customer", "time", "value")
    with pytest.raises(TransactionLogError, match="before the last transaction"):
        rfm_summary(log, "customer", "time", "value", observation_end="2014-06-01")
    with pytest.raises(TransactionLogError, match="after observation_end"):
        rfm_summary(log, "customer", "time", "value", "2015-01-01", "2014-12-31")
    with pytest.raises(TransactionLogError, match="not a timestamp"):
        rfm_summary(log.assign(time=log.time.astype(str)), "customer", "time", "value")
    with pytest.raises(TransactionLogError, match="freq 'Q'"):
        rfm_summary(log, "customer", "time", "value", freq="Q")


AT = datetime(2026, 3, 4, 10, tzinfo=UTC)


def test_store_summary_counts_orders_and_ignores_refunds(db: Database) -> None:
    def order(user: str, days: int, revenue: float | None) -> dict:
        properties = {} if revenue is None else {"revenue": revenue}
        return {
            "event": "Order Completed",
            "user": user,
            "at": AT + timedelta(days=days),
            "properties": properties,
        }

    rows = [
        order("u1", 0, 20.0),
        order("u1", 0, 5.0),  # same day: one purchase period worth 25
        order("u1", 3, 40.0),
        order("u1", 10, None),  # no revenue: a purchase worth 0
        {
            "event": "Order Refunded",
            "user": "u1",
            "at": AT + timedelta(days=4),
            "properties": {"revenue": 40.0},
        },
        order("u2", 9, 12.0),
        {"event": "Product Viewed", "user": "u3", "at": AT},
    ]
    add_events(db, rows, AT)
    resolve_identities(db)
    with db.session() as session:
        events = events_with_customer(session.table("events"), session.table("identifiers"))
        transactions = store_transactions(events)
        summary = rfm_summary(
            transactions, "customer_id", "timestamp", "revenue", freq="D", session=session
        )
        customers = dict(session.fetch(events.select("user_id", "customer_id").distinct()))
    u1, u2 = summary.loc[customers["u1"]], summary.loc[customers["u2"]]
    assert u1.to_dict() == {"frequency": 2.0, "recency": 10.0, "T": 10.0, "monetary_value": 20.0}
    assert u2.to_dict() == {"frequency": 0.0, "recency": 0.0, "T": 1.0, "monetary_value": 0.0}
    assert customers["u3"] not in summary.index


def test_zoned_arrow_times_are_taken_in_utc() -> None:
    log = cdnow()
    zoned = pa.Table.from_pandas(log.assign(time=log.time.dt.tz_localize("Asia/Tokyo")))
    shifted = log.assign(time=log.time - timedelta(hours=9))
    pd.testing.assert_frame_equal(
        rfm_summary(zoned, "customer", "time", "value", freq="h"),
        rfm_summary(shifted, "customer", "time", "value", freq="h"),
    )
