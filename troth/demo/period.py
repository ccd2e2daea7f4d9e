"""The generated period: its bounds in microseconds and the local clocks of customers in it."""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from troth.demo.vocabulary import TIMEZONES

__all__ = [
    "DAY",
    "DEFAULT_END",
    "HOUR",
    "MINUTE",
    "MONTH",
    "NEVER",
    "SECOND",
    "Period",
    "plan_period",
]

SECOND = 1_000_000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR
# The average Gregorian month; rates are "per month" and spans are converted with it.
MONTH = int(30.436875 * DAY)
# "Not (yet) happened": far in the future, yet small enough that adding spans cannot overflow.
NEVER = np.int64(2**62)
# Fixed so the same seed gives the same data whatever day it is run.
DEFAULT_END = datetime(2026, 11, 1, tzinfo=UTC)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _microseconds(moment: datetime) -> int:
    """Return a datetime as integer microseconds since the Unix epoch."""
    return (moment - _EPOCH) // timedelta(microseconds=1)


def _months_before(moment: datetime, months: int) -> datetime:
    """Return the same day and time `months` calendar months earlier (clamped to month end)."""
    total = moment.year * 12 + moment.month - 1 - months
    year, month = divmod(total, 12)
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)


@dataclass(frozen=True)
class Period:
    """The half-open interval [start, end) of generated events, in microseconds since the epoch."""

    start: int
    end: int
    months: int
    _offsets: np.ndarray = field(repr=False, compare=False)
    _offsets_from: int = field(repr=False, compare=False)

    @property
    def span(self) -> int:
        """Return the period's length in microseconds."""
        return self.end - self.start

    def utc_offset(self, timezone: np.ndarray, moment: np.ndarray) -> np.ndarray:
        """Return UTC offsets (microseconds) per timezone and moment, daylight saving included."""
        hours = (np.asarray(moment, dtype=np.int64) - self._offsets_from) // HOUR
        hours = np.clip(hours, 0, self._offsets.shape[1] - 1)
        return self._offsets[np.asarray(timezone, dtype=np.int64), hours]


def _offset_table(first: int, last: int) -> np.ndarray:
    """Return UTC offsets (microseconds) per timezone and hour from `first` to `last`."""
    first_day = datetime.fromtimestamp(first // SECOND, UTC).replace(hour=0, minute=0, second=0)
    days = (last - first) // DAY + 2
    hours = days * 24
    table = np.zeros((len(TIMEZONES), hours), dtype=np.int64)
    # Offsets change only at daylight saving transitions: probe once a day, then per hour
    # only on the days where the offset changed. Loops over timezones and days, not events.
    for row, (name, _) in enumerate(TIMEZONES):
        zone = ZoneInfo(name)

        def offset_at(moment: datetime, zone: ZoneInfo = zone) -> int:
            return _microseconds(moment.astimezone(zone).replace(tzinfo=UTC)) - _microseconds(
                moment
            )

        daily = [offset_at(first_day + timedelta(days=d)) for d in range(days + 1)]
        for day in range(days):
            base = first_day + timedelta(days=day)
            if daily[day] == daily[day + 1]:
                table[row, day * 24 : day * 24 + 24] = daily[day]
            else:
                table[row, day * 24 : day * 24 + 24] = [
                    offset_at(base + timedelta(hours=h)) for h in range(24)
                ]
    return table


def plan_period(end: datetime | None, months: int) -> Period:
    """Return the Period of `months` calendar months ending at `end` (default DEFAULT_END)."""
    if months < 1:
        raise ValueError(f"months must be at least 1, not {months}")
    end = DEFAULT_END if end is None else end
    end = end.replace(tzinfo=UTC) if end.tzinfo is None else end.astimezone(UTC)
    start = _months_before(end, months)
    start_us, end_us = _microseconds(start), _microseconds(end)
    first = start_us - DAY
    table = _offset_table(first, end_us + DAY)
    first_midnight = first - (first % DAY)
    return Period(start_us, end_us, months, table, first_midnight)
