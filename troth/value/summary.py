"""RFM summaries of transaction logs: the frequency, recency, T and spend the BTYD models fit.

The definitions are those of Fader, Hardie & Lee (2005), "Counting your customers the easy
way", §2, as `lifetimes.utils.summary_data_from_transaction_data` and
`calibration_and_holdout_data` compute them. Time is cut into periods (`freq`) and a
customer's transactions are collapsed to one per period, their values summed; then

- frequency x: periods with a purchase, minus the first one (repeat purchase periods);
- recency t_x: last purchase period minus first purchase period, in periods;
- T: the period of the observation end minus the first purchase period, in periods;
- monetary value: mean of the summed values of the repeat periods, 0 when x = 0.

Periods are UTC calendar periods taken by epoch arithmetic (calendar functions on zoned
timestamps go through ICU in DuckDB, ~1 µs a row): "h" hours, "D" days, "W" weeks Monday to
Sunday (pandas' default "W-SUN" periods), "M" calendar months.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir
import pandas as pd
import pyarrow as pa

from troth.errors import TrothError

if TYPE_CHECKING:
    from troth.store import Session

__all__ = [
    "FREQS",
    "HOLDOUT_COLUMNS",
    "SUMMARY_COLUMNS",
    "TransactionLogError",
    "rfm_summary",
    "rfm_summary_expr",
    "store_transactions",
]

FREQS = ("h", "D", "W", "M")
SUMMARY_COLUMNS = ("frequency", "recency", "T", "monetary_value")
HOLDOUT_COLUMNS = ("frequency_holdout", "monetary_value_holdout", "duration_holdout")

TimeLike = datetime | date | str | pd.Timestamp
_MICROS_PER_HOUR, _MICROS_PER_DAY = 3_600_000_000, 86_400_000_000
# 1970-01-01 was a Thursday: day d lies in the Monday-based week (d + 3) // 7.
_THURSDAY_TO_MONDAY = 3


class TransactionLogError(TrothError, ValueError):
    """A transaction log cannot be summarised: a column is missing, null or out of range."""


def store_transactions(events: ir.Table) -> ir.Table:
    """Return the purchases in `events` as customer_id, timestamp, revenue (currency units).

    `events` must carry `customer_id` (troth.identity.events_with_customer). A purchase is an
    `Order Completed`; its value is `properties.revenue`, read from the JSON of orders only, and
    an order without a numeric revenue counts as a purchase worth 0. `Order Refunded` events are
    ignored: the BTYD models count purchase occasions, and a refund (usually days later, often
    in another period) does not undo the occasion; monetary values are gross of refunds.
    """
    orders = events.filter(events.event == "Order Completed")
    return orders.select(
        "customer_id",
        "timestamp",
        revenue=orders.properties["revenue"].float.fill_null(0.0),
    )


def rfm_summary_expr(
    transactions: ir.Table,
    customer_col: str,
    time_col: str,
    value_col: str,
    calibration_end: TimeLike | None = None,
    observation_end: TimeLike | None = None,
    freq: str = "W",
) -> ir.Table:
    """Return one row per customer: `customer_col`, frequency, recency, T, monetary_value.

    Units are periods of `freq` (frequency in periods, recency and T in periods, monetary value
    in the currency of `value_col`). Transactions after `observation_end` (default: the last
    transaction) are dropped. With `calibration_end`, the summary covers the transactions up to
    it (customers whose first purchase is later are left out) and three columns describe the
    holdout (calibration_end, observation_end]: frequency_holdout (distinct periods with a
    purchase), monetary_value_holdout (mean value of its transactions, not per-period sums, as
    lifetimes has it; 0 without one) and duration_holdout (periods from calibration_end to
    observation_end).

    The expression does no I/O and checks no data; `rfm_summary` validates and runs it.
    """
    _check_arguments(transactions, (customer_col, time_col, value_col), freq)
    time = transactions[time_col]
    if time.type().is_date():
        time = time.cast("timestamp")
    log = transactions.select(
        customer=transactions[customer_col],
        time=time,
        value=transactions[value_col].cast("float64"),
    )
    log = log.mutate(period=_period(log.time, freq))
    if observation_end is not None:
        end = _time_literal(observation_end, log.time.type())
        log = log.filter(log.time <= end)
        end_period = _period(end, freq)
    else:
        end_period = log.period.max().as_scalar()
    if calibration_end is None:
        return _summarise(log, end_period).rename({customer_col: "customer"})

    cal_end = _time_literal(calibration_end, log.time.type())
    cal_period = _period(cal_end, freq)
    calibration = _summarise(log.filter(log.time <= cal_end), cal_period)
    holdout = log.filter(log.time > cal_end)
    by_customer = holdout.group_by("customer").aggregate(
        frequency_holdout=holdout.period.nunique(), monetary_value_holdout=holdout.value.mean()
    )
    joined = calibration.left_join(by_customer, "customer")
    return joined.select(
        joined.customer.name(customer_col),
        *SUMMARY_COLUMNS,
        frequency_holdout=joined.frequency_holdout.cast("float64").fill_null(0.0),
        monetary_value_holdout=joined.monetary_value_holdout.fill_null(0.0),
        duration_holdout=(end_period - cal_period).cast("float64"),
    )


def rfm_summary(
    transactions: ir.Table | pd.DataFrame | pa.Table,
    customer_col: str,
    time_col: str,
    value_col: str,
    calibration_end: TimeLike | None = None,
    observation_end: TimeLike | None = None,
    freq: str = "W",
    session: Session | None = None,
) -> pd.DataFrame:
    """Return the RFM summary of a transaction log, indexed by customer (see rfm_summary_expr).

    Parameters
    ----------
    transactions
        One row per transaction: a pandas DataFrame or Arrow table (summarised in an in-memory
        DuckDB), or an Ibis table expression, run on `session` when given (store tables, e.g.
        `store_transactions(...)`) and otherwise on the backend it is bound to.
    customer_col, time_col, value_col
        Columns holding the customer, the transaction time (timestamp or date; zoned times are
        taken in UTC) and its value.
    calibration_end, observation_end
        As in lifetimes' `calibration_and_holdout_data`; observation_end defaults to the last
        transaction.
    freq
        The period: "h", "D", "W" (Monday to Sunday) or "M".

    Returns
    -------
    pandas.DataFrame
        Float columns frequency, recency, T, monetary_value, plus frequency_holdout,
        monetary_value_holdout and duration_holdout with a calibration end, indexed by
        `customer_col` in ascending order; empty when there is no transaction.

    Raises
    ------
    TransactionLogError
        A column is missing or of the wrong type, a customer, time or value is null or NaN,
        a transaction falls after observation_end, or calibration_end is after observation_end.
    """
    columns = (customer_col, time_col, value_col)
    if isinstance(transactions, pd.DataFrame | pa.Table):
        table = _in_memory(transactions, columns)
        run = ibis.duckdb.connect().to_pyarrow
    else:
        table = transactions
        run = _runner(session)
    _check_arguments(table, columns, freq)
    last = _validate(table, columns, run)
    if last is not None:
        observation_end = _check_ends(last, calibration_end, observation_end)
    expr = rfm_summary_expr(
        table, customer_col, time_col, value_col, calibration_end, observation_end, freq
    )
    result = run(expr).to_pandas() if last is not None else pd.DataFrame(columns=expr.columns)
    result = result.set_index(customer_col).sort_index()
    return result.astype(float)


def _summarise(log: ir.Table, end_period: ir.IntegerValue) -> ir.Table:
    """Return customer, frequency, recency, T, monetary_value of `log` observed to `end_period`."""
    periods = log.group_by("customer", "period").aggregate(value=log.value.sum())
    by_customer = periods.group_by("customer").aggregate(
        first=periods.period.min(),
        last=periods.period.max(),
        periods=periods.count(),
        total=periods.value.sum(),
        # The first period's value is the trial purchase, left out of the repeat spend (FHL
        # 2005). Subtracting it, rather than a window marking the first period, halves the
        # time; the rounding error is about 1e-16 of the total, 1e-9 of the mean unless the
        # trial outspends the repeats a millionfold.
        trial=periods.value.argmin(periods.period),
    )
    repeats = by_customer.periods - 1
    return by_customer.select(
        "customer",
        frequency=repeats.cast("float64"),
        recency=(by_customer["last"] - by_customer["first"]).cast("float64"),
        T=(end_period - by_customer["first"]).cast("float64"),
        monetary_value=ibis.cases(
            (repeats > 0, (by_customer.total - by_customer.trial) / repeats), else_=0.0
        ),
    )


# `time` is left unannotated so that zoned and zone-less timestamps of any precision pass as is.
@ibis.udf.scalar.builtin(name="epoch_us")
def _epoch_us(time) -> dt.int64:
    """Return microseconds since 1970-01-01 UTC (DuckDB's epoch_us)."""


def _period(time: ir.TimestampValue, freq: str) -> ir.IntegerValue:
    """Return the number of the `freq` period holding `time`, counted from 1970-01-01 UTC."""
    # DuckDB's epoch_us reads zoned timestamps without ICU, where Ibis' epoch_seconds casts
    # them to zone-less ones (~0.2 µs a row); Ibis' // is FLOOR(a / b), right before 1970 too.
    micros = _epoch_us(time)
    if freq == "h":
        return micros // _MICROS_PER_HOUR
    day = micros // _MICROS_PER_DAY
    if freq == "D":
        return day
    if freq == "W":
        return (day + _THURSDAY_TO_MONDAY) // 7
    return _month_number(day)


def _month_number(day: ir.IntegerValue) -> ir.IntegerValue:
    """Return 12 * year + month - 1 of the UTC day `day` (days since 1970-01-01)."""
    # Calendar fields of a zone-less date are plain arithmetic in DuckDB (no ICU).
    when = ibis.date(1970, 1, 1) + day.as_interval("D")
    return when.year() * 12 + when.month() - 1


def _time_literal(value: TimeLike, dtype: dt.DataType) -> ir.TimestampScalar:
    """Return `value` as a literal of the time column's type; zone-less values are UTC."""
    stamp = pd.Timestamp(value)
    if dtype.timezone is None:
        if stamp.tzinfo is not None:
            stamp = stamp.tz_convert("UTC").tz_localize(None)
    elif stamp.tzinfo is None:
        stamp = stamp.tz_localize("UTC")
    return ibis.literal(stamp.to_pydatetime(), type=dtype)


def _check_arguments(table: ir.Table, columns: tuple[str, str, str], freq: str) -> None:
    """Raise TransactionLogError unless `table` has the columns, typed, and `freq` is known."""
    if freq not in FREQS:
        raise TransactionLogError(f"freq {freq!r} is not supported: use one of {FREQS}")
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise TransactionLogError(_missing_message(missing, list(table.columns)))
    _, time_col, value_col = columns
    if not (table[time_col].type().is_timestamp() or table[time_col].type().is_date()):
        raise TransactionLogError(
            f"column {time_col!r} is {table[time_col].type()}, not a timestamp or date: "
            "convert it first (e.g. pandas.to_datetime)"
        )
    if not table[value_col].type().is_numeric():
        raise TransactionLogError(f"column {value_col!r} is {table[value_col].type()}, not numeric")


def _missing_message(missing: list[str], present: list[str]) -> str:
    """Return the error message for columns not found in a transaction log."""
    return f"transactions have no column {', '.join(map(repr, missing))}; columns are {present}"


def _validate(table: ir.Table, columns: tuple[str, str, str], run) -> pd.Timestamp | None:
    """Raise TransactionLogError on null or NaN entries; return the last time (None if empty)."""
    customer_col, time_col, value_col = columns
    value = table[value_col]
    nan = value.isnan() if value.type().is_floating() else ibis.literal(False)
    checks = table.aggregate(
        last=table[time_col].max(),
        customers=table.count(where=table[customer_col].isnull()),
        times=table.count(where=table[time_col].isnull()),
        values=table.count(where=value.isnull() | nan),
    )
    row = run(checks).to_pylist()[0]
    for what, col in (("customers", customer_col), ("times", time_col), ("values", value_col)):
        if row[what]:
            raise TransactionLogError(
                f"{row[what]} transactions have a null or NaN {col!r}: drop or fill them first"
            )
    return None if row["last"] is None else pd.Timestamp(row["last"])


def _check_ends(
    last: pd.Timestamp, calibration_end: TimeLike | None, observation_end: TimeLike | None
) -> pd.Timestamp:
    """Return the observation end (default `last`); raise if the ends are out of order."""
    end = last if observation_end is None else _comparable(observation_end, last)
    if end < last:
        raise TransactionLogError(
            f"observation_end {end} is before the last transaction ({last}): filter the "
            "transactions to the observation period first, or move observation_end"
        )
    if calibration_end is not None and _comparable(calibration_end, last) > end:
        raise TransactionLogError(
            f"calibration_end {calibration_end} is after observation_end {end}: the holdout "
            "period (calibration_end, observation_end] would be empty"
        )
    return end


def _comparable(value: TimeLike, like: pd.Timestamp) -> pd.Timestamp:
    """Return `value` as a Timestamp with the zone of `like` (zone-less values are UTC)."""
    stamp = pd.Timestamp(value)
    if like.tzinfo is None:
        return stamp.tz_convert("UTC").tz_localize(None) if stamp.tzinfo else stamp
    return stamp.tz_convert(like.tzinfo) if stamp.tzinfo else stamp.tz_localize("UTC")


def _in_memory(transactions: pd.DataFrame | pa.Table, columns: tuple[str, ...]) -> ir.Table:
    """Return the log's `columns` as an Ibis in-memory table (raise if one is missing)."""
    if isinstance(transactions, pa.Table):
        present = transactions.column_names
    else:
        present = [str(c) for c in transactions.columns]
    missing = [c for c in columns if c not in present]
    if missing:
        raise TransactionLogError(_missing_message(missing, present))
    # Zoned times become zone-less UTC here: DuckDB converts zoned timestamps through ICU.
    time_col = columns[1]
    if isinstance(transactions, pa.Table):
        table = transactions.select(list(columns))
        time_type = table.schema.field(time_col).type
        if pa.types.is_timestamp(time_type) and time_type.tz is not None:
            index = table.schema.get_field_index(time_col)
            naive = table[time_col].cast(pa.timestamp(time_type.unit))
            table = table.set_column(index, time_col, naive)
        return ibis.memtable(table)
    frame = transactions[list(columns)]
    if isinstance(frame[time_col].dtype, pd.DatetimeTZDtype):
        frame = frame.assign(
            **{time_col: frame[time_col].dt.tz_convert("UTC").dt.tz_localize(None)}
        )
    return ibis.memtable(frame)


def _runner(session: Session | None):
    """Return a function running a table expression to an Arrow table."""
    if session is None:
        return lambda expr: expr.to_pyarrow()
    return session.fetch_arrow
